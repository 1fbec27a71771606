import VpsgateCore

/// The account's resources: firewalls and their rules, SSH public keys, post-install scripts.
/// Creating, changing and deleting them is synchronous (the resource, or `{"message"}`);
/// applying them to a VM (activate, sync, attach) is an action on that VM.
extension Context {
    // MARK: - Firewalls

    func listFirewalls() -> SimResponse {
        paginated(state.firewalls.keys.sorted().compactMap { state.firewalls[$0] }.map(firewallJSON))
    }

    /// A route on one firewall: unknown or malformed ids answer 404 before `handle` runs.
    static func firewall(_ method: String, _ template: String,
                         _ handle: @escaping @Sendable (inout Context, Firewall, Parameters) -> SimResponse) -> Route {
        Route(method, template) { context, parameters in
            guard let firewall = parameters.id("firewallId").flatMap({ context.state.firewalls[$0] }) else {
                return Simulator.routeNotFound()
            }
            return handle(&context, firewall, parameters)
        }
    }

    mutating func createFirewall() -> SimResponse {
        validated([("name", Self.stringRule())]) { context in
            let id = context.state.ids.next(\.firewall)
            let firewall = Firewall(id: id, name: context.body["name"]?.stringValue ?? "", createdAt: context.now, updatedAt: context.now)
            context.state.firewalls[id] = firewall
            return .json(200, context.firewallJSON(firewall))
        }
    }

    /// Hostinger: "Any virtual machine that has this firewall activated will automatically have it deactivated."
    mutating func deleteFirewall(_ firewall: Firewall) -> SimResponse {
        for (id, vm) in state.vms where vm.firewallID == firewall.id { state.vms[id]?.firewallID = nil }
        state.firewalls[firewall.id] = nil
        return Self.requestAccepted
    }

    /// Activate, deactivate or sync `firewall` on the VM the path names: an action on that VM.
    mutating func applyFirewall(_ firewall: Firewall, _ change: String, _ parameters: Parameters) -> SimResponse {
        guard let vm = parameters.id("virtualMachineId").flatMap({ state.vms[$0] }) else { return Simulator.routeNotFound() }
        switch change {
        case "activate": return act(vm, "firewall_activate", .firewallActivate(firewall.id))
        case "deactivate": return act(vm, "firewall_deactivate", .firewallDeactivate(firewall.id))
        default: return act(vm, "firewall_sync", .firewallSync(firewall.id))
        }
    }

    // MARK: - Firewall rules

    private var ruleRules: [(String, Rule)] {
        [("protocol", Self.inRule(FirewallRule.protocols)), ("port", Self.portRule), ("source", Self.inRule(["any", "custom"])),
         ("source_detail", Self.sourceDetailRule(source: body["source"]?.stringValue))]
    }

    /// The rule the body describes (valid already), with `id`.
    private func rule(id: Int) -> FirewallRule {
        FirewallRule(id: id, protocol: body["protocol"]?.stringValue ?? "", port: body["port"]?.stringValue ?? "",
                     source: body["source"]?.stringValue ?? "", sourceDetail: body["source_detail"]?.stringValue ?? "")
    }

    mutating func createRule(_ firewall: Firewall) -> SimResponse {
        validated(ruleRules) { context in
            let rule = context.rule(id: context.state.ids.next(\.firewallRule))
            context.changeRules(of: firewall) { $0.append(rule) }
            return .json(200, Self.ruleJSON(rule))
        }
    }

    mutating func updateRule(_ firewall: Firewall, _ parameters: Parameters) -> SimResponse {
        guard let ruleID = parameters.id("ruleId"), let index = firewall.rules.firstIndex(where: { $0.id == ruleID }) else {
            return Simulator.routeNotFound()
        }
        return validated(ruleRules) { context in
            let rule = context.rule(id: ruleID)
            context.changeRules(of: firewall) { $0[index] = rule }
            return .json(200, Self.ruleJSON(rule))
        }
    }

    mutating func deleteRule(_ firewall: Firewall, _ parameters: Parameters) -> SimResponse {
        guard let ruleID = parameters.id("ruleId"), firewall.rules.contains(where: { $0.id == ruleID }) else {
            return Simulator.routeNotFound()
        }
        changeRules(of: firewall) { $0.removeAll { $0.id == ruleID } }
        return Self.requestAccepted
    }

    /// Every rule change leaves every VM using the firewall out of sync until it is synced
    /// again (Hostinger's documentation of the three rule endpoints).
    private mutating func changeRules(of firewall: Firewall, _ change: (inout [FirewallRule]) -> Void) {
        var changed = firewall
        change(&changed.rules)
        changed.syncedVMs.removeAll()
        changed.updatedAt = now
        state.firewalls[firewall.id] = changed
    }

