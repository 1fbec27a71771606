import VpsgateCore

/// One API request being handled against a copy of the state.
struct Context {
    var state: SimState
    let now: Int64
    let body: JSONValue
    let actionError: Bool
    let page: Int
    /// A name for the action this request creates, instead of the usual one (a fault: Hostinger's names are free text).
    var actionName: String? = nil

    static let perPage = 15

    // MARK: - Routing

    mutating func route(_ method: String, _ parts: [String]) -> SimResponse {
        switch (method, parts.count, parts.first) {
        case ("GET", 1, "virtual-machines"):
            return .json(200, .array(state.vms.keys.sorted().map { vmJSON(state.vms[$0]!) }))
        case ("GET", 1, "templates"):
            return .json(200, .array(state.templates.keys.sorted().map { templateJSON(state.templates[$0]!) }))
        case ("GET", 1, "firewall"):
            return paginated(state.firewalls.keys.sorted().map { firewallJSON(state.firewalls[$0]!) })
        case ("GET", 1, "public-keys"):
            return paginated(state.publicKeys.keys.sorted().map { keyJSON(state.publicKeys[$0]!) })
        case ("POST", 3, "public-keys") where parts[1] == "attach":
            return withVM(parts[2]) { context, vm in context.attachKeys(vm) }
        case ("POST", 4, "firewall") where ["activate", "deactivate", "sync"].contains(parts[2]):
            guard let firewallID = Int(parts[1]), state.firewalls[firewallID] != nil else { return Simulator.routeNotFound() }
            return withVM(parts[3]) { context, vm in
                switch parts[2] {
                case "activate": context.act(vm, "firewall_activate", .firewallActivate(firewallID))
                case "deactivate": context.act(vm, "firewall_deactivate", .firewallDeactivate(firewallID))
                default: context.act(vm, "firewall_sync", .firewallSync(firewallID))
                }
            }
        case (_, _, "virtual-machines") where parts.count >= 2:
            return withVM(parts[1]) { context, vm in context.routeVM(method, vm, Array(parts.dropFirst(2))) }
        default:
            return Simulator.routeNotFound()
        }
    }

    private mutating func withVM(_ idText: String, _ body: (inout Context, VirtualMachine) -> SimResponse) -> SimResponse {
        guard let id = Int(idText), let vm = state.vms[id] else { return Simulator.routeNotFound() }
        return body(&self, vm)
    }

