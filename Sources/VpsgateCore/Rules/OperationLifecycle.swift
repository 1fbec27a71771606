/// The lifecycle of an accepted command (docs/design.md#operations-follow-hostinger): its states, what can happen to it,
/// and what each event does (state × event ⇒ state + effects). Pure: the store applies the
/// transition; every rule of how an operation moves is here.
public enum OperationState: String, Sendable, CaseIterable {
    case accepted, dispatched, running, succeeded, failed, unknown
    /// Recorded, nothing sent: waits for its approvals (docs/design.md#change-control).
    case awaitingApproval = "awaiting_approval"
    /// Approved: waits for its turn on its VPS, then is dispatched by the instances.
    case approved
    /// Denied, withdrawn or expired before anything was sent.
    case cancelled

    /// `succeeded`, `failed` and `cancelled` never change again.
    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }

    /// The states of a request that may have reached Hostinger and is not settled: they
    /// block their VPS (within the busy bound) and the reconciler follows them. SQL states
    /// them once, in `vpsgate_in_flight_states()`; the migrator and readiness refuse a
    /// database whose function says otherwise (`Migrator.rulesMismatch`).
    public static let inFlight: [OperationState] = [.accepted, .dispatched, .running, .unknown]

    /// The state that follows Hostinger's action state: Hostinger is authoritative.
    public static func following(actionState: String) -> OperationState {
        switch actionState {
        case "success": .succeeded
        case "error": .failed
        default: .running
        }
    }

    /// The state after the Hostinger call ended with `outcome` (and maybe an action).
    public static func after(_ outcome: CallOutcome, actionState: String?) -> OperationState {
        switch outcome {
        case .succeeded: actionState.map(following(actionState:)) ?? .unknown
        case .rejected, .failed, .notSent: .failed
        case .unknown: .unknown
        }
    }
}

/// What can happen to an operation after it is accepted.
public enum OperationEvent: Sendable, Equatable {
    /// The command's own Hostinger call ended (on the instance that sent it).
    case dispatched(DispatchResult)
    /// Hostinger shows the operation's action in this state (a read, or the reconciler).
    case actionObserved(HostingerAction)
    /// The reconciler tied this action from Hostinger's list to an operation whose answer was lost.
    case adopted(HostingerAction)
    /// Hostinger's list of the whole window holds no action that could be it.
    case notApplied
    /// Actions in the window vpsgate cannot tie to it, or a list that does not reach back far enough.
    case ambiguous(candidates: [HostingerAction], listCoversWindow: Bool)
    /// Hostinger does not know the action vpsgate recorded (`message`: its answer).
    case actionUnknown(message: String?)
    /// Hostinger no longer knows the operation's VM.
    case vpsGone(message: String?)
}

/// What becomes of the request's idempotency key when a transition is applied.
public enum KeyEffect: Sendable, Equatable {
    /// The answer is stored under the key: retries replay it.
    case store
    /// Hostinger provably never got the request: the key is freed for a retry.
    case release
    /// A key still in flight (its instance never finished) is completed with the operation.
    case completeIfInFlight
}

/// A disagreement between vpsgate's records and Hostinger's, for `drift_events`.
public struct Drift: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case actionUnknown = "action_unknown"
        case stateMismatch = "state_mismatch"
        case unclaimedAction = "unclaimed_action"
        case vpsNotFound = "vps_not_found"
    }

    public var kind: Kind
    public var actionID: Int?
    public var vpsgateView: JSONValue?
    public var hostingerView: JSONValue?

    public init(_ kind: Kind, actionID: Int?, vpsgate: JSONValue?, hostinger: JSONValue?) {
        self.kind = kind
        self.actionID = actionID
        self.vpsgateView = vpsgate
        self.hostingerView = hostinger
    }
}

/// An operation's move to a new state, with its effects.
public struct OperationTransition: Sendable, Equatable {
    public var state: OperationState
    /// The action it now follows (nil: the one it had).
    public var action: HostingerAction?
    /// Why it failed or is in doubt (nil: what it had).
    public var error: JSONValue?
    /// The audit row's outcome.
    public var outcome: AuditOutcome
    public var key: KeyEffect
    public var drift: Drift?
    /// When the reconciler looks at it again, if it is still open.
    public var nextCheckMilliseconds: Int
    /// The resource a synchronous answer brought (nil: what it had).
    public var result: JSONValue?

