import VpsgateCore

/// The JSON shapes of openapi-vps.json's resources.
extension Context {
    static func time(_ microseconds: Int64) -> JSONValue { .string(Timestamp.rfc3339Seconds(microseconds: microseconds)) }
    static func number(_ value: Int) -> JSONValue { .number(String(value)) }
    static func optional(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
    static func optional(_ value: Int?) -> JSONValue { value.map(number) ?? .null }

    func vmJSON(_ vm: VirtualMachine) -> JSONValue {
        func ip(_ address: IPAddress) -> JSONValue {
            .object([("id", Self.number(address.id)), ("address", .string(address.address)), ("ptr", Self.optional(address.ptr))])
        }
        return .object([
            ("id", Self.number(vm.id)), ("firewall_group_id", Self.optional(vm.firewallID)),
            ("subscription_id", .string(vm.subscriptionID)), ("data_center_id", Self.optional(vm.dataCenterID)),
            ("plan", .string(vm.plan.name)), ("hostname", .string(vm.hostname)), ("state", .string(vm.state)),
            ("actions_lock", .string(vm.pendingActions > 0 ? "locked" : "unlocked")),
            ("cpus", Self.number(vm.plan.cpus)), ("memory", Self.number(vm.plan.memory)), ("disk", Self.number(vm.plan.disk)),
            ("bandwidth", Self.number(vm.plan.bandwidth)), ("ns1", Self.optional(vm.ns1)), ("ns2", Self.optional(vm.ns2)),
            ("ipv4", .array(vm.ipv4.map(ip))), ("ipv6", .array([])),
            ("template", vm.templateID.flatMap { state.templates[$0] }.map(Self.templateJSON) ?? .null),
            ("created_at", Self.time(vm.createdAt)),
        ])
    }

    static func templateJSON(_ template: Template) -> JSONValue {
        .object([("id", number(template.id)), ("name", .string(template.name)),
                 ("description", .string(template.description)), ("documentation", .null)])
    }

    static func dataCenterJSON(_ center: DataCenter) -> JSONValue {
        .object([("id", number(center.id)), ("name", .string(center.name)), ("location", .string(center.location)),
                 ("city", .string(center.city)), ("continent", .string(center.continent))])
    }

    /// `is_synced`: applied somewhere, and current on every VM that has it active.
    func firewallJSON(_ firewall: Firewall) -> JSONValue {
        let active = state.vms.values.filter { $0.firewallID == firewall.id }.map(\.id)
        let synced = !firewall.syncedVMs.isEmpty && active.allSatisfy { firewall.syncedVMs.contains($0) }
        return .object([("id", Self.number(firewall.id)), ("name", .string(firewall.name)), ("is_synced", .bool(synced)),
                        ("rules", .array(firewall.rules.map(Self.ruleJSON))),
                        ("created_at", Self.time(firewall.createdAt)), ("updated_at", Self.time(firewall.updatedAt))])
    }

    static func ruleJSON(_ rule: FirewallRule) -> JSONValue {
        .object([("id", number(rule.id)), ("action", .string(rule.action)), ("protocol", .string(rule.protocol)),
                 ("port", .string(rule.port)), ("source", .string(rule.source)), ("source_detail", .string(rule.sourceDetail))])
    }

    static func keyJSON(_ key: PublicKey) -> JSONValue {
        .object([("id", number(key.id)), ("name", .string(key.name)), ("key", .string(key.key))])
    }

    static func scriptJSON(_ script: PostInstallScript) -> JSONValue {
        .object([("id", number(script.id)), ("name", .string(script.name)), ("content", .string(script.content)),
                 ("created_at", time(script.createdAt)), ("updated_at", time(script.updatedAt))])
    }

    static func backupJSON(_ backup: Backup) -> JSONValue {
        .object([("id", number(backup.id)), ("size", .number("15240192")), ("restore_time", .number("3600")),
                 ("location", .string("nl-srv-nodebackups")), ("created_at", time(backup.createdAt))])
    }

    static func snapshotJSON(_ snapshot: Snapshot) -> JSONValue {
        .object([("id", number(snapshot.id)), ("restore_time", .number("1800")), ("created_at", time(snapshot.createdAt)),
                 ("expires_at", time(snapshot.createdAt + 20 * 86_400_000_000))])
    }
}
