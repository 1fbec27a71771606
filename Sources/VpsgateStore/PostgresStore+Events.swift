import Postgres
import VpsgateCore

/// The event feed, its retention, and webhook deliveries (migration 0009).
extension PostgresStore: EventStore, DeliveryStore {
    /// Rows looked at per page at most: a reader who may read little still gets a bounded page.
    static let eventScanLimit = 2000

    public func events(after cursor: EventCursor?, principal: String, scope: ReadScope, limit: Int) throws(StoreError) -> EventPage {
        let query: PostgresQuery = """
            SELECT id, position_xid::text AS position_xid, type, occurred_at_us, vps_id, operation_id::text AS operation_id,
                   data::text AS data, expired, held_back
            FROM read_events(\(principal), \(cursor.map { String($0.transaction) })::xid8, \(cursor.map { Int($0.id) })::bigint,
                             \(scope.all), \(SQLText.array(scope.ids.sorted()))::bigint[], \(limit)::int, \(Self.eventScanLimit)::int)
            """
        return try run { () throws(PostgresError) in
            var page = EventPage(events: [], next: cursor)
            for row in try database.query(query.preparedOnce(), retryOnStaleConnection: true) {
                if try row.decode(Bool.self, "expired") { return EventPage(events: [], next: nil, expired: true) }
                if let id = try row.decode(Int64?.self, "id"), let transaction = try row.decode(String?.self, "position_xid").flatMap({ UInt64($0) }) {
                    page.next = EventCursor(transaction: transaction, id: id)
                }
                page.heldBack = try row.decode(Bool.self, "held_back")
                guard let type = try row.decode(String?.self, "type") else { continue }
                page.events.append(EventRecord(
                    id: try row.decode(Int64.self, "id"), type: type, occurredAt: try row.decode(Int64.self, "occurred_at_us"),
                    vpsID: try row.decode(Int?.self, "vps_id"), operationID: try row.decode(String?.self, "operation_id"),
                    data: Array(try row.decode(String.self, "data").utf8)))
            }
            return page
        }
    }

    /// Deletes events older than `keepSeconds` (not those a webhook still owes); returns how many.
    public func pruneEvents(keepSeconds: Int) throws(StoreError) -> Int {
        try run { () throws(PostgresError) in
            try database.query("SELECT prune_events(make_interval(secs => \(keepSeconds))) AS deleted").first?.decode(Int.self, "deleted") ?? 0
        }
    }

    public func leaseDeliveries(owner: String, limit: Int, leaseSeconds: Int) throws(StoreError) -> [LeasedDelivery] {
        let query: PostgresQuery = """
            SELECT l.id, l.attempts, l.endpoint_id, l.url, l.principal, l.sealed_secret, l.key_id, l.event_id, l.type, l.occurred_at_us,
                   l.vps_id, l.operation_id::text AS operation_id, l.data::text AS data, l.readable, o.traceparent
            FROM lease_deliveries(\(owner), \(limit)::int, make_interval(secs => \(leaseSeconds))) l
                 LEFT JOIN operations o ON o.id = l.operation_id
            """
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce(), retryOnStaleConnection: true).map { row throws(PostgresError) in
                var delivery = LeasedDelivery(
                    id: try row.decode(Int64.self, "id"), attempts: try row.decode(Int.self, "attempts"),
                    endpointID: try row.decode(Int64.self, "endpoint_id"), url: try row.decode(String.self, "url"),
                    principal: try row.decode(String.self, "principal"),
                    sealedSecret: SQLText.bytes(fromBytea: try row.decode(String.self, "sealed_secret")),
                    keyID: try row.decode(String.self, "key_id"),
                    event: EventRecord(
                        id: try row.decode(Int64.self, "event_id"), type: try row.decode(String.self, "type"),
                        occurredAt: try row.decode(Int64.self, "occurred_at_us"), vpsID: try row.decode(Int?.self, "vps_id"),
                        operationID: try row.decode(String?.self, "operation_id"), data: Array(try row.decode(String.self, "data").utf8)),
                    readable: try row.decode(Bool?.self, "readable") ?? false)
                delivery.traceparent = try row.decode(String?.self, "traceparent")
                return delivery
            }
        }
    }

    public func completeDelivery(_ id: Int64, owner: String, outcome: DeliveryOutcome, status: Int?, error: String?,
                                 retryInSeconds: Double, giveUpSeconds: Int) throws(StoreError) -> String {
        let query: PostgresQuery = """
            SELECT complete_delivery(\(Int(id))::bigint, \(owner), \(outcome.rawValue), \(status)::int, \(error),
                                     make_interval(secs => \(retryInSeconds)), make_interval(secs => \(giveUpSeconds))) AS state
            """
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce()).first?.decode(String.self, "state") ?? "missing"
        }
    }
}

/// One connection that `LISTEN`s for the outbox's wake-ups (channel `vpsgate_events`,
/// payload `<operation id or -> <event type>`), kept apart from every statement.
public final class EventNotifications {
    public static let channel = "vpsgate_events"
    private let database: PostgresConnection

    public init(url: String, applicationName: String) {
        database = PostgresConnection(url: url, applicationName: applicationName)
    }

    /// Connects (again) and listens; a notification sent while not listening is lost, so
    /// the caller treats every (re)start as "anything may have changed".
    public func listen() throws(StoreError) {
        database.close()
        do {
            try database.query("LISTEN vpsgate_events")
        } catch {
            throw StoreError(error)
        }
    }

    /// The payloads that arrived within `timeoutMilliseconds` (none: time ran out).
    public func next(timeoutMilliseconds: Int) throws(StoreError) -> [String] {
        do {
            return try database.notifications(timeoutMilliseconds: timeoutMilliseconds)
                .filter { $0.channel == Self.channel }.map(\.payload)
        } catch {
            throw StoreError(error)
        }
    }
}
