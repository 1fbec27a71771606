/// What `begin_command` decided for a keyed command (docs/design.md#idempotency).
///
/// Which of these applies is decided in one place, the SQL function `begin_command`: the
/// decision must be atomic with the key's row and the VPS's busy slot, and the grant is
/// checked in the same round trip, before anything is taken. What each decision
/// means — the HTTP status, the problem and the audit outcome — is declared here, once, and
/// handed to that function with every call (`BeginDecision.Kind.auditAnswers`), so that the
/// audit row it writes and the answer vpsgate sends cannot disagree.
public enum BeginDecision: Sendable, Equatable {
    /// No grant on the VPS: answered as if it did not exist.
    case notFound
    /// A grant on the VPS without the command's permission.
    case forbidden
    /// A new operation, recorded at `createdAt` (database clock, microseconds): call Hostinger.
    case proceed(createdAt: Int64)
    /// The key's stored answer, sent again.
    case replay(StoredAnswer)
    /// The key's first request is still being processed.
    case inUse
    /// The key was used for a different request (method, path or body).
    case reused
    /// Another operation on the VPS is not finished yet.
    case busy(blockingOperation: String)
    /// A freeze window covers the VPS until then (microseconds since the epoch).
    case frozen(until: Int64)
    /// Recorded `awaiting_approval` at `createdAt`: nothing is sent until it is approved.
    case awaitingApproval(createdAt: Int64, approvalsRequired: Int)
    /// The command's policy requires a reason (`Vpsgate-Reason`) and the request gave none.
    case reasonRequired

    public enum Kind: String, Sendable, CaseIterable {
        case forbidden, proceed, replay, reused, busy, frozen
        case notFound = "not_found"
        case inUse = "in_use"
        case awaitingApproval = "awaiting_approval"
        case reasonRequired = "reason_required"
    }

    public var kind: Kind {
        switch self {
        case .notFound: .notFound
        case .forbidden: .forbidden
        case .proceed: .proceed
        case .replay: .replay
        case .inUse: .inUse
        case .reused: .reused
        case .busy: .busy
        case .frozen: .frozen
        case .awaitingApproval: .awaitingApproval
        case .reasonRequired: .reasonRequired
        }
    }
}

/// An answer stored under an idempotency key.
public struct StoredAnswer: Sendable, Equatable {
    public var status: Int
    public var location: String?
    public var body: [UInt8]

    public init(status: Int, location: String?, body: [UInt8]) {
        self.status = status
        self.location = location
        self.body = body
    }
}

extension BeginDecision.Kind {
    /// The audit outcome of the request's final row, written by `begin_command` in the same
    /// transaction (nil for `proceed`: that row is written once Hostinger has answered).
    public var auditOutcome: AuditOutcome? {
        switch self {
        case .proceed, .awaitingApproval: nil
        case .frozen: .frozen
        case .notFound: .notFound
        case .forbidden: .denied
        case .replay: .replayed
        case .inUse, .reused: .conflict
        case .busy: .busy
        case .reasonRequired: .invalid
        }
    }

    /// The problem vpsgate answers with, and the seconds worth waiting before a retry (nil:
    /// no problem, or a retry cannot help).
    public func problem(_ target: Target, blocking: String?, permission: Permission?, instance: String,
                        frozenUntil: Int64? = nil) -> (Problem, retryAfterSeconds: Int?)? {
        switch self {
        case .proceed, .replay, .awaitingApproval:
            return nil
        case .frozen:
            let until = frozenUntil.map { Timestamp.rfc3339(microseconds: $0) } ?? "the end of the freeze"
            var problem = Problem(.changeFrozen, status: 423, title: "Change frozen",
                                  detail: "A freeze window covers \(target.kind == .firewall ? "a VPS that \(target) is active on" : "\(target)") "
                                      + "until \(until); an emergency needs an approval.",
                                  instance: instance)
            problem.extensions = [("frozen_until", until)]
            return (problem, nil)
        case .notFound:
            return (Problem(.notFound, status: 404, title: "Not found", detail: "No such resource.", instance: instance), nil)
        case .forbidden:
            let needed = permission.map { "the \($0.rawValue) permission" } ?? "a permission"
            return (Problem(.forbidden, status: 403, title: "Forbidden", detail: "This needs \(needed) on \(target).", instance: instance), nil)
        case .inUse:
            return (Problem(.idempotencyKeyInUse, status: 409, title: "Idempotency-Key in use",
                            detail: "A request with this key is still being processed.", instance: instance), 1)
        case .reused:
            return (Problem(.idempotencyKeyReused, status: 422, title: "Idempotency-Key reused",
                            detail: "This key was used for a different request (method, path or body).", instance: instance), nil)
        case .busy:
            let blocking = blocking ?? "unknown"
            var problem = Problem(.vpsBusy, status: 409, title: "VPS busy",
                                  detail: "Operation \(blocking) on \(target) is not finished yet.", instance: instance)
            problem.extensions = [("operation_id", blocking), ("operation", "/v1/operations/\(blocking)")]
            return (problem, 5)
        case .reasonRequired:
            return (CommandReason.requiredProblem(instance: instance), nil)
        }
    }

    /// What `begin_command` writes in the final audit row of each decision it answers
    /// itself: `{"replay": {"outcome": "replayed"}, "in_use": {"outcome": …, "http_status": …,
    /// "problem_type": …}, …}`. A replay's status is the stored answer's.
    public static let auditAnswers: JSONValue = .object(allCases.compactMap { kind in
        guard let outcome = kind.auditOutcome else { return nil }
        var members: [(String, JSONValue)] = [("outcome", .string(outcome.rawValue))]
        if let (problem, _) = kind.problem(.vps(0), blocking: nil, permission: nil, instance: "") {
            members.append(("http_status", .number(String(problem.status))))
            members.append(("problem_type", .string(Problem.typePrefix + problem.code.rawValue)))
        }
        return (kind.rawValue, .object(members))
    })
}
