/// Every command (docs/api.md), one declaration each.
extension Command {
    // MARK: Fields and path parameters, each declared once and read by reference
    private static let hostname = Field.fqdn("hostname", "A fully qualified domain name.")
    private static let ns1 = Field.ipAddress("ns1", "Primary resolver address.")
    private static let ns2 = Field.ipAddress("ns2", required: false, "Secondary resolver address.")
    private static let ns3 = Field.ipAddress("ns3", required: false, "Third resolver address.")
    private static let domain = Field.fqdn("domain", "The PTR record's domain.")
    private static let publicKeyIDs = Field.positiveIntegers("ids", "Ids of account SSH keys to attach.")
    private static let password = Field.password("password", "The new password: 12+ characters with upper, lower and digit.")
    private static let recoveryPassword = Field.password("root_password", "Temporary root password for recovery mode.")
    private static let templateID = Field.positiveInteger("template_id", "The OS template to install.")
    private static let recreatePassword = Field.password("password", required: false, "Root password (random when absent).")
    private static let panelPassword = Field.password("panel_password", required: false, "Panel password (random when absent).")
    private static let postInstallScriptID = Field.positiveInteger("post_install_script_id", required: false, "A post-install script to run.")
    private static let confirm = Field.confirmation("The VPS id again: this command destroys data.")

    private static let ipAddressID = PathParameter("ipAddressId")
    private static let firewallID = PathParameter("firewallId")
    private static let backupID = PathParameter("backupId")
    private static let setupTemplateID = Field.positiveInteger("template_id", "The OS template to install.")
    private static let dataCenterID = Field.positiveInteger("data_center_id", "The data center the VM runs in.")
    private static let setupPassword = Field.password("password", required: false, "Root password (random when absent).")
    private static let setupHostname = Field.fqdn("hostname", required: false, "A hostname instead of the default one.")
    private static let setupScriptID = Field.positiveInteger("post_install_script_id", required: false, "A post-install script to run.")
    private static let installMonarx = Field.boolean("install_monarx", "Install the Monarx malware scanner (default false).")
    private static let enableBackups = Field.boolean("enable_backups", "Weekly backups (default true).")
    private static let setupNS1 = Field.ipAddress("ns1", required: false, "Primary resolver address.")
    private static let setupNS2 = Field.ipAddress("ns2", required: false, "Secondary resolver address.")
    private static let projectName = PathParameter("projectName")
    private static let newProjectName = Field.projectName("project_name", "The project's name: 3 to 64 letters, digits, dashes or underscores.")
    private static let compose = Field.text("content", maxBytes: 8192, "The docker-compose YAML, or a URL to it or to a GitHub repository (8 KiB at most).")
    private static let environment = Field.secretText("environment", maxBytes: 8192, required: false,
                                                      "Environment variables (KEY=value lines); secret: never stored or logged.")

    private static let firewallName = Field.text("name", maxBytes: 255, "The firewall's name (255 bytes at most).")
    private static let ruleID = PathParameter("ruleId")
    private static let ruleProtocol = Field.choice("protocol", ["TCP", "UDP", "ICMP", "GRE", "any", "ESP", "AH", "ICMPv6", "SSH", "HTTP", "HTTPS",
                                                                "MySQL", "PostgreSQL"], "The protocol (Hostinger's list; SSH, HTTP, … name their port).")
    private static let rulePort = Field.string("port", .port, "A port (443), a range (1024:2048) or any.")
    private static let ruleSource = Field.choice("source", ["any", "custom"], "any, or custom with source_detail naming the addresses.")
    private static let ruleSourceDetail = Field.string("source_detail", .networkSource,
                                                       "any (with source any), or an address, CIDR block or IPv4 range a-b (with source custom).")
    private static let keyName = Field.text("name", maxBytes: 255, "The key's name (255 bytes at most).")
    private static let publicKey = Field.string("key", .sshPublicKey, "One OpenSSH public key line: type, base64 key, optional comment.")
    private static let scriptName = Field.text("name", maxBytes: 255, "The script's name (255 bytes at most).")
    private static let scriptContent = Field.text("content", maxBytes: 48 * 1024, hashed: true,
                                                  "The script (48 KiB at most); kept by vpsgate only as its SHA-256.")
    private static let itemID = Field.string("item_id", .identifier, "The catalogue price item to buy: hostingercom-vps-kvm2-usd-1m.")
    private static let paymentMethodID = Field.positiveInteger("payment_method_id", required: false, "A payment method (the default when absent).")
    private static let coupons = Field.identifiers("coupons", "Discount coupon codes (10 at most).")