    /// `443`, `1024:2048` or `any`.
    static var portRule: Rule {
        { value in
            let problems = stringRule()(value)
            guard problems.isEmpty, let text = value?.stringValue else { return problems }
            return FirewallRule.isPort(text) ? [] : ["The FIELD must be a port (1-65535), a range (1024:2048) or any."]
        }
    }

    /// `any` with source `any`; an address, CIDR or range (`a-b`) with source `custom`.
    static func sourceDetailRule(source: String?) -> Rule {
        { value in
            let problems = stringRule()(value)
            guard problems.isEmpty, let text = value?.stringValue else { return problems }
            if source == "any" { return text == "any" ? [] : ["The FIELD must be any when the source is any."] }
            return FirewallRule.isSource(text) ? [] : ["The FIELD must be an IP address, a CIDR block or an address range."]
        }
    }

    // MARK: - SSH public keys

    func listKeys() -> SimResponse { paginated(state.publicKeys.keys.sorted().compactMap { state.publicKeys[$0] }.map(Self.keyJSON)) }

    func attachedKeys(of vm: VirtualMachine) -> SimResponse { paginated(vm.attachedKeys.map(Self.keyJSON)) }

    mutating func createKey() -> SimResponse {
        validated([("name", Self.stringRule()), ("key", Self.publicKeyRule())]) { context in
            let key = PublicKey(id: context.state.ids.next(\.publicKey), name: context.body["name"]?.stringValue ?? "",
                                key: context.body["key"]?.stringValue ?? "")
            context.state.publicKeys[key.id] = key
            return .json(200, Self.keyJSON(key))
        }
    }

    /// Hostinger: "Deleting public key from account does not remove it from virtual machine."
    mutating func deleteKey(_ parameters: Parameters) -> SimResponse {
        guard let id = parameters.id("publicKeyId"), state.publicKeys[id] != nil else { return Simulator.routeNotFound() }
        state.publicKeys[id] = nil
        return Self.requestAccepted
    }

    mutating func attachKeys(_ vm: VirtualMachine) -> SimResponse {
        guard let ids = body["ids"]?.arrayValue, !ids.isEmpty else {
            return Self.validationError([("ids", ["The ids field is required."])])
        }
        var keys: [PublicKey] = []
        for value in ids {
            guard let id = value.intValue else { return Self.validationError([("ids", ["The ids must be an array of integers."])]) }
            guard let key = state.publicKeys[id] else { return Simulator.error(404, "[VPS:2002] Public key not found.") }
            keys.append(key)
        }
        return act(vm, "attach_public_keys", .attachKeys(keys))
    }

    // MARK: - Post-install scripts

    /// Hostinger: "Maximum script size is 48KB."
    static let maximumScriptBytes = 48 * 1024

    private static var scriptRules: [(String, Rule)] {
        [("name", stringRule()), ("content", sizedTextRule(maxBytes: maximumScriptBytes))]
    }

    func listScripts() -> SimResponse {
        paginated(state.postInstallScripts.keys.sorted().compactMap { state.postInstallScripts[$0] }.map(Self.scriptJSON))
    }

    /// A route on one script: unknown or malformed ids answer 404 before `handle` runs.
    static func script(_ method: String, _ template: String,
                       _ handle: @escaping @Sendable (inout Context, PostInstallScript) -> SimResponse) -> Route {
        Route(method, template) { context, parameters in
            guard let script = parameters.id("postInstallScriptId").flatMap({ context.state.postInstallScripts[$0] }) else {
                return Simulator.routeNotFound()
            }
            return handle(&context, script)
        }
    }

    mutating func createScript() -> SimResponse {
        validated(Self.scriptRules) { context in
            let script = PostInstallScript(
                id: context.state.ids.next(\.postInstallScript), name: context.body["name"]?.stringValue ?? "",
                content: context.body["content"]?.stringValue ?? "", createdAt: context.now, updatedAt: context.now)
            context.state.postInstallScripts[script.id] = script
            return .json(200, Self.scriptJSON(script))
        }
    }

    mutating func updateScript(_ script: PostInstallScript) -> SimResponse {
        validated(Self.scriptRules) { context in
            var updated = script
            updated.name = context.body["name"]?.stringValue ?? script.name
            updated.content = context.body["content"]?.stringValue ?? script.content
            updated.updatedAt = context.now
            context.state.postInstallScripts[script.id] = updated
            return .json(200, Self.scriptJSON(updated))
        }
    }

    mutating func deleteScript(_ script: PostInstallScript) -> SimResponse {
        state.postInstallScripts[script.id] = nil
        return Self.requestAccepted
    }
}

extension FirewallRule {
    /// The document's protocol enum.
    static let protocols = ["TCP", "UDP", "ICMP", "GRE", "any", "ESP", "AH", "ICMPv6", "SSH", "HTTP", "HTTPS", "MySQL", "PostgreSQL"]

    static func isPort(_ text: String) -> Bool { Validators.isPort(text) }

    static func isSource(_ text: String) -> Bool { Validators.isNetworkSource(text) }
}
