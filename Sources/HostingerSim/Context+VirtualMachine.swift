import VpsgateCore

/// Reads and mutations of one VM; every mutation answers an Action.
extension Context {
    // MARK: - Reads

    func listVMs() -> SimResponse {
        .json(200, .array(state.vms.keys.sorted().compactMap { state.vms[$0] }.map(vmJSON)))
    }

    /// Newest first, as Hostinger lists them.
    func actions(of vm: VirtualMachine) -> SimResponse {
        paginated((state.actionsByVM[vm.id] ?? []).reversed().compactMap { state.actions[$0]?.json(now: now) })
    }

    func action(_ parameters: Parameters, of vm: VirtualMachine) -> SimResponse {
        guard let action = parameters.id("actionId").flatMap({ state.actions[$0] }), action.vmID == vm.id else {
            return Simulator.routeNotFound()
        }
        return .json(200, action.json(now: now))
    }

    func snapshot(of vm: VirtualMachine) -> SimResponse {
        guard let snapshot = vm.snapshot else { return Simulator.error(404, "[VPS:2002] Snapshot not found.") }
        return .json(200, Self.snapshotJSON(snapshot))
    }

    // MARK: - Power

    mutating func start(_ vm: VirtualMachine) -> SimResponse {
        act(vm, "ct_start", .power(transitional: vm.state == "running" ? nil : "starting", final: "running"))
    }

    mutating func stop(_ vm: VirtualMachine) -> SimResponse {
        act(vm, "ct_stop", .power(transitional: vm.state == "stopped" ? nil : "stopping", final: "stopped"))
    }

    mutating func restart(_ vm: VirtualMachine) -> SimResponse {
        act(vm, "ct_restart", .power(transitional: "starting", final: "running"))
    }

    // MARK: - Configuration

    mutating func setHostname(_ vm: VirtualMachine) -> SimResponse {
        validated([("hostname", Self.hostnameRule())]) { context in
            context.act(vm, "set_hostname", .hostname(context.body["hostname"]?.stringValue ?? vm.hostname))
        }
    }

    mutating func resetHostname(_ vm: VirtualMachine) -> SimResponse { act(vm, "reset_hostname", .resetHostname) }

    mutating func setNameservers(_ vm: VirtualMachine) -> SimResponse {
        validated([("ns1", Self.ipRule(required: true)), ("ns2", Self.ipRule(required: false)), ("ns3", Self.ipRule(required: false))]) {
            context in
            let body = context.body
            return context.act(vm, "set_nameservers", .nameservers(
                body["ns1"]?.stringValue ?? "", body["ns2"]?.stringValue, body["ns3"]?.stringValue))
        }
    }

    mutating func setRootPassword(_ vm: VirtualMachine) -> SimResponse {
        validated([("password", Self.passwordRule(required: true))]) { $0.act(vm, "change_root_password", .rootPassword) }
    }

    mutating func setPanelPassword(_ vm: VirtualMachine) -> SimResponse {
        validated([("password", Self.passwordRule(required: true))]) { $0.act(vm, "change_panel_password", .panelPassword) }
    }

    /// PTR create (`POST`, an upsert) or delete (`DELETE`) on one of the VM's addresses.
    mutating func ptr(_ method: String, _ parameters: Parameters, of vm: VirtualMachine) -> SimResponse {
        guard let ipID = parameters.id("ipAddressId"), vm.ipv4.contains(where: { $0.id == ipID }) else {
            return Simulator.routeNotFound()
        }
        if method == "DELETE" { return act(vm, "delete_ptr", .ptr(ipAddressID: ipID, domain: nil)) }
        return validated([("domain", Self.hostnameRule())]) { context in
            context.act(vm, "create_ptr", .ptr(ipAddressID: ipID, domain: context.body["domain"]?.stringValue))
        }
    }

    mutating func installMonarx(_ vm: VirtualMachine) -> SimResponse { act(vm, "monarx_install", .monarx(installed: true)) }

    mutating func uninstallMonarx(_ vm: VirtualMachine) -> SimResponse { act(vm, "monarx_uninstall", .monarx(installed: false)) }

    // MARK: - Recovery, snapshots, backups, reinstall

    mutating func startRecovery(_ vm: VirtualMachine) -> SimResponse {
        validated([("root_password", Self.passwordRule(required: true))]) { $0.act(vm, "recovery_start", .recoveryStart) }
    }

    /// Not in recovery: Hostinger accepts the request and the action fails.
    mutating func stopRecovery(_ vm: VirtualMachine) -> SimResponse {
        act(vm, "recovery_stop", .recoveryStop, forceError: vm.state != "recovery")
    }

    mutating func createSnapshot(_ vm: VirtualMachine) -> SimResponse { act(vm, "snapshot_create", .snapshotCreate) }

    mutating func deleteSnapshot(_ vm: VirtualMachine) -> SimResponse {
        act(vm, "snapshot_delete", .snapshotDelete, forceError: vm.snapshot == nil)
    }

    mutating func restoreSnapshot(_ vm: VirtualMachine) -> SimResponse {
        act(vm, "snapshot_restore", .snapshotRestore, forceError: vm.snapshot == nil)
    }

    mutating func restoreBackup(_ parameters: Parameters, of vm: VirtualMachine) -> SimResponse {
        guard let backupID = parameters.id("backupId"), vm.backups.contains(where: { $0.id == backupID }) else {
            return Simulator.routeNotFound()
        }
        return act(vm, "backup_restore", .backupRestore)
    }

    /// `post_install_script_id` is checked as an integer only: vpsgate's tests recreate with
    /// ids the simulator does not hold.
    mutating func recreate(_ vm: VirtualMachine) -> SimResponse {
        validated([
            ("template_id", templateRule), ("password", Self.passwordRule(required: false)),
            ("panel_password", Self.passwordRule(required: false)), ("post_install_script_id", Self.integerRule(required: false)),
        ]) { context in
            context.act(vm, "recreate", .recreate(templateID: context.body["template_id"]?.intValue ?? 0))
        }
    }
}
