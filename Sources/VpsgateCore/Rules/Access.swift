/// What a principal's grants allow on one resource, as the database's
/// `vpsgate_resource_decision` decides it. The rule is written once, in that function:
/// `begin_command` applies it inside its transaction, and every other check (reads,
/// approvals) asks the same function through `AuthorizationStore.access`.
public enum Access: Sendable, Equatable {
    case allowed
    /// A grant on the resource without the permission (and any refusal on the account,
    /// whose existence is no secret): 403.
    case forbidden
    /// No grant on the resource: answered as if it did not exist (404).
    case notFound

    /// The function's answer: NULL allows, `forbidden` and `not_found` refuse.
    public init?(decision: String?) {
        switch decision {
        case nil: self = .allowed
        case "forbidden": self = .forbidden
        case "not_found": self = .notFound
        default: return nil
        }
    }
}