    private mutating func routeVM(_ method: String, _ vm: VirtualMachine, _ rest: [String]) -> SimResponse {
        switch (method, rest) {
        case ("GET", []): return .json(200, vmJSON(vm))
        case ("GET", ["actions"]):
            let ids = (state.actionsByVM[vm.id] ?? []).reversed()
            return paginated(ids.map { state.actions[$0]!.json(now: now) })
        case ("GET", let r) where r.count == 2 && r[0] == "actions":
            guard let actionID = Int(r[1]), let action = state.actions[actionID], action.vmID == vm.id else {
                return Simulator.routeNotFound()
            }
            return .json(200, action.json(now: now))
        case ("GET", ["backups"]): return paginated(vm.backups.map(backupJSON))
        case ("GET", ["snapshot"]):
            guard let snapshot = vm.snapshot else { return Simulator.error(404, "[VPS:2002] Snapshot not found.") }
            return .json(200, snapshotJSON(snapshot))
        case ("GET", ["public-keys"]): return paginated(vm.attachedKeys.compactMap { state.publicKeys[$0] }.map(keyJSON))
        case ("POST", ["start"]):
            return act(vm, "ct_start", .power(transitional: vm.state == "running" ? nil : "starting", final: "running"))
        case ("POST", ["stop"]):
            return act(vm, "ct_stop", .power(transitional: vm.state == "stopped" ? nil : "stopping", final: "stopped"))
        case ("POST", ["restart"]): return act(vm, "ct_restart", .power(transitional: "starting", final: "running"))
        case ("PUT", ["hostname"]):
            return validated([("hostname", hostnameRule)]) { $0.act(vm, "set_hostname", .hostname($0.body["hostname"]!.stringValue!)) }
        case ("DELETE", ["hostname"]): return act(vm, "reset_hostname", .resetHostname)
        case ("PUT", ["nameservers"]):
            return validated([("ns1", ipRule(required: true)), ("ns2", ipRule(required: false)), ("ns3", ipRule(required: false))]) {
                $0.act(vm, "set_nameservers", .nameservers($0.body["ns1"]!.stringValue!, $0.body["ns2"]?.stringValue, $0.body["ns3"]?.stringValue))
            }
        case ("PUT", ["root-password"]):
            return validated([("password", passwordRule(required: true))]) { $0.act(vm, "change_root_password", .rootPassword) }
        case ("PUT", ["panel-password"]):
            return validated([("password", passwordRule(required: true))]) { $0.act(vm, "change_panel_password", .panelPassword) }
        case (_, let r) where r.count == 2 && r[0] == "ptr" && (method == "POST" || method == "DELETE"):
            guard let ipID = Int(r[1]), vm.ipv4.contains(where: { $0.id == ipID }) else { return Simulator.routeNotFound() }
            if method == "DELETE" { return act(vm, "delete_ptr", .ptr(ipAddressID: ipID, domain: nil)) }
            return validated([("domain", hostnameRule)]) { $0.act(vm, "create_ptr", .ptr(ipAddressID: ipID, domain: $0.body["domain"]!.stringValue!)) }
        case ("POST", ["recovery"]):
            return validated([("root_password", passwordRule(required: true))]) { $0.act(vm, "recovery_start", .recoveryStart) }
        case ("DELETE", ["recovery"]):
            // Not in recovery: Hostinger accepts the request and the action fails.
            return act(vm, "recovery_stop", .recoveryStop, forceError: vm.state != "recovery")
        case ("POST", ["snapshot"]): return act(vm, "snapshot_create", .snapshotCreate)
        case ("DELETE", ["snapshot"]): return act(vm, "snapshot_delete", .snapshotDelete, forceError: vm.snapshot == nil)
        case ("POST", ["snapshot", "restore"]):
            return act(vm, "snapshot_restore", .snapshotRestore, forceError: vm.snapshot == nil)
        case ("POST", let r) where r.count == 3 && r[0] == "backups" && r[2] == "restore":
            guard let backupID = Int(r[1]), vm.backups.contains(where: { $0.id == backupID }) else { return Simulator.routeNotFound() }
            return act(vm, "backup_restore", .backupRestore)
        case ("POST", ["recreate"]):
            return validated([
                ("template_id", templateRule), ("password", passwordRule(required: false)),
                ("panel_password", passwordRule(required: false)), ("post_install_script_id", integerRule(required: false)),
            ]) { $0.act(vm, "recreate", .recreate(templateID: $0.body["template_id"]!.intValue!)) }
        case ("POST", ["monarx"]): return act(vm, "monarx_install", .monarx(installed: true))
        case ("DELETE", ["monarx"]): return act(vm, "monarx_uninstall", .monarx(installed: false))
        default: return Simulator.routeNotFound()
        }
    }

    // MARK: - Actions

    /// Records an action on `vm` and answers with it, as Hostinger does for every mutation.
    private mutating func act(_ vm: VirtualMachine, _ name: String, _ effect: Effect, forceError: Bool = false) -> SimResponse {
        let id = state.nextActionID
        state.nextActionID += 1
        let delay = Int64(state.actionDelayMilliseconds) * 1000
        let action = Action(id: id, vmID: vm.id, name: actionName ?? name, createdAt: now, completesAt: now + delay,
                            outcome: (actionError || forceError) ? "error" : "success", effect: effect)
        state.actions[id] = action
        state.unsettled.insert(id)
        state.actionsByVM[vm.id, default: []].append(id)
        var updated = vm
        if updated.pendingActions == 0 { updated.stateBeforeAction = updated.state }
        updated.pendingActions += 1
        // A request Hostinger is bound to fail (recovery stop outside recovery) leaves the state alone.
        if let transitional = effect.transitionalState, !forceError { updated.state = transitional }
        state.vms[vm.id] = updated
        if delay == 0 {
            // Settle at once so a zero delay behaves like an instant action.
            state.actions[id]!.settled = true
            state.unsettled.remove(id)
            var settled = state.vms[vm.id]!
            settled.pendingActions -= 1
            if action.outcome == "success" {
                Context.apply(effect, to: &settled, state: &state, now: now)
            } else if let previous = settled.stateBeforeAction {
                settled.state = previous
            }
            if settled.pendingActions == 0 { settled.stateBeforeAction = nil }
            state.vms[vm.id] = settled
        }
        return .json(200, action.json(now: now))
    }