    public init(_ state: OperationState, action: HostingerAction? = nil, error: JSONValue? = nil, outcome: AuditOutcome,
                key: KeyEffect = .completeIfInFlight, drift: Drift? = nil, nextCheckMilliseconds: Int = 1000, result: JSONValue? = nil) {
        self.result = result
        self.state = state
        self.action = action
        self.error = error
        self.outcome = outcome
        self.key = key
        self.drift = drift
        self.nextCheckMilliseconds = nextCheckMilliseconds
    }

    /// `operation` as it is after this transition (times are the store's to set).
    public func applied(to operation: OperationRecord) -> OperationRecord {
        var updated = operation
        updated.state = state
        if let action {
            updated.actionID = action.id
            updated.actionName = action.name
            updated.actionState = action.state
        }
        updated.error = error ?? operation.error
        updated.result = result ?? operation.result
        return updated
    }
}

public enum OperationLifecycle {
    /// How long an operation in doubt waits before the reconciler reads Hostinger again.
    public static let ambiguousRecheckMilliseconds = 60_000

    /// The transition `event` causes for `operation`, or nil when it changes nothing: a
    /// terminal operation never changes; an action still running leaves the state as it is
    /// (its action state is progress, not a transition); an operation already in doubt for
    /// the same reason stays so.
    public static func next(_ operation: OperationRecord, on event: OperationEvent) -> OperationTransition? {
        guard !operation.state.isTerminal, operation.state != .awaitingApproval, operation.state != .approved else { return nil }
        switch event {
        case .dispatched(let result):
            return DispatchAnswer(result).transition
        case .actionObserved(let action):
            let state = OperationState.following(actionState: action.state)
            guard state.isTerminal else { return nil }
            return OperationTransition(state, action: action, error: state == .failed ? actionError(action) : nil,
                                       outcome: state == .succeeded ? .succeeded : .failed)
        case .adopted(let action):
            let state = OperationState.following(actionState: action.state)
            return OperationTransition(state, action: action, error: state == .failed ? actionError(action) : nil, outcome: .adopted)
        case .notApplied:
            return OperationTransition(.failed, error: reason("not_applied"), outcome: .notApplied)
        case .ambiguous(let candidates, let listCoversWindow):
            if operation.state == .unknown, operation.error?["reason"]?.stringValue == "ambiguous" { return nil }
            return OperationTransition(.unknown, error: .object([
                ("reason", .string("ambiguous")),
                ("detail", .string(listCoversWindow
                    ? "Hostinger shows actions in the operation's window that vpsgate cannot tie to it; check them."
                    : "Hostinger's action list could not be read back far enough to rule it out.")),
                ("candidates", .array(candidates.map(\.json))),
            ]), outcome: .ambiguous, nextCheckMilliseconds: ambiguousRecheckMilliseconds)
        case .actionUnknown(let message):
            // vpsgate believed this action exists; Hostinger does not know it. Hostinger wins.
            return OperationTransition(.failed, error: reason("action_unknown"), outcome: .actionUnknown, drift: Drift(
                .actionUnknown, actionID: operation.actionID,
                vpsgate: .object([("state", .string(operation.state.rawValue)), ("action_state", operation.actionState.map { .string($0) } ?? .null)]),
                hostinger: notFound(message)))
        case .vpsGone(let message):
            return OperationTransition(.failed, error: .object([
                ("reason", .string("vps_not_found")), ("detail", .string("Hostinger no longer knows \(operation.target).")),
            ]), outcome: .vpsNotFound, drift: Drift(
                .vpsNotFound, actionID: operation.actionID, vpsgate: .object([("state", .string(operation.state.rawValue))]),
                hostinger: notFound(message)))
        }
    }

    static func reason(_ reason: String) -> JSONValue { .object([("reason", .string(reason))]) }

    static func actionError(_ action: HostingerAction) -> JSONValue {
        .object([("reason", .string("action_error")), ("action", action.json)])
    }

    static func notFound(_ message: String?) -> JSONValue {
        .object([("status", .number("404")), ("message", message.map { .string($0) } ?? .null)])
    }
}

/// How a command's own Hostinger call ended, as far as the lifecycle needs to know.
public struct DispatchResult: Sendable, Equatable {
    public var outcome: CallOutcome
    /// The last HTTP status, when there was a response.
    public var status: Int?
    /// Hostinger's `message`.
    public var message: String?
    /// The action the mutation returned.
    public var action: HostingerAction?
    /// Hostinger refused vpsgate's credentials.
    public var isAuthenticationProblem: Bool
    /// When it is worth trying again, in milliseconds.
    public var retryAfterMilliseconds: Int?
    /// For a command Hostinger answers synchronously with a resource (not an action): the
    /// resource it answered (nil: the command answers an action, or no body came).
    public var resource: JSONValue?
    /// Not sent: the shared budget had no slot in time.
    public var budgetExhausted: Bool