    /// A firewall rule's body, with the one rule no single field states: source any goes with source_detail any.
    private static func ruleBody(_ input: CommandInput) throws(FieldErrors) -> JSONValue {
        let source = try input.value(ruleSource)
        let detail = try input.value(ruleSourceDetail)
        if (source == "any") != (detail == "any") {
            throw FieldErrors([("source_detail", ["must be any exactly when source is any"])])
        }
        return .object([("protocol", .string(try input.value(ruleProtocol))), ("port", .string(try input.value(rulePort))),
                        ("source", .string(source)), ("source_detail", .string(detail))])
    }

    /// The `setup` of a purchase or a VM setup, from its fields.
    private static func setupMembers(_ input: CommandInput) throws(FieldErrors) -> [(key: String, value: JSONValue)] {
        var members: [(key: String, value: JSONValue)] = [
            ("template_id", .number(String(try input.value(setupTemplateID)))),
            ("data_center_id", .number(String(try input.value(dataCenterID)))),
        ]
        if let password = input.optional(setupPassword) { members.append(("password", .string(password.value))) }
        if let hostname = input.optional(setupHostname) { members.append(("hostname", .string(hostname))) }
        if let script = input.optional(setupScriptID) { members.append(("post_install_script_id", .number(String(script)))) }
        if let monarx = input.optional(installMonarx) { members.append(("install_monarx", .bool(monarx))) }
        if let backups = input.optional(enableBackups) { members.append(("enable_backups", .bool(backups))) }
        if let ns1 = input.optional(setupNS1) { members.append(("ns1", .string(ns1))) }
        if let ns2 = input.optional(setupNS2) { members.append(("ns2", .string(ns2))) }
        return members
    }

    private static var setupFields: [BodyField] {
        [setupTemplateID.declaration, dataCenterID.declaration, setupPassword.declaration, setupHostname.declaration,
         setupScriptID.declaration, installMonarx.declaration, enableBackups.declaration, setupNS1.declaration, setupNS2.declaration]
    }