    /// What a successful action leaves behind.
    static func apply(_ effect: Effect, to vm: inout VirtualMachine, state: inout SimState, now: Int64) {
        switch effect {
        case .power(_, let final): vm.state = final
        case .hostname(let name): vm.hostname = name
        case .resetHostname:
            vm.hostname = "srv\(vm.id).hstgr.cloud"
            for index in vm.ipv4.indices { vm.ipv4[index].ptr = nil }
        case .nameservers(let ns1, let ns2, let ns3): (vm.ns1, vm.ns2, vm.ns3) = (ns1, ns2, ns3)
        case .ptr(let ipID, let domain):
            if let index = vm.ipv4.firstIndex(where: { $0.id == ipID }) { vm.ipv4[index].ptr = domain }
        case .rootPassword, .panelPassword: break
        case .recoveryStart: vm.state = "recovery"
        case .recoveryStop: vm.state = "running"
        case .snapshotCreate: vm.snapshot = Snapshot(id: 9000 + vm.id, createdAt: now)
        case .snapshotDelete: vm.snapshot = nil
        case .snapshotRestore, .backupRestore: vm.state = "running"
        case .recreate(let templateID):
            vm.templateID = templateID
            vm.snapshot = nil
            vm.state = "running"
        case .monarx(let installed): vm.monarxInstalled = installed
        case .firewallActivate(let id):
            vm.firewallID = id
            state.firewalls[id]?.syncedVMs.insert(vm.id)
        case .firewallDeactivate(let id):
            if vm.firewallID == id { vm.firewallID = nil }
        case .firewallSync(let id): state.firewalls[id]?.syncedVMs.insert(vm.id)
        case .attachKeys(let ids):
            for id in ids where !vm.attachedKeys.contains(id) { vm.attachedKeys.append(id) }
        }
    }

    private mutating func attachKeys(_ vm: VirtualMachine) -> SimResponse {
        guard let ids = body["ids"]?.arrayValue, !ids.isEmpty else {
            return validationError([("ids", ["The ids field is required."])])
        }
        var keys: [Int] = []
        for value in ids {
            guard let id = value.intValue else { return validationError([("ids", ["The ids must be an array of integers."])]) }
            guard state.publicKeys[id] != nil else { return Simulator.error(404, "[VPS:2002] Public key not found.") }
            keys.append(id)
        }
        return act(vm, "attach_public_keys", .attachKeys(keys))
    }

    // MARK: - Validation (Laravel style)

    typealias Rule = (JSONValue?) -> [String]

    private mutating func validated(_ rules: [(String, Rule)], then body: (inout Context) -> SimResponse) -> SimResponse {
        var errors: [(String, [String])] = []
        for (field, rule) in rules {
            let messages = rule(self.body[field]).map { $0.replacingOccurrences(of: "FIELD", with: field.replacingOccurrences(of: "_", with: " ")) }
            if !messages.isEmpty { errors.append((field, messages)) }
        }
        guard errors.isEmpty else { return validationError(errors) }
        return body(&self)
    }

    private func validationError(_ errors: [(String, [String])]) -> SimResponse {
        let total = errors.reduce(0) { $0 + $1.1.count }
        var message = errors[0].1[0]
        if total > 1 { message += " (and \(total - 1) more error\(total > 2 ? "s" : ""))" }
        if errors[0].0 == "hostname", errors[0].1[0].contains("FQDN") { message = "[VPS:2004] Wrong hostname FQDN format" }
        return Simulator.error(422, message, errors: errors)
    }

    private var hostnameRule: Rule {
        { value in
            guard let value, !value.isNull else { return ["The FIELD field is required."] }
            guard let text = value.stringValue else { return ["The FIELD field must be a string."] }
            return Validators.isFQDN(text) ? [] : ["The FIELD must be a valid FQDN."]
        }
    }

    private func ipRule(required: Bool) -> Rule {
        { value in
            guard let value, !value.isNull else { return required ? ["The FIELD field is required."] : [] }
            guard let text = value.stringValue else { return ["The FIELD field must be a string."] }
            return Validators.isIPAddress(text) ? [] : ["The FIELD field must be a valid IP address."]
        }
    }

