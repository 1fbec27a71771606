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
        let earliest = createdAt / 1_000_000 - skewSeconds
        let latest = latestDispatch / 1_000_000 + skewSeconds
        return actions
            .filter { names.contains($0.name) && !adopted.contains($0.id) }
            .filter { action in action.createdAtSeconds.map { (earliest...latest).contains($0) } ?? false }
            .min { ($0.createdAtSeconds ?? 0, $0.id) < ($1.createdAtSeconds ?? 0, $1.id) }
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
