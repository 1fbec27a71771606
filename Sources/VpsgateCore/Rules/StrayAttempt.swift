/// An attempt of a repeat-safe command whose answer may hide a mutation Hostinger performed
/// (a 5xx, or no answer after the request was sent), and that the operation's outcome does
/// not account for: the call went on to another attempt, or the operation was recorded
/// `failed` (docs/architecture.md, the lost-answer rules). Hostinger may hold an action from
/// it that no operation holds; its window lets the reconciler tie such an action to the
/// operation that sent it, instead of counting it against another operation of the VPS.
public struct StrayAttempt: Sendable, Equatable {
    /// 1 for the call's first attempt.
    public var number: Int
    /// When the attempt was sent and when it ended, microseconds since the epoch, by the
    /// database's clock (the operation's record plus the monotonic time since).
    public var startedAt: Int64
    public var endedAt: Int64

    public init(number: Int, startedAt: Int64, endedAt: Int64) {
        self.number = number
        self.startedAt = startedAt
        self.endedAt = max(endedAt, startedAt)
    }
}

/// A stray attempt of another operation, as the reconciler reads it back: whose, when, the
/// action names its command produces, and the action already tied to it, if any.
public struct StrayWindow: Sendable, Equatable {
    public var operationID: String
    public var attempt: StrayAttempt
    /// `ActionMatcher.expectedNames` of the operation's command, as recorded with the attempt.
    public var names: Set<String>
    /// The action already attributed to this attempt (an attempt leaves at most one).
    public var actionID: Int?

    public init(operationID: String, attempt: StrayAttempt, names: Set<String>, actionID: Int? = nil) {
        self.operationID = operationID
        self.attempt = attempt
        self.names = names
        self.actionID = actionID
    }

    /// Whether Hostinger could have stamped an action of this attempt `seconds` (its whole
    /// seconds), allowing `skewSeconds` between the clocks as the lost-answer window does.
    func covers(_ seconds: Int64, skewSeconds: Int64) -> Bool {
        (attempt.startedAt / 1_000_000 - skewSeconds...attempt.endedAt / 1_000_000 + skewSeconds).contains(seconds)
    }
}

/// An action tied to a stray attempt of another operation (`ActionMatcher.verdict`).
public struct StrayAttribution: Sendable, Equatable {
    public var actionID: Int
    public var operationID: String
    public var attempt: Int

    public init(actionID: Int, operationID: String, attempt: Int) {
        self.actionID = actionID
        self.operationID = operationID
        self.attempt = attempt
    }
}

/// What the reconciler concludes about a lost answer, and which actions in its window it
/// tied to other operations' stray attempts (to record, so no other operation adopts them).
public struct LostAnswerVerdict: Sendable, Equatable {
    public var decision: LostAnswerDecision
    /// Empty while the decision is `.wait`.
    public var attributions: [StrayAttribution]

    public init(_ decision: LostAnswerDecision, attributions: [StrayAttribution] = []) {
        self.decision = decision
        self.attributions = attributions
    }
}