    private func passwordRule(required: Bool) -> Rule {
        { value in
            guard let value, !value.isNull else { return required ? ["The FIELD field is required."] : [] }
            guard let text = value.stringValue else { return ["The FIELD field must be a string."] }
            return Validators.passwordProblems(text).map { "The FIELD \($0)." }
        }
    }

    private func integerRule(required: Bool) -> Rule {
        { value in
            guard let value, !value.isNull else { return required ? ["The FIELD field is required."] : [] }
            guard let number = value.intValue, number > 0 else { return ["The FIELD field must be an integer."] }
            return []
        }
    }

    private var templateRule: Rule {
        { [state] value in
            guard let value, !value.isNull else { return ["The FIELD field is required."] }
            guard let id = value.intValue else { return ["The FIELD field must be an integer."] }
            return state.templates[id] == nil ? ["The selected FIELD is invalid."] : []
        }
    }

    // MARK: - JSON shapes (openapi-vps.json)

    private func paginated(_ items: [JSONValue]) -> SimResponse {
        let start = (page - 1) * Self.perPage
        let slice = start < items.count ? Array(items[start..<min(start + Self.perPage, items.count)]) : []
        return .json(200, .object([
            ("data", .array(slice)),
            ("meta", .object([
                ("current_page", .number(String(page))), ("per_page", .number(String(Self.perPage))),
                ("total", .number(String(items.count))),
            ])),
        ]))
    }

    func vmJSON(_ vm: VirtualMachine) -> JSONValue {
        func ip(_ address: IPAddress) -> JSONValue {
            .object([("id", .number(String(address.id))), ("address", .string(address.address)),
                     ("ptr", address.ptr.map { .string($0) } ?? .null)])
        }
        return .object([
            ("id", .number(String(vm.id))), ("firewall_group_id", vm.firewallID.map { .number(String($0)) } ?? .null),
            ("subscription_id", .string("Azz353Uhl1xC54p\(vm.id)")), ("data_center_id", .number("21")), ("plan", .string("KVM 2")),
            ("hostname", .string(vm.hostname)), ("state", .string(vm.state)),
            ("actions_lock", .string(vm.pendingActions > 0 ? "locked" : "unlocked")),
            ("cpus", .number("2")), ("memory", .number("8192")), ("disk", .number("102400")), ("bandwidth", .number("8388608")),
            ("ns1", vm.ns1.map { .string($0) } ?? .null), ("ns2", vm.ns2.map { .string($0) } ?? .null),
            ("ipv4", .array(vm.ipv4.map(ip))), ("ipv6", .array([])),
            ("template", vm.templateID.flatMap { state.templates[$0] }.map(templateJSON) ?? .null),
            ("created_at", .string(Timestamp.rfc3339Seconds(microseconds: vm.createdAt))),
        ])
    }

    private func templateJSON(_ template: Template) -> JSONValue {
        .object([("id", .number(String(template.id))), ("name", .string(template.name)),
                 ("description", .string(template.description)), ("documentation", .null)])
    }

    private func firewallJSON(_ firewall: Firewall) -> JSONValue {
        let time = JSONValue.string(Timestamp.rfc3339Seconds(microseconds: firewall.createdAt))
        return .object([("id", .number(String(firewall.id))), ("name", .string(firewall.name)),
                        ("is_synced", .bool(!firewall.syncedVMs.isEmpty)), ("rules", .array([])),
                        ("created_at", time), ("updated_at", time)])
    }

    private func keyJSON(_ key: PublicKey) -> JSONValue {
        .object([("id", .number(String(key.id))), ("name", .string(key.name)), ("key", .string(key.key))])
    }

    private func backupJSON(_ backup: Backup) -> JSONValue {
        .object([("id", .number(String(backup.id))), ("size", .number("15240192")), ("restore_time", .number("3600")),
                 ("location", .string("nl-srv-nodebackups")),
                 ("created_at", .string(Timestamp.rfc3339Seconds(microseconds: backup.createdAt)))])
    }

    private func snapshotJSON(_ snapshot: Snapshot) -> JSONValue {
        .object([("id", .number(String(snapshot.id))), ("restore_time", .number("1800")),
                 ("created_at", .string(Timestamp.rfc3339Seconds(microseconds: snapshot.createdAt))),
                 ("expires_at", .string(Timestamp.rfc3339Seconds(microseconds: snapshot.createdAt + 20 * 86_400_000_000)))])
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
