/// What the console (and any client) reads beside an operation: the decisions on a request
/// awaiting approval, the request kept for it, and the operation's history.
public protocol ConsoleStore {
    /// For each operation among `operationIDs` that has them: its approval decisions (oldest
    /// first), its kept request and whether it is an emergency override.
    func pendingApprovals(operationIDs: [String]) throws(StoreError) -> [String: PendingApproval]
    /// The operation's audit rows, events and approval decisions, oldest first.
    func timeline(operationID: String) throws(StoreError) -> [TimelineEntry]
    /// The freeze windows in force now or still to come (not those over), by start.
    func freezeWindows() throws(StoreError) -> [FreezeWindow]
}

/// A change freeze (`vpsgate freeze add`): commands on its VPS (every VPS when `vpsID` is
/// nil) are refused with 423 change-frozen between its start and its end.
public struct FreezeWindow: Sendable, Equatable {
    public var id: Int
    public var vpsID: Int?
    /// Microseconds since the epoch.
    public var startsAt: Int64
    public var endsAt: Int64
    public var reason: String
    /// In force now (else still to come), by the database's clock.
    public var active: Bool

    public init(id: Int, vpsID: Int?, startsAt: Int64, endsAt: Int64, reason: String, active: Bool) {
        self.id = id
        self.vpsID = vpsID
        self.startsAt = startsAt
        self.endsAt = endsAt
        self.reason = reason
        self.active = active
    }

    /// Who may see it: a freeze over every VPS, any principal (it holds their commands too);
    /// a freeze on one VPS, those who may read that VPS (`scope`), as its events.
    public func visible(in scope: ReadScope) -> Bool { vpsID.map(scope.contains) ?? true }

    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.member("id", id)
        writer.member("vps_id", vpsID)
        writer.member("state", active ? "active" : "upcoming")
        writer.member("starts_at", Timestamp.rfc3339(microseconds: startsAt))
        writer.member("ends_at", Timestamp.rfc3339(microseconds: endsAt))
        writer.member("reason", reason)
        writer.endObject()
    }
}

/// One approve or deny.
public struct ApprovalDecision: Sendable, Equatable {
    public var principal: String
    public var decision: String
    public var reason: String?
    /// Microseconds since the epoch.
    public var decidedAt: Int64

    public init(principal: String, decision: String, reason: String?, decidedAt: Int64) {
        self.principal = principal
        self.decision = decision
        self.reason = reason
        self.decidedAt = decidedAt
    }
}

/// What the store keeps for an operation awaiting approval.
public struct PendingApproval: Sendable, Equatable {
    public var decisions: [ApprovalDecision]
    /// The kept request (nil once it is dispatched, denied, cancelled or expired).
    public var request: SealedRequest?
    public var emergency: Bool

    public init(decisions: [ApprovalDecision] = [], request: SealedRequest? = nil, emergency: Bool = false) {
        self.decisions = decisions
        self.request = request
        self.emergency = emergency
    }
}

/// One step of an operation's history.
public struct TimelineEntry: Sendable, Equatable {
    /// `audit` (a row of the audit trail), `event` (a row of the event feed) or `approval`.
    public var source: String
    /// The audit row's kind (`received`, `final`, `completion`, …), the event's type, or the
    /// decision (`approve`, `deny`).
    public var kind: String
    /// Microseconds since the epoch.
    public var at: Int64
    public var principal: String?
    public var outcome: String?
    /// What else the row says: statuses and Hostinger's action for an audit row, the event's
    /// data, an approval's reason.
    public var detail: JSONValue?

    public init(source: String, kind: String, at: Int64, principal: String? = nil, outcome: String? = nil, detail: JSONValue? = nil) {
        self.source = source
        self.kind = kind
        self.at = at
        self.principal = principal
        self.outcome = outcome
        self.detail = detail
    }

    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.member("at", Timestamp.rfc3339(microseconds: at))
        writer.member("source", source)
        writer.member("kind", kind)
        writer.member("principal", principal)
        writer.member("outcome", outcome)
        writer.key("detail")
        if let detail { detail.write(to: &writer) } else { writer.null() }
        writer.endObject()
    }
}
