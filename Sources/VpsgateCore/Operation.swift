/// One operation as stored and as shown to clients.
public struct OperationRecord: Sendable, Equatable {
    public var id: String
    /// What it acts on: a VPS, a firewall, a key, a script, or the account (docs/design.md#resources-and-grants).
    public var target: Target
    public var command: String
    public var state: OperationState
    public var actionID: Int?
    public var actionName: String?
    public var actionState: String?
    /// Why it failed, as JSON (`{"reason": …, "message": …}`), or nil.
    public var error: JSONValue?
    public var requestedBy: String
    public var correlationID: String
    public var idempotencyKey: String
    /// Microseconds since the epoch.
    public var createdAt: Int64
    public var updatedAt: Int64
    public var completedAt: Int64?
    /// When its request left for Hostinger: its creation for a direct command, its dispatch
    /// for an approved one (nil: not yet). The lost-answer window counts from here.
    public var dispatchedAt: Int64?
    /// Approvals it needs (0: none) and when an unapproved one expires (docs/design.md#change-control).
    public var approvalsRequired = 0
    public var approvalExpiresAt: Int64?
    /// What Hostinger answered a synchronous command with (a VM, a firewall, a key): shown
    /// as `result`; nil for commands that answer an action.
    public var result: JSONValue?
    /// Why it was asked for: the request's `Vpsgate-Reason` header (`CommandReason`), or nil.
    public var reason: String?
    /// The `traceparent` of the request that made it (nil before migration 0022): the span
    /// the traces of background work on it link to. Never shown.
    public var traceparent: String?

    public init(id: String, target: Target, command: String, state: OperationState, actionID: Int? = nil, actionName: String? = nil,
                actionState: String? = nil, error: JSONValue? = nil, requestedBy: String, correlationID: String,
                idempotencyKey: String, createdAt: Int64, updatedAt: Int64, completedAt: Int64? = nil) {
        self.id = id
        self.target = target
        self.command = command
        self.state = state
        self.actionID = actionID
        self.actionName = actionName
        self.actionState = actionState
        self.error = error
        self.requestedBy = requestedBy
        self.correlationID = correlationID
        self.idempotencyKey = idempotencyKey
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.completedAt = completedAt
        self.dispatchedAt = state == .awaitingApproval || state == .approved ? nil : createdAt
    }

    /// The VPS, for an operation on one.
    public var vpsID: Int? { target.vpsID }

    /// When the request may have reached Hostinger at the earliest.
    public var sentAt: Int64 { dispatchedAt ?? createdAt }

    public var location: String { "/v1/operations/\(id)" }

    /// The JSON body of docs/api.md#validation-plans-and-operations.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.member("id", id)
        writer.member("vps_id", vpsID)
        writer.key("resource")
        target.write(to: &writer)
        writer.member("command", command)
        writer.member("state", state.rawValue)
        writer.key("hostinger_action")
        if let actionID {
            writer.beginObject()
            writer.member("id", actionID)
            writer.member("name", actionName)
            writer.member("state", actionState)
            writer.endObject()
        } else {
            writer.null()
        }
        writer.key("error")
        if let error { error.write(to: &writer) } else { writer.null() }
        writer.member("requested_by", requestedBy)
        writer.member("reason", reason)
        writer.member("correlation_id", correlationID)
        writer.member("idempotency_key", idempotencyKey)
        writer.member("created_at", Timestamp.rfc3339(microseconds: createdAt))
        writer.member("updated_at", Timestamp.rfc3339(microseconds: updatedAt))
        writer.member("completed_at", completedAt.map { Timestamp.rfc3339(microseconds: $0) })
        if let result {
            writer.key("result")
            result.write(to: &writer)
        }
        if approvalsRequired > 0 {
            writer.key("approval")
            writer.beginObject()
            writer.member("required", approvalsRequired)
            writer.member("expires_at", approvalExpiresAt.map { Timestamp.rfc3339(microseconds: $0) })
            writer.member("dispatched_at", dispatchedAt.map { Timestamp.rfc3339(microseconds: $0) })
            writer.endObject()
        }
        writer.endObject()
    }

    public func json() -> [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }
}