    public init(outcome: CallOutcome, status: Int? = nil, message: String? = nil, action: HostingerAction? = nil,
                isAuthenticationProblem: Bool = false, retryAfterMilliseconds: Int? = nil, resource: JSONValue? = nil,
                budgetExhausted: Bool = false) {
        self.budgetExhausted = budgetExhausted
        self.outcome = outcome
        self.status = status
        self.message = message
        self.action = action
        self.isAuthenticationProblem = isAuthenticationProblem
        self.retryAfterMilliseconds = retryAfterMilliseconds
        self.resource = resource
    }
}

/// The end of a dispatched command: the operation's transition and what the client is told.
public struct DispatchAnswer: Sendable, Equatable {
    /// What the client is told.
    public enum Reply: Sendable, Equatable {
        /// 202 with the operation and its `Location`.
        case operation
        /// A problem; `upstream`: Hostinger's message and field errors go with it.
        case problem(Problem.Code, status: Int, title: String, detail: String, upstream: Bool, retryAfterSeconds: Int?)
    }

    public var transition: OperationTransition
    public var reply: Reply

    public init(_ result: DispatchResult) {
        let state = OperationState.after(result.outcome, actionState: result.action?.state)
        func error(_ reason: String) -> JSONValue {
            .object([("reason", .string(reason)), ("hostinger_status", result.status.map { .number(String($0)) } ?? .null),
                     ("message", result.message.map { .string($0) } ?? .null)])
        }
        func failed(_ reason: String, _ outcome: AuditOutcome, key: KeyEffect = .store) -> OperationTransition {
            OperationTransition(state, action: result.action, error: error(reason), outcome: outcome, key: key)
        }
        switch result.outcome {
        case .succeeded where result.resource != nil:
            // A synchronous answer: the operation is over, with the resource Hostinger gave.
            transition = OperationTransition(.succeeded, action: result.action, outcome: .succeeded, key: .store, result: result.resource)
            reply = .operation
        case .succeeded, .unknown:
            transition = OperationTransition(state, action: result.action, outcome: state == .unknown ? .unknown : .accepted, key: .store)
            reply = .operation
        case .notSent where result.budgetExhausted:
            transition = failed("upstream_budget", .unavailable, key: .release)
            reply = .problem(.upstreamBudget, status: 503, title: "Hostinger budget exhausted",
                             detail: "No slot of the Hostinger budget came in time; nothing was sent. Try again after Retry-After.",
                             upstream: false, retryAfterSeconds: RetryAfter.seconds(milliseconds: result.retryAfterMilliseconds))
        case .notSent:
            transition = failed("not_sent", .unavailable, key: .release)
            reply = .problem(.unavailable, status: 503, title: "Hostinger unavailable",
                             detail: "Hostinger could not be reached; nothing was sent. Try again later.", upstream: false,
                             retryAfterSeconds: RetryAfter.seconds(milliseconds: result.retryAfterMilliseconds))
        case .rejected where result.isAuthenticationProblem:
            transition = failed("upstream_auth", .upstreamError)
            reply = .problem(.upstreamAuth, status: 502, title: "Upstream authentication failed",
                             detail: "Hostinger refused vpsgate's credentials.", upstream: true, retryAfterSeconds: nil)
        case .rejected where result.status == 422:
            transition = failed("upstream_rejected", .upstreamRejected)
            reply = .problem(.upstreamRejected, status: 422, title: "Rejected by Hostinger", detail: "Hostinger refused the request.",
                             upstream: true, retryAfterSeconds: nil)
        case .rejected where result.status == 404:
            transition = failed("upstream_not_found", .upstreamRejected)
            reply = .problem(.notFound, status: 404, title: "Not found", detail: "Hostinger does not know this resource.",
                             upstream: true, retryAfterSeconds: nil)
        case .rejected, .failed:
            transition = failed("upstream_error", .upstreamError)
            reply = .problem(.upstreamError, status: 502, title: "Hostinger failed", detail: "Hostinger could not complete the request.",
                             upstream: true, retryAfterSeconds: nil)
        }
    }
}
