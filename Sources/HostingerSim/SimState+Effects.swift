/// How actions end: what a successful one leaves behind, and what a failed one undoes.
extension SimState {
    /// Ends action `id` with its outcome: the VM takes its effect, or goes back to where it was.
    mutating func settle(_ id: Int) {
        guard let action = actions[id], !action.settled else { return }
        actions[id]?.settled = true
        unsettled.remove(id)
        guard var vm = vms[action.vmID] else { return }
        vm.pendingActions -= 1
        if action.outcome == "success" {
            apply(action.effect, to: &vm, at: action.completesAt)
        } else {
            revert(action.effect, on: &vm)
            if let previous = vm.stateBeforeAction, action.effect.transitionalState != nil { vm.state = previous }
        }
        if vm.pendingActions == 0 { vm.stateBeforeAction = nil }
        vms[action.vmID] = vm
    }

    /// What a successful action leaves behind. It changes `vm` (a copy the caller stores)
    /// and the account's resources, never `vms` itself.
    private mutating func apply(_ effect: Effect, to vm: inout VirtualMachine, at time: Int64) {
        switch effect {
        case .power(_, let final): vm.state = final
        case .hostname(let name): vm.hostname = name
        case .resetHostname:
            vm.hostname = VirtualMachine.defaultHostname(vm.id)
            for index in vm.ipv4.indices { vm.ipv4[index].ptr = nil }
        case .nameservers(let ns1, let ns2, let ns3): (vm.ns1, vm.ns2, vm.ns3) = (ns1, ns2, ns3)
        case .ptr(let ipID, let domain):
            if let index = vm.ipv4.firstIndex(where: { $0.id == ipID }) { vm.ipv4[index].ptr = domain }
        case .rootPassword, .panelPassword: break
        case .recoveryStart: vm.state = "recovery"
        case .recoveryStop: vm.state = "running"
        case .snapshotCreate: vm.snapshot = Snapshot(id: 9000 + vm.id, createdAt: time)
        case .snapshotDelete: vm.snapshot = nil
        case .snapshotRestore, .backupRestore: vm.state = "running"
        case .recreate(let templateID):
            // A fresh operating system: no snapshot (Hostinger deletes it) and no Docker projects.
            vm.templateID = templateID
            vm.snapshot = nil
            vm.dockerProjects = [:]
            vm.state = "running"
        case .monarx(let installed): vm.monarxInstalled = installed
        case .firewallActivate(let id): activateFirewall(id, on: &vm)
        case .firewallDeactivate(let id):
            if vm.firewallID == id {
                vm.firewallID = nil
                firewalls[id]?.syncedVMs.remove(vm.id)
            }
        case .firewallSync(let id): firewalls[id]?.syncedVMs.insert(vm.id)
        case .attachKeys(let keys):
            for key in keys where !vm.attachedKeys.contains(where: { $0.id == key.id }) { vm.attachedKeys.append(key) }
        case .setup(let setup): apply(setup, to: &vm)
        case .docker(let change): apply(change, to: &vm, at: time)
        }
    }

    /// What a failed action undoes, besides the VM's state: a Docker project goes back to
    /// what it was before the request.
    private func revert(_ effect: Effect, on vm: inout VirtualMachine) {
        if case .docker(let change) = effect { vm.dockerProjects[change.project] = change.previous }
    }

    /// One active firewall per VM: activating another leaves the previous one.
    private mutating func activateFirewall(_ id: Int, on vm: inout VirtualMachine) {
        // The firewall may have been deleted while the action ran.
        guard firewalls[id] != nil else { return }
        if let previous = vm.firewallID, previous != id { firewalls[previous]?.syncedVMs.remove(vm.id) }
        vm.firewallID = id
        firewalls[id]?.syncedVMs.insert(vm.id)
    }

    private mutating func apply(_ setup: VMSetup, to vm: inout VirtualMachine) {
        vm.templateID = setup.templateID
        vm.dataCenterID = setup.dataCenterID
        vm.hostname = setup.hostname ?? VirtualMachine.defaultHostname(vm.id)
        if let ns1 = setup.ns1 { vm.ns1 = ns1 }
        if let ns2 = setup.ns2 { vm.ns2 = ns2 }
        vm.monarxInstalled = setup.installMonarx
        vm.backupsEnabled = setup.enableBackups
        if let given = setup.publicKey {
            let key = PublicKey(id: ids.next(\.publicKey), name: given.name, key: given.key)
            publicKeys[key.id] = key
            vm.attachedKeys.append(key)
        }
        vm.state = "running"
    }

    private func apply(_ change: DockerChange, to vm: inout VirtualMachine, at time: Int64) {
        guard change.kind != .down else {
            vm.dockerProjects[change.project] = nil
            return
        }
        guard var project = vm.dockerProjects[change.project] else { return }
        switch change.kind {
        case .stop: project.stop(at: time)
        case .update: project.update(at: time)
        default: project.run(at: time)
        }
        vm.dockerProjects[change.project] = project
    }
}