    public static let catalogue: [Command] = [
        // MARK: Power (vps:power)
        Command("vps.start", "POST", ["start"], .power, summary: "Start the VPS.", actions: ["ct_start", "start"]) { input in .start(vm: input.vps) },
        Command("vps.stop", "POST", ["stop"], .power, summary: "Stop the VPS.", effects: ["Stopping does not stop billing: a stopped VPS is still charged."], actions: ["ct_stop", "stop"]) { input in .stop(vm: input.vps) },
        Command("vps.restart", "POST", ["restart"], .power, summary: "Restart the VPS (a stopped one is started).", effects: ["The VPS is unreachable while it restarts; a stopped VPS is started."], actions: ["ct_restart", "restart"]) { input in
            .restart(vm: input.vps)
        },

        // MARK: Configuration (vps:configure)
        Command("vps.hostname.set", "PUT", ["hostname"], .configure, fields: [hostname.declaration],
                summary: "Set the hostname.", actions: ["set_hostname"]) { input throws(FieldErrors) in .setHostname(vm: input.vps, hostname: try input.value(hostname)) },
        Command("vps.hostname.reset", "DELETE", ["hostname"], .configure,
                summary: "Reset the hostname to Hostinger's default (also resets PTR records).", effects: ["Also resets the PTR records of the VPS's addresses."], irreversible: true, actions: ["reset_hostname"]) { input in .resetHostname(vm: input.vps) },
        Command("vps.nameservers.set", "PUT", ["nameservers"], .configure,
                fields: [ns1.declaration, ns2.declaration, ns3.declaration], summary: "Set the DNS resolvers.", effects: ["Replaces every resolver: ns2 and ns3 left out are removed."], actions: ["set_nameservers"]) { input throws(FieldErrors) in
            .setNameservers(vm: input.vps, ns1: try input.value(ns1), ns2: input.optional(ns2), ns3: input.optional(ns3))
        },
        Command("vps.ptr.create", "POST", ["ptr", ipAddressID.segment], .configure, fields: [domain.declaration],
                summary: "Create or replace the PTR record of one of the VPS's IP addresses.", actions: ["create_ptr"]) { input throws(FieldErrors) in
            .createPTR(vm: input.vps, ipAddress: try input.value(ipAddressID), domain: try input.value(domain))
        },
        Command("vps.ptr.delete", "DELETE", ["ptr", ipAddressID.segment], .configure,
                summary: "Delete the PTR record of one of the VPS's IP addresses.", irreversible: true, actions: ["delete_ptr"]) { input throws(FieldErrors) in
            .deletePTR(vm: input.vps, ipAddress: try input.value(ipAddressID))
        },
        Command("vps.firewall.activate", "POST", ["firewalls", firewallID.segment, "activate"], .configure,
                summary: "Activate a firewall on the VPS (one active firewall per VPS).", effects: ["Only one firewall is active on a VPS: another active one is deactivated."], actions: ["firewall_activate"]) { input throws(FieldErrors) in
            .activateFirewall(try input.value(firewallID), vm: input.vps)
        },
        Command("vps.firewall.deactivate", "POST", ["firewalls", firewallID.segment, "deactivate"], .configure,
                summary: "Deactivate a firewall on the VPS.", actions: ["firewall_deactivate"]) { input throws(FieldErrors) in
            .deactivateFirewall(try input.value(firewallID), vm: input.vps)
        },
        Command("vps.firewall.sync", "POST", ["firewalls", firewallID.segment, "sync"], .configure,
                summary: "Apply a firewall's current rules to the VPS.", effects: ["Applies the firewall's current rules, replacing those in effect on the VPS."], actions: ["firewall_sync"]) { input throws(FieldErrors) in
            .syncFirewall(try input.value(firewallID), vm: input.vps)
        },
        Command("vps.public_keys.attach", "POST", ["public-keys"], .configure, fields: [publicKeyIDs.declaration],
                summary: "Attach SSH public keys to the VPS.", actions: ["attach_public_keys"]) { input throws(FieldErrors) in
            .attachPublicKeys(vm: input.vps, ids: try input.value(publicKeyIDs))
        },
        Command("vps.monarx.install", "POST", ["monarx"], .configure, summary: "Install the Monarx malware scanner.", actions: ["monarx_install"]) { input in
            .installMonarx(vm: input.vps)
        },
        Command("vps.monarx.uninstall", "DELETE", ["monarx"], .configure, summary: "Uninstall the Monarx malware scanner.", actions: ["monarx_uninstall"]) { input in
            .uninstallMonarx(vm: input.vps)
        },

        // MARK: Credentials (vps:credentials)
        Command("vps.root_password.set", "PUT", ["root-password"], .credentials, fields: [password.declaration],
                summary: "Set the root password.", effects: ["The old root password stops working at once."], irreversible: true, actions: ["change_root_password"]) { input throws(FieldErrors) in
            .setRootPassword(vm: input.vps, password: try input.value(password))
        },
        Command("vps.panel_password.set", "PUT", ["panel-password"], .credentials, fields: [password.declaration],
                summary: "Set the control panel's password (no effect without a panel OS).", irreversible: true, actions: ["change_panel_password"]) { input throws(FieldErrors) in
            .setPanelPassword(vm: input.vps, password: try input.value(password))
        },
        Command("vps.recovery.start", "POST", ["recovery"], .credentials, fields: [recoveryPassword.declaration],
                summary: "Boot the VPS into recovery mode.", effects: ["The VPS reboots into a recovery image; its own system is not running until recovery stops."], irreversible: true, actions: ["recovery_start"]) { input throws(FieldErrors) in
            .startRecovery(vm: input.vps, rootPassword: try input.value(recoveryPassword))
        },
        Command("vps.recovery.stop", "DELETE", ["recovery"], .credentials, summary: "Leave recovery mode.", actions: ["recovery_stop"]) { input in
            .stopRecovery(vm: input.vps)
        },

        // MARK: Snapshots (vps:snapshot)
        Command("vps.snapshot.create", "POST", ["snapshot"], .snapshot, summary: "Take a snapshot (replaces the existing one).", effects: ["A VPS has one snapshot: a new one replaces the existing snapshot."], irreversible: true, actions: ["snapshot_create"]) { input in
            .createSnapshot(vm: input.vps)
        },
        Command("vps.snapshot.delete", "DELETE", ["snapshot"], .snapshot, summary: "Delete the snapshot.", effects: ["The snapshot is gone; it cannot be restored afterwards."], irreversible: true, actions: ["snapshot_delete"]) { input in
            .deleteSnapshot(vm: input.vps)
        },

        // MARK: Destructive (vps:destroy), each confirmed with the VPS id
        Command("vps.snapshot.restore", "POST", ["snapshot", "restore"], .destroy, fields: [confirm.declaration],
                summary: "Restore the snapshot, overwriting the VPS's disk.", effects: ["Overwrites the VPS's disk with the snapshot: changes made since it was taken are lost."], irreversible: true, actions: ["snapshot_restore"]) { input in .restoreSnapshot(vm: input.vps) },
        Command("vps.backup.restore", "POST", ["backups", backupID.segment, "restore"], .destroy, fields: [confirm.declaration],
                summary: "Restore a backup, overwriting the VPS's disk.", effects: ["Overwrites the VPS's disk with the backup: changes made since it was taken are lost."], irreversible: true, actions: ["backup_restore"]) { input throws(FieldErrors) in
            .restoreBackup(vm: input.vps, backup: try input.value(backupID))
        },
        Command("vps.recreate", "POST", ["recreate"], .destroy,
                fields: [templateID.declaration, recreatePassword.declaration, panelPassword.declaration,
                         postInstallScriptID.declaration, confirm.declaration],
                summary: "Reinstall the OS: every file on the VPS, and its snapshots, are lost.", effects: ["Reinstalls the OS: every file on the VPS is lost.", "Deletes the VPS's snapshots."], irreversible: true, actions: ["recreate"]) { input throws(FieldErrors) in
            .recreate(vm: input.vps, templateID: try input.value(templateID), password: input.optional(recreatePassword),
                      panelPassword: input.optional(panelPassword), postInstallScriptID: input.optional(postInstallScriptID))
        },

        // MARK: Setup of a purchased VM (vps:setup), answered synchronously with the VM
        Command("vps.setup", "POST", ["setup"], .setup, fields: setupFields,
                summary: "Set up a purchased VM still in state initial: its OS, data center, password and hostname.",
                effects: ["Installs the OS on the VM; only a VM in state initial can be set up.",
                          "The operation ends with Hostinger's answer (the VM, now creating) in result; the VM's own ct_create action finishes the setup."],
                answersResource: true, irreversible: true, actions: ["ct_create"]) { input throws(FieldErrors) in
            .setup(vm: input.vps, members: try setupMembers(input))
        },

        // MARK: Docker Manager projects (docker:write)
        Command("vps.docker.create", "POST", ["docker"], .dockerWrite,
                fields: [newProjectName.declaration, compose.declaration, environment.declaration],
                summary: "Create and start a Docker Compose project on the VPS.",
                effects: ["Pulls the images and starts the project's containers on the VPS."], actions: ["docker_project_create"]) { input throws(FieldErrors) in
            .createDockerProject(vm: input.vps, name: try input.value(newProjectName), content: try input.value(compose),
                                 environment: input.optional(environment))
        },
        Command("vps.docker.start", "POST", ["docker", projectName.segment, "start"], .dockerWrite,
                summary: "Start a Docker Compose project's containers.", actions: ["docker_project_start"]) { input throws(FieldErrors) in
            .dockerProject(vm: input.vps, project: try input.name(projectName), "start")
        },
        Command("vps.docker.stop", "POST", ["docker", projectName.segment, "stop"], .dockerWrite,
                summary: "Stop a Docker Compose project's containers.",
                effects: ["The project's services are down until it is started again."], actions: ["docker_project_stop"]) { input throws(FieldErrors) in
            .dockerProject(vm: input.vps, project: try input.name(projectName), "stop")
        },
        Command("vps.docker.restart", "POST", ["docker", projectName.segment, "restart"], .dockerWrite,
                summary: "Restart a Docker Compose project's containers.",
                effects: ["The project's services are briefly down."], actions: ["docker_project_restart"]) { input throws(FieldErrors) in
            .dockerProject(vm: input.vps, project: try input.name(projectName), "restart")
        },
        Command("vps.docker.update", "POST", ["docker", projectName.segment, "update"], .dockerWrite,
                summary: "Pull the project's images again and recreate its containers.",
                effects: ["Containers are recreated from newly pulled images: the services restart."], irreversible: true, actions: ["docker_project_update"]) { input throws(FieldErrors) in
            .dockerProject(vm: input.vps, project: try input.name(projectName), "update")
        },
        Command("vps.docker.down", "DELETE", ["docker", projectName.segment, "down"], .dockerWrite,
                summary: "Take a Docker Compose project down and delete it.",
                effects: ["Stops and removes the project's containers and deletes the project."], irreversible: true, actions: ["docker_project_delete"]) { input throws(FieldErrors) in
            .downDockerProject(vm: input.vps, project: try input.name(projectName))
        },

        // MARK: Firewalls (firewall:write; creating one: on the account)
        Command("firewall.create", "POST", on: .account, ["firewalls"], .firewallWrite, fields: [firewallName.declaration],
                summary: "Create an empty firewall in the account.", answersResource: true) { input throws(FieldErrors) in
            .createFirewall(name: try input.value(firewallName))
        },
        Command("firewall.delete", "DELETE", on: .firewall, [], .firewallWrite, summary: "Delete the firewall.",
                effects: ["Every VPS that has this firewall active has it deactivated: its rules stop applying there."],
                answersResource: true, changesFirewallVPS: true, irreversible: true) { input in .deleteFirewall(input.id) },
        Command("firewall.rule.create", "POST", on: .firewall, ["rules"], .firewallWrite,
                fields: [ruleProtocol.declaration, rulePort.declaration, ruleSource.declaration, ruleSourceDetail.declaration],
                summary: "Add an accepting rule to the firewall.",
                effects: ["Every VPS using the firewall is out of sync until the firewall is synced to it (vps.firewall.sync): the answer names them."],
                answersResource: true, unsyncsFirewall: true) { input throws(FieldErrors) in
            .createFirewallRule(input.id, rule: try ruleBody(input))
        },
        Command("firewall.rule.update", "PUT", on: .firewall, ["rules", ruleID.segment], .firewallWrite,
                fields: [ruleProtocol.declaration, rulePort.declaration, ruleSource.declaration, ruleSourceDetail.declaration],
                summary: "Replace one of the firewall's rules.",
                effects: ["Every VPS using the firewall is out of sync until the firewall is synced to it (vps.firewall.sync): the answer names them."],
                answersResource: true, unsyncsFirewall: true) { input throws(FieldErrors) in
            .updateFirewallRule(input.id, rule: try input.value(ruleID), try ruleBody(input))
        },
        Command("firewall.rule.delete", "DELETE", on: .firewall, ["rules", ruleID.segment], .firewallWrite,
                summary: "Delete one of the firewall's rules.",
                effects: ["Every VPS using the firewall is out of sync until the firewall is synced to it (vps.firewall.sync): the answer names them."],
                answersResource: true, unsyncsFirewall: true, irreversible: true) { input throws(FieldErrors) in
            .deleteFirewallRule(input.id, rule: try input.value(ruleID))
        },

        // MARK: SSH public keys (public_key:write; adding one: on the account)
        Command("public_key.create", "POST", on: .account, ["public-keys"], .publicKeyWrite,
                fields: [keyName.declaration, publicKey.declaration], summary: "Add an SSH public key to the account.",
                answersResource: true) { input throws(FieldErrors) in
            .createPublicKey(name: try input.value(keyName), key: try input.value(publicKey))
        },
        Command("public_key.delete", "DELETE", on: .publicKey, [], .publicKeyWrite, summary: "Delete an SSH public key from the account.",
                effects: ["VPS the key was attached to keep it: deleting it from the account does not remove it from them."],
                answersResource: true, irreversible: true) { input in .deletePublicKey(input.id) },

        // MARK: Post-install scripts (script:write; creating one: on the account)
        Command("post_install_script.create", "POST", on: .account, ["post-install-scripts"], .scriptWrite,
                fields: [scriptName.declaration, scriptContent.declaration],
                summary: "Create a post-install script (run as root after an OS install).", answersResource: true) { input throws(FieldErrors) in
            .createScript(name: try input.value(scriptName), content: try input.value(scriptContent))
        },
        Command("post_install_script.update", "PUT", on: .postInstallScript, [], .scriptWrite,
                fields: [scriptName.declaration, scriptContent.declaration],
                summary: "Replace a post-install script's name and content.",
                effects: ["Installs from now on run the new content."], answersResource: true, irreversible: true) { input throws(FieldErrors) in
            .updateScript(input.id, name: try input.value(scriptName), content: try input.value(scriptContent))
        },
        Command("post_install_script.delete", "DELETE", on: .postInstallScript, [], .scriptWrite, summary: "Delete a post-install script.",
                answersResource: true, irreversible: true) { input in .deleteScript(input.id) },

        // MARK: Purchase (billing:purchase on the account), always approved first
        Command("vps.purchase", "POST", on: .account, ["vps"], .billingPurchase,
                fields: [itemID.declaration, paymentMethodID.declaration, coupons.declaration] + setupFields,
                summary: "Buy a new VM and set it up; needs at least one approval whatever the policy.",
                effects: ["Charges the account for the plan (item_id) at once.",
                          "The operation ends with Hostinger's answer (the order and the new VM) in result; the VM's own ct_create action finishes its setup."],
                answersResource: true, minimumApprovals: 1, irreversible: true) { input throws(FieldErrors) in
            var members: [(key: String, value: JSONValue)] = [("item_id", .string(try input.value(itemID)))]
            if let payment = input.optional(paymentMethodID) { members.append(("payment_method_id", .number(String(payment)))) }
            members.append(("setup", .object(try setupMembers(input))))
            if let codes = input.optional(coupons) { members.append(("coupons", .array(codes.map { .string($0) }))) }
            return .purchase(members)
        },
    ]
}
