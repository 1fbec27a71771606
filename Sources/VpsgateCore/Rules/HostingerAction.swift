/// A Hostinger action: the record of asynchronous work on a VM, as a mutation's answer, an
/// action read or the action list gives it.
public struct HostingerAction: Sendable, Equatable {
    public var id: Int
    public var name: String
    /// `created`, `sent`, `delayed`, `started`, `success` or `error`.
    public var state: String
    /// When Hostinger created it, seconds since the epoch (nil when it did not say).
    public var createdAtSeconds: Int64?

    public init(id: Int, name: String, state: String, createdAt: String?) {
        self.id = id
        self.name = name
        self.state = state
        self.createdAtSeconds = createdAt.flatMap(Timestamp.secondsSinceEpoch)
    }

    /// Reads an ActionResource; unknown members are ignored.
    public init?(json: JSONValue) {
        guard let id = json["id"]?.intValue, let state = json["state"]?.stringValue else { return nil }
        self.init(id: id, name: json["name"]?.stringValue ?? "", state: state, createdAt: json["created_at"]?.stringValue)
    }

    /// `success` and `error` never change again.
    public var isTerminal: Bool { state == "success" || state == "error" }

    /// `{"id", "name", "state"}`, as operations and drift rows name an action.
    public var json: JSONValue {
        .object([("id", .number(String(id))), ("name", .string(name)), ("state", .string(state))])
    }
}

/// One page of Hostinger's action list (`GET …/actions?page=N`, newest first).
public struct HostingerActionPage: Sendable, Equatable {
    public var actions: [HostingerAction]
    /// No page follows this one.
    public var isLast: Bool

    public init(actions: [HostingerAction], isLast: Bool) {
        self.actions = actions
        self.isLast = isLast
    }

    /// Reads `{"data": [...], "meta": {"current_page", "per_page", "total"}}`; nil if it is not that shape.
    public init?(json: JSONValue) {
        guard let data = json["data"]?.arrayValue else { return nil }
        actions = data.compactMap(HostingerAction.init(json:))
        let meta = json["meta"]
        if let page = meta?["current_page"]?.intValue, let perPage = meta?["per_page"]?.intValue, let total = meta?["total"]?.intValue,
            page > 0, perPage > 0 {
            let (seen, overflow) = page.multipliedReportingOverflow(by: perPage)
            isLast = overflow || seen >= total || data.isEmpty
        } else {
            isLast = true
        }
    }

    /// Whether this page holds an action created before `seconds` (so, newest first, the
    /// pages read so far cover everything since then).
    public func reachesBack(to seconds: Int64) -> Bool {
        actions.contains { ($0.createdAtSeconds ?? .max) < seconds }
    }
}

extension Timestamp {
    /// Seconds since the epoch for `2026-11-26T17:04:34Z` (fractions and `+00:00` accepted).
    public static func secondsSinceEpoch(_ text: String) -> Int64? {
        let characters = Array(text.utf8)
        guard characters.count >= 19, characters[4] == UInt8(ascii: "-"), characters[10] == UInt8(ascii: "T") else { return nil }
        func number(_ range: Range<Int>) -> Int64? { Int64(String(decoding: characters[range], as: UTF8.self)) }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        return RetryAfter.daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
    }
}
