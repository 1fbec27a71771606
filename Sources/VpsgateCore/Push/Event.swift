/// One event of the feed (docs/design.md#completion-push): written by the database in the same transaction
/// as the operation state change or approval decision it reports (the outbox triggers of
/// migration 0009), read by `GET /v1/events` and delivered by webhooks.
public struct EventRecord: Sendable, Equatable {
    public var id: Int64
    public var type: String
    /// Microseconds since the epoch, by the database's clock.
    public var occurredAt: Int64
    public var vpsID: Int?
    public var operationID: String?
    /// The event's data as the database wrote it (a JSON object).
    public var data: [UInt8]

    public init(id: Int64, type: String, occurredAt: Int64, vpsID: Int?, operationID: String?, data: [UInt8]) {
        self.id = id
        self.type = type
        self.occurredAt = occurredAt
        self.vpsID = vpsID
        self.operationID = operationID
        self.data = data
    }

    /// The event's public id, also the `webhook-id` of every delivery of it (the same on
    /// every retry and redelivery, so receivers can drop duplicates).
    public var publicID: String { "evt_\(id)" }

    /// `{id, type, occurred_at, vps_id, operation_id, data}`: a feed entry and a webhook's body.
    public func write(to writer: inout JSONWriter) { write(to: &writer, consoleURL: nil) }

    /// The entry; with `consoleURL` (`VPSGATE_CONSOLE_URL`) and an operation, also
    /// `console_url`, the operation's page in the console, after `operation_id`.
    func write(to writer: inout JSONWriter, consoleURL: String?) {
        writer.beginObject()
        writer.member("id", publicID)
        writer.member("type", type)
        writer.member("occurred_at", Timestamp.rfc3339(microseconds: occurredAt))
        writer.member("vps_id", vpsID)
        writer.member("operation_id", operationID)
        if let consoleURL, let operationID { writer.member("console_url", consoleURL + "/operations/" + operationID) }
        writer.key("data")
        writer.raw(data)
        writer.endObject()
    }

    public func json() -> [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }

    /// A webhook's body: the feed entry, with `console_url` when `consoleURL` is set and the
    /// event is about an operation. The same for every attempt of a delivery (one
    /// `webhook-id`, one body) while the configuration stays.
    public func webhookJSON(consoleURL: String?) -> [UInt8] {
        var writer = JSONWriter()
        write(to: &writer, consoleURL: consoleURL)
        return writer.bytes
    }
}

/// The event types, for validating webhook subscriptions: `operation.<state>` for every
/// state, `approval.granted`, `approval.denied`, and the wildcards `operation.*`, `approval.*`.
public enum EventType {
    public static let all: [String] = OperationState.allCases.map { "operation." + $0.rawValue } + ["approval.granted", "approval.denied"]
        + batchStates.map { "batch." + $0 }
    public static let wildcards = ["operation.*", "approval.*", "batch.*"]
    /// A batch's states (migration 0013): each change is an event (docs/design.md#the-shared-budget).
    public static let batchStates = ["awaiting_approval", "running", "halted", "cancelled", "succeeded", "completed_with_failures", "denied",
                                     "expired"]

    public static func isSubscribable(_ type: String) -> Bool { all.contains(type) || wildcards.contains(type) }
}

/// A position in the feed: the writing transaction's id and the event's id (the feed's
/// order). Opaque to clients: `c1.<hex>.<hex>`.
public struct EventCursor: Sendable, Equatable, CustomStringConvertible {
    public var transaction: UInt64
    public var id: Int64

    public init(transaction: UInt64, id: Int64) {
        self.transaction = transaction
        self.id = id
    }

    public var description: String { "c1." + String(transaction, radix: 16) + "." + String(id, radix: 16) }

    /// Parses what `description` wrote; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let hex = { (part: Substring) in (1...16).contains(part.count) && part.allSatisfy { $0.isHexDigit && !$0.isUppercase } }
        guard parts.count == 3, parts[0] == "c1", hex(parts[1]), hex(parts[2]),
            let transaction = UInt64(parts[1], radix: 16), let id = Int64(parts[2], radix: 16)
        else { return nil }
        self.init(transaction: transaction, id: id)
    }
}

/// One page of the feed.
public struct EventPage: Sendable, Equatable {
    public var events: [EventRecord]
    /// Where the next page starts (nil: where this one started, nothing was looked at).
    public var next: EventCursor?
    /// The cursor is older than the pruned part of the feed.
    public var expired: Bool
    /// Events past this page exist but belong to transactions still running: worth
    /// looking again shortly even without a wake-up.
    public var heldBack: Bool

    public init(events: [EventRecord], next: EventCursor?, expired: Bool = false, heldBack: Bool = false) {
        self.events = events
        self.next = next
        self.expired = expired
        self.heldBack = heldBack
    }
}
