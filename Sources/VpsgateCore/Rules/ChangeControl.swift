/// Change control (docs/design.md#change-control): what a plan shows and what an approver's decision
/// means. Which decision applies is made in PostgreSQL (`vpsgate_resource_command_decision`,
/// `decide_operation`), atomically with the rows; what each means is declared here once.

/// The approval policy that applies to a command on a VPS.
public struct ApprovalPolicy: Sendable, Equatable {
    /// A permission (`vps:destroy`) or a command name (`vps.recreate`).
    public var subject: String
    /// nil: every VPS.
    public var vpsID: Int?
    public var approvals: Int
    public var ttlSeconds: Int

    public init(subject: String, vpsID: Int?, approvals: Int, ttlSeconds: Int) {
        self.subject = subject
        self.vpsID = vpsID
        self.approvals = approvals
        self.ttlSeconds = ttlSeconds
    }
}

/// What a command would meet now: the plan's decision, the same function's as the command's.
public struct PlanVerdict: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        case notFound, forbidden, proceed, needsApproval
        case busy(blockingOperation: String)
        case frozen(until: Int64, reason: String)

        /// The plan's `decision` member (the refusals are answered as the command's are).
        public var name: String {
            switch self {
            case .notFound: "not_found"
            case .forbidden: "forbidden"
            case .proceed: "proceed"
            case .needsApproval: "needs_approval"
            case .busy: "busy"
            case .frozen: "frozen"
            }
        }
    }

    public var decision: Decision
    public var policy: ApprovalPolicy?
    /// Approvals the command would need (the policy's, at least 1 for an emergency override).
    public var approvalsRequired: Int

    public init(decision: Decision, policy: ApprovalPolicy?, approvalsRequired: Int) {
        self.decision = decision
        self.policy = policy
        self.approvalsRequired = approvalsRequired
    }
}

/// A decision on an operation awaiting approval.
public enum ApprovalAction: String, Sendable, CaseIterable {
    case approve, deny, cancel
}

/// What `decide_operation` decided.
public enum ApprovalResult: String, Sendable, CaseIterable {
    /// The required count is reached: approved, dispatched when its VPS is free.
    case approved
    /// Counted; more approvals are needed (approving twice counts once).
    case recorded
    case denied
    /// Cancelled by its requester or an approver.
    case withdrawn
    case selfApproval = "self_approval"
    case notAwaiting = "not_awaiting"
    /// Decided after the approval window ended: the operation is cancelled (expired) now.
    case expired
    case notFound = "not_found"

    public var auditOutcome: AuditOutcome {
        switch self {
        case .approved: .approved
        case .recorded: .approvalRecorded
        case .denied: .denied
        case .withdrawn: .withdrawn
        case .selfApproval: .selfApproval
        case .notAwaiting: .notAwaiting
        case .expired: .expired
        case .notFound: .notFound
        }
    }

    /// The problem answered, or nil for 200 with the operation.
    public func problem(instance: String, state: OperationState?) -> Problem? {
        switch self {
        case .approved, .recorded, .denied, .withdrawn:
            nil
        case .selfApproval:
            Problem(.selfApproval, status: 403, title: "Self-approval",
                    detail: "The requester of an operation can neither approve nor deny it; cancel it instead.", instance: instance)
        case .notAwaiting:
            Problem(.notAwaitingApproval, status: 409, title: "Not awaiting approval",
                    detail: "The operation is \(state?.rawValue ?? "not awaiting approval"): there is nothing to decide.", instance: instance)
        case .expired:
            Problem(.notAwaitingApproval, status: 409, title: "Approval expired",
                    detail: "The approval window ended: the operation is cancelled (expired) and nothing will be sent.", instance: instance)
        case .notFound:
            Problem(.notFound, status: 404, title: "Not found", detail: "No such resource.", instance: instance)
        }
    }

    /// What `decide_operation` writes in the audit row of each result.
    public static let auditAnswers: JSONValue = .object(allCases.map { result in
        var members: [(String, JSONValue)] = [("outcome", .string(result.auditOutcome.rawValue))]
        let problem = result.problem(instance: "", state: nil)
        members.append(("http_status", .number(String(problem?.status ?? 200))))
        if let problem { members.append(("problem_type", .string(Problem.typePrefix + problem.code.rawValue))) }
        return (result.rawValue, .object(members))
    })
}

/// How `decide_operation` left the operation.
public struct ApprovalOutcome: Sendable, Equatable {
    public var result: ApprovalResult
    public var state: OperationState?
    public var approvals: Int
    public var approvalsRequired: Int

    public init(result: ApprovalResult, state: OperationState?, approvals: Int, approvalsRequired: Int) {
        self.result = result
        self.state = state
        self.approvals = approvals
        self.approvalsRequired = approvalsRequired
    }
}
