/// What the reconciler does with one leased operation (docs/design.md#operations-follow-hostinger), decided from what
/// Hostinger showed. Pure: the reconciler reads Hostinger, asks here, and applies the step.
public enum ReconcileStep: Sendable, Equatable {
    /// Move the operation (and apply the transition's effects).
    case apply(OperationTransition)
    /// Look again after `delayMilliseconds`, recording the action's state if one was read;
    /// `reason`: why nothing could be concluded (logged), nil when it is simply not done yet.
    case later(delayMilliseconds: Int, actionState: String?, reason: String?)
}

/// What reading an operation's action from Hostinger gave.
public enum ActionRead: Sendable, Equatable {
    case found(HostingerAction)
    /// A 404 for the action, with the VM still there.
    case actionMissing(message: String?)
    /// A 404 for the VM itself.
    case vpsGone(message: String?)
    /// No usable answer (transport, 5xx, breaker): says nothing about the operation.
    case failed(String)
}

public enum ReconcileDecision {
    /// The pause before the `checks`-th look at an operation still open: 250 ms doubling to
    /// 10 s (250, 500, 1000, 2000, 4000, 8000, then 10 000), so a short action is seen soon
    /// after it ends and a long one costs one read each 10 s.
    public static func backoffMilliseconds(checks: Int) -> Int { min(250 << min(max(checks - 1, 0), 6), 10_000) }

    /// An operation that knows its action: follow it.
    public static func following(_ operation: OperationRecord, read: ActionRead, checks: Int) -> ReconcileStep {
        let event: OperationEvent
        switch read {
        case .found(let action):
            event = .actionObserved(action)
            if let transition = OperationLifecycle.next(operation, on: event) { return .apply(transition) }
            return .later(delayMilliseconds: backoffMilliseconds(checks: checks), actionState: action.state, reason: nil)
        case .actionMissing(let message): event = .actionUnknown(message: message)
        case .vpsGone(let message): event = .vpsGone(message: message)
        case .failed(let why):
            return .later(delayMilliseconds: backoffMilliseconds(checks: checks), actionState: nil, reason: "action read failed: \(why)")
        }
        return OperationLifecycle.next(operation, on: event).map(ReconcileStep.apply)
            ?? .later(delayMilliseconds: backoffMilliseconds(checks: checks), actionState: nil, reason: nil)
    }

    /// An operation whose answer was lost, after `ActionMatcher.decide` looked at Hostinger's list.
    public static func lostAnswer(_ operation: OperationRecord, decision: LostAnswerDecision, listCoversWindow: Bool,
                                  checks: Int) -> ReconcileStep {
        let event: OperationEvent
        switch decision {
        case .adopt(let action): event = .adopted(action)
        case .notApplied: event = .notApplied
        case .ambiguous(let candidates): event = .ambiguous(candidates: candidates, listCoversWindow: listCoversWindow)
        case .wait: return .later(delayMilliseconds: backoffMilliseconds(checks: checks), actionState: nil, reason: nil)
        }
        if let transition = OperationLifecycle.next(operation, on: event) { return .apply(transition) }
        // Already in doubt for the same reason: it stays so, and is looked at now and then
        // (an action may still be adopted by name), never declared not applied.
        return .later(delayMilliseconds: OperationLifecycle.ambiguousRecheckMilliseconds, actionState: nil, reason: nil)
    }
}

/// What Hostinger shows now of the resource an account-level operation acted on.
public enum ResourceRead: Sendable, Equatable {
    case present
    case absent
    /// No usable answer, or nothing to read (a creation, a rule change, a purchase).
    case unreadable(String)
}

extension ReconcileDecision {
    /// An operation on what is not a VPS (a firewall, a key, a script, the account) whose
    /// answer was lost. Hostinger keeps no action for these, so none can be matched; what
    /// Hostinger shows now decides a delete (gone: it happened, still there: it did not,
    /// and a new key may try again). Anything else becomes `unknown` with what to check,
    /// and is looked at now and then; never declared not applied on a guess.
    public static func resourceAnswerLost(_ operation: OperationRecord, deletes: Bool, read: ResourceRead,
                                          checks: Int) -> ReconcileStep {
        switch (deletes, read) {
        case (true, .absent):
            return .apply(OperationTransition(.succeeded, error: nil, outcome: .adopted))
        case (true, .present):
            return .apply(OperationTransition(.failed, error: .object([
                ("reason", .string("not_applied")),
                ("detail", .string("Hostinger still shows \(operation.target): the delete did not happen; a new key may try again.")),
            ]), outcome: .notApplied))
        case (true, .unreadable(let why)) where checks < 7:  // about 16 s of backoff
            return .later(delayMilliseconds: backoffMilliseconds(checks: checks), actionState: nil, reason: "resource read failed: \(why)")
        default:
            if operation.state == .unknown, operation.error?["reason"]?.stringValue == "answer_lost" {
                return .later(delayMilliseconds: OperationLifecycle.ambiguousRecheckMilliseconds, actionState: nil, reason: nil)
            }
            return .apply(OperationTransition(.unknown, error: .object([
                ("reason", .string("answer_lost")),
                ("detail", .string("Hostinger's answer was lost and it keeps no action record for \(operation.command): "
                    + "read \(operation.target) from Hostinger to see whether it happened before trying again.")),
            ]), outcome: .ambiguous, nextCheckMilliseconds: OperationLifecycle.ambiguousRecheckMilliseconds))
        }
    }
}

/// The drift scan's verdict on one action from Hostinger's list.
public enum DriftScan {
    /// An action no operation holds is unclaimed; a terminal one that contradicts its
    /// terminal operation is a state mismatch; anything else is no drift.
    public static func drift(action: HostingerAction, linked operation: OperationRecord?) -> Drift? {
        guard let operation else {
            return Drift(.unclaimedAction, actionID: action.id, vpsgate: nil, hostinger: .object([
                ("id", .number(String(action.id))), ("name", .string(action.name)), ("state", .string(action.state)),
            ]))
        }
        let expected = OperationState.following(actionState: action.state)
        guard operation.state.isTerminal, action.isTerminal, expected != operation.state else { return nil }
        return Drift(.stateMismatch, actionID: action.id, vpsgate: .object([("state", .string(operation.state.rawValue))]),
                     hostinger: .object([("action_state", .string(action.state))]))
    }
}
