/// Finds the Hostinger action an operation caused, when its answer was lost (SPEC section 5).
///
/// Hostinger has no idempotency key, so the only evidence is its action list: an action of
/// the expected name, created on that VPS no earlier than the operation (minus clock skew)
/// and no later than its dispatch could have reached Hostinger, that no other operation
/// has adopted. vpsgate holds one operation per VPS at a time, so within that window the
/// match is unambiguous unless someone acted on the VPS outside vpsgate (that is drift).
public enum ActionMatcher {
    /// The action names Hostinger gives each command's request (seen: `ct_restart`,
    /// `monarx_install`, `recreate`; the rest follow the same pattern, as hostinger-sim does).
    public static let expectedNames: [String: Set<String>] = [
        "vps.start": ["ct_start", "start"], "vps.stop": ["ct_stop", "stop"], "vps.restart": ["ct_restart", "restart"],
        "vps.hostname.set": ["set_hostname"], "vps.hostname.reset": ["reset_hostname"], "vps.nameservers.set": ["set_nameservers"],
        "vps.root_password.set": ["change_root_password"], "vps.panel_password.set": ["change_panel_password"],
        "vps.ptr.create": ["create_ptr"], "vps.ptr.delete": ["delete_ptr"],
        "vps.recovery.start": ["recovery_start"], "vps.recovery.stop": ["recovery_stop"],
        "vps.snapshot.create": ["snapshot_create"], "vps.snapshot.delete": ["snapshot_delete"],
        "vps.snapshot.restore": ["snapshot_restore"], "vps.backup.restore": ["backup_restore"], "vps.recreate": ["recreate"],
        "vps.monarx.install": ["monarx_install"], "vps.monarx.uninstall": ["monarx_uninstall"],
        "vps.firewall.activate": ["firewall_activate"], "vps.firewall.deactivate": ["firewall_deactivate"],
        "vps.firewall.sync": ["firewall_sync"], "vps.public_keys.attach": ["attach_public_keys"],
    ]

    /// The earliest-created matching action, or nil.
    /// - Parameters:
    ///   - createdAt: when the operation was recorded, microseconds since the epoch.
    ///   - latestDispatch: the last moment its request could have reached Hostinger.
    ///   - skewSeconds: tolerance for the difference between the two clocks (Hostinger
    ///     writes whole seconds).
    public static func match(command: String, createdAt: Int64, latestDispatch: Int64, actions: [HostingerActionRecord],
                             adopted: Set<Int>, skewSeconds: Int64 = 2) -> HostingerActionRecord? {
        guard let names = expectedNames[command] else { return nil }
        return candidates(createdAt: createdAt, latestDispatch: latestDispatch, actions: actions, adopted: adopted, skewSeconds: skewSeconds)
            .first { names.contains($0.name) }
    }

    /// The actions no operation has adopted that were created within the window (or whose
    /// creation time Hostinger did not give, which cannot be ruled out), oldest first.
    public static func candidates(createdAt: Int64, latestDispatch: Int64, actions: [HostingerActionRecord], adopted: Set<Int>,
                                  skewSeconds: Int64 = 2) -> [HostingerActionRecord] {
        let earliest = createdAt / 1_000_000 - skewSeconds
        let latest = latestDispatch / 1_000_000 + skewSeconds
        return actions
            .filter { !adopted.contains($0.id) && ($0.createdAtSeconds.map { (earliest...latest).contains($0) } ?? true) }
            .sorted { ($0.createdAtSeconds ?? 0, $0.id) < ($1.createdAtSeconds ?? 0, $1.id) }
    }

    /// What the reconciler concludes about an operation whose answer was lost.
    ///
    /// An action's name is evidence *for* a match, never the only evidence *against* one:
    /// a mutation is declared not applied only when Hostinger's list of the whole window
    /// holds no action that could be it. Names vpsgate does not expect leave it `unknown`,
    /// with the candidates named, for a person to decide.
    /// - Parameters:
    ///   - windowClosed: the settling window has passed (no late action can still appear).
    ///   - listCoversWindow: the pages read reach back before the operation was created.
    public static func decide(command: String, createdAt: Int64, latestDispatch: Int64, actions: [HostingerActionRecord],
                              adopted: Set<Int>, windowClosed: Bool, listCoversWindow: Bool,
                              skewSeconds: Int64 = 2) -> LostAnswerDecision {
        let inWindow = candidates(createdAt: createdAt, latestDispatch: latestDispatch, actions: actions, adopted: adopted,
                                  skewSeconds: skewSeconds)
        if let names = expectedNames[command], let action = inWindow.first(where: { names.contains($0.name) }) {
            return .adopt(action)
        }
        guard windowClosed else { return .wait }
        guard inWindow.isEmpty, listCoversWindow else { return .ambiguous(candidates: inWindow) }
        return .notApplied
    }
}

/// The reconciler's verdict on a lost answer (see `ActionMatcher.decide`).
public enum LostAnswerDecision: Sendable, Equatable {
    /// This action is the one the command caused: adopt it and follow it.
    case adopt(HostingerActionRecord)
    /// The window is still open: look again later.
    case wait
    /// It may have happened: actions in the window vpsgate cannot tie to it by name, or a
    /// list that does not reach back far enough. It stays `unknown`.
    case ambiguous(candidates: [HostingerActionRecord])
    /// Hostinger's list of the whole window holds no action that could be it.
    case notApplied
}

/// One page of Hostinger's action list (`GET …/actions?page=N`, newest first).
public struct HostingerActionPage: Sendable, Equatable {
    public var actions: [HostingerActionRecord]
    /// No page follows this one.
    public var isLast: Bool

    public init(actions: [HostingerActionRecord], isLast: Bool) {
        self.actions = actions
        self.isLast = isLast
    }

    /// Reads `{"data": [...], "meta": {"current_page", "per_page", "total"}}`; nil if it is not that shape.
    public init?(json: JSONValue) {
        guard let data = json["data"]?.arrayValue else { return nil }
        actions = data.compactMap(HostingerActionRecord.init(json:))
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

/// An action as read from Hostinger's list, with its creation time parsed.
public struct HostingerActionRecord: Sendable, Equatable {
    public var id: Int
    public var name: String
    public var state: String
    public var createdAtSeconds: Int64?

    public init(id: Int, name: String, state: String, createdAt: String?) {
        self.id = id
        self.name = name
        self.state = state
        self.createdAtSeconds = createdAt.flatMap(Timestamp.secondsSinceEpoch)
    }

    public init?(json: JSONValue) {
        guard let id = json["id"]?.intValue, let state = json["state"]?.stringValue else { return nil }
        self.init(id: id, name: json["name"]?.stringValue ?? "", state: state, createdAt: json["created_at"]?.stringValue)
    }

    public var isTerminal: Bool { state == "success" || state == "error" }

    /// `{"id", "name", "state"}`, as operations and drift rows name an action.
    public var json: JSONValue {
        .object([("id", .number(String(id))), ("name", .string(name)), ("state", .string(state))])
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
