/// Every operation of openapi-vps.json (62: 21 reads, 41 writes), by the document's path
/// templates under `/api/vps/v1`. A path that fits none, or fits with another method, is
/// Hostinger's 404.
extension Context {
    static let routes: [Route] = virtualMachineRoutes + dockerRoutes + firewallRoutes + keyRoutes + scriptRoutes + catalogueRoutes

    private static let virtualMachineRoutes: [Route] = [
        Route("GET", "/virtual-machines") { context, _ in context.listVMs() },
        Route("POST", "/virtual-machines") { context, _ in context.purchase() },
        vm("GET", "/virtual-machines/{virtualMachineId}") { context, vm, _ in .json(200, context.vmJSON(vm)) },
        vm("GET", "/virtual-machines/{virtualMachineId}/actions") { context, vm, _ in context.actions(of: vm) },
        vm("GET", "/virtual-machines/{virtualMachineId}/actions/{actionId}") { context, vm, p in context.action(p, of: vm) },
        vm("GET", "/virtual-machines/{virtualMachineId}/backups") { context, vm, _ in context.paginated(vm.backups.map(backupJSON)) },
        vm("POST", "/virtual-machines/{virtualMachineId}/backups/{backupId}/restore") { context, vm, p in context.restoreBackup(p, of: vm) },
        vm("PUT", "/virtual-machines/{virtualMachineId}/hostname") { context, vm, _ in context.setHostname(vm) },
        vm("DELETE", "/virtual-machines/{virtualMachineId}/hostname") { context, vm, _ in context.resetHostname(vm) },
        vm("GET", "/virtual-machines/{virtualMachineId}/metrics") { context, vm, _ in context.metrics(vm) },
        vm("GET", "/virtual-machines/{virtualMachineId}/monarx") { context, vm, _ in context.monarxMetrics(vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/monarx") { context, vm, _ in context.installMonarx(vm) },
        vm("DELETE", "/virtual-machines/{virtualMachineId}/monarx") { context, vm, _ in context.uninstallMonarx(vm) },
        vm("PUT", "/virtual-machines/{virtualMachineId}/nameservers") { context, vm, _ in context.setNameservers(vm) },
        vm("PUT", "/virtual-machines/{virtualMachineId}/panel-password") { context, vm, _ in context.setPanelPassword(vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/ptr/{ipAddressId}") { context, vm, p in context.ptr("POST", p, of: vm) },
        vm("DELETE", "/virtual-machines/{virtualMachineId}/ptr/{ipAddressId}") { context, vm, p in context.ptr("DELETE", p, of: vm) },
        vm("GET", "/virtual-machines/{virtualMachineId}/public-keys") { context, vm, _ in context.attachedKeys(of: vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/recovery") { context, vm, _ in context.startRecovery(vm) },
        vm("DELETE", "/virtual-machines/{virtualMachineId}/recovery") { context, vm, _ in context.stopRecovery(vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/recreate") { context, vm, _ in context.recreate(vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/restart") { context, vm, _ in context.restart(vm) },
        vm("PUT", "/virtual-machines/{virtualMachineId}/root-password") { context, vm, _ in context.setRootPassword(vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/setup") { context, vm, _ in context.setup(vm) },
        vm("GET", "/virtual-machines/{virtualMachineId}/snapshot") { context, vm, _ in context.snapshot(of: vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/snapshot") { context, vm, _ in context.createSnapshot(vm) },
        vm("DELETE", "/virtual-machines/{virtualMachineId}/snapshot") { context, vm, _ in context.deleteSnapshot(vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/snapshot/restore") { context, vm, _ in context.restoreSnapshot(vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/start") { context, vm, _ in context.start(vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/stop") { context, vm, _ in context.stop(vm) },
    ]

    private static let dockerRoutes: [Route] = [
        vm("GET", "/virtual-machines/{virtualMachineId}/docker") { context, vm, _ in context.listProjects(vm) },
        vm("POST", "/virtual-machines/{virtualMachineId}/docker") { context, vm, _ in context.createProject(vm) },
        project("GET", "/virtual-machines/{virtualMachineId}/docker/{projectName}") { context, _, project in
            context.projectContents(project)
        },
        project("GET", "/virtual-machines/{virtualMachineId}/docker/{projectName}/containers") { context, vm, project in
            context.containers(project, on: vm)
        },
        project("GET", "/virtual-machines/{virtualMachineId}/docker/{projectName}/logs") { context, _, project in context.logs(project) },
        project("POST", "/virtual-machines/{virtualMachineId}/docker/{projectName}/start") { context, vm, project in
            context.changeProject(.start, project, on: vm)
        },
        project("POST", "/virtual-machines/{virtualMachineId}/docker/{projectName}/stop") { context, vm, project in
            context.changeProject(.stop, project, on: vm)
        },
        project("POST", "/virtual-machines/{virtualMachineId}/docker/{projectName}/restart") { context, vm, project in
            context.changeProject(.restart, project, on: vm)
        },
        project("POST", "/virtual-machines/{virtualMachineId}/docker/{projectName}/update") { context, vm, project in
            context.changeProject(.update, project, on: vm)
        },
        project("DELETE", "/virtual-machines/{virtualMachineId}/docker/{projectName}/down") { context, vm, project in
            context.changeProject(.down, project, on: vm)
        },
    ]

    private static let firewallRoutes: [Route] = [
        Route("GET", "/firewall") { context, _ in context.listFirewalls() },
        Route("POST", "/firewall") { context, _ in context.createFirewall() },
        firewall("GET", "/firewall/{firewallId}") { context, firewall, _ in .json(200, context.firewallJSON(firewall)) },
        firewall("DELETE", "/firewall/{firewallId}") { context, firewall, _ in context.deleteFirewall(firewall) },
        firewall("POST", "/firewall/{firewallId}/rules") { context, firewall, _ in context.createRule(firewall) },
        firewall("PUT", "/firewall/{firewallId}/rules/{ruleId}") { context, firewall, p in context.updateRule(firewall, p) },
        firewall("DELETE", "/firewall/{firewallId}/rules/{ruleId}") { context, firewall, p in context.deleteRule(firewall, p) },
        firewall("POST", "/firewall/{firewallId}/activate/{virtualMachineId}") { context, firewall, p in
            context.applyFirewall(firewall, "activate", p)
        },
        firewall("POST", "/firewall/{firewallId}/deactivate/{virtualMachineId}") { context, firewall, p in
            context.applyFirewall(firewall, "deactivate", p)
        },
        firewall("POST", "/firewall/{firewallId}/sync/{virtualMachineId}") { context, firewall, p in
            context.applyFirewall(firewall, "sync", p)
        },
    ]

    private static let keyRoutes: [Route] = [
        Route("GET", "/public-keys") { context, _ in context.listKeys() },
        Route("POST", "/public-keys") { context, _ in context.createKey() },
        Route("DELETE", "/public-keys/{publicKeyId}") { context, p in context.deleteKey(p) },
        vm("POST", "/public-keys/attach/{virtualMachineId}") { context, vm, _ in context.attachKeys(vm) },
    ]

    private static let scriptRoutes: [Route] = [
        Route("GET", "/post-install-scripts") { context, _ in context.listScripts() },
        Route("POST", "/post-install-scripts") { context, _ in context.createScript() },
        script("GET", "/post-install-scripts/{postInstallScriptId}") { _, script in .json(200, scriptJSON(script)) },
        script("PUT", "/post-install-scripts/{postInstallScriptId}") { context, script in context.updateScript(script) },
        script("DELETE", "/post-install-scripts/{postInstallScriptId}") { context, script in context.deleteScript(script) },
    ]

    private static let catalogueRoutes: [Route] = [
        Route("GET", "/data-centers") { context, _ in context.listDataCenters() },
        Route("GET", "/templates") { context, _ in context.listTemplates() },
        Route("GET", "/templates/{templateId}") { context, p in context.template(p) },
    ]
}
