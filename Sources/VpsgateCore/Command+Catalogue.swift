/// Every command of SPEC section 3, one declaration each.
extension Command {
    private static let password = BodyField("password", .password, secret: true, "The new password: 12+ characters with upper, lower and digit.")
    private static let confirm = BodyField("confirm", .confirmation, "The VPS id again: this command destroys data.")

    public static let catalogue: [Command] = [
        // MARK: Power (vps:power)
        Command("vps.start", "POST", ["start"], .power, summary: "Start the VPS.") { vps, _, _ in .start(vm: vps) },
        Command("vps.stop", "POST", ["stop"], .power, summary: "Stop the VPS.") { vps, _, _ in .stop(vm: vps) },
        Command("vps.restart", "POST", ["restart"], .power, summary: "Restart the VPS (a stopped one is started).") { vps, _, _ in .restart(vm: vps) },

        // MARK: Configuration (vps:configure)
        Command("vps.hostname.set", "PUT", ["hostname"], .configure,
                fields: [BodyField("hostname", .fqdn, "A fully qualified domain name.")],
                summary: "Set the hostname.") { vps, _, body in .setHostname(vm: vps, hostname: body.string("hostname")!) },
        Command("vps.hostname.reset", "DELETE", ["hostname"], .configure,
                summary: "Reset the hostname to Hostinger's default (also resets PTR records).") { vps, _, _ in .resetHostname(vm: vps) },
        Command("vps.nameservers.set", "PUT", ["nameservers"], .configure,
                fields: [BodyField("ns1", .ipAddress, "Primary resolver address."),
                         BodyField("ns2", .ipAddress, required: false, "Secondary resolver address."),
                         BodyField("ns3", .ipAddress, required: false, "Third resolver address.")],
                summary: "Set the DNS resolvers.") { vps, _, body in
            .setNameservers(vm: vps, ns1: body.string("ns1")!, ns2: body.string("ns2"), ns3: body.string("ns3"))
        },
        Command("vps.ptr.create", "POST", ["ptr", "{ipAddressId}"], .configure,
                fields: [BodyField("domain", .fqdn, "The PTR record's domain.")],
                summary: "Create or replace the PTR record of one of the VPS's IP addresses.") { vps, parameters, body in
            .createPTR(vm: vps, ipAddress: parameters["ipAddressId"]!, domain: body.string("domain")!)
        },
        Command("vps.ptr.delete", "DELETE", ["ptr", "{ipAddressId}"], .configure,
                summary: "Delete the PTR record of one of the VPS's IP addresses.") { vps, parameters, _ in
            .deletePTR(vm: vps, ipAddress: parameters["ipAddressId"]!)
        },
        Command("vps.firewall.activate", "POST", ["firewalls", "{firewallId}", "activate"], .configure,
                summary: "Activate a firewall on the VPS (one active firewall per VPS).") { vps, parameters, _ in
            .activateFirewall(parameters["firewallId"]!, vm: vps)
        },
        Command("vps.firewall.deactivate", "POST", ["firewalls", "{firewallId}", "deactivate"], .configure,
                summary: "Deactivate a firewall on the VPS.") { vps, parameters, _ in
            .deactivateFirewall(parameters["firewallId"]!, vm: vps)
        },
        Command("vps.firewall.sync", "POST", ["firewalls", "{firewallId}", "sync"], .configure,
                summary: "Apply a firewall's current rules to the VPS.") { vps, parameters, _ in
            .syncFirewall(parameters["firewallId"]!, vm: vps)
        },
        Command("vps.public_keys.attach", "POST", ["public-keys"], .configure,
                fields: [BodyField("ids", .positiveIntegers, "Ids of account SSH keys to attach.")],
                summary: "Attach SSH public keys to the VPS.") { vps, _, body in .attachPublicKeys(vm: vps, ids: body.ints("ids")) },
        Command("vps.monarx.install", "POST", ["monarx"], .configure, summary: "Install the Monarx malware scanner.") { vps, _, _ in
            .installMonarx(vm: vps)
        },
        Command("vps.monarx.uninstall", "DELETE", ["monarx"], .configure, summary: "Uninstall the Monarx malware scanner.") { vps, _, _ in
            .uninstallMonarx(vm: vps)
        },

        // MARK: Credentials (vps:credentials)
        Command("vps.root_password.set", "PUT", ["root-password"], .credentials, fields: [password],
                summary: "Set the root password.") { vps, _, body in .setRootPassword(vm: vps, password: body.secret("password")!) },
        Command("vps.panel_password.set", "PUT", ["panel-password"], .credentials, fields: [password],
                summary: "Set the control panel's password (no effect without a panel OS).") { vps, _, body in
            .setPanelPassword(vm: vps, password: body.secret("password")!)
        },
        Command("vps.recovery.start", "POST", ["recovery"], .credentials,
                fields: [BodyField("root_password", .password, secret: true, "Temporary root password for recovery mode.")],
                summary: "Boot the VPS into recovery mode.") { vps, _, body in
            .startRecovery(vm: vps, rootPassword: body.secret("root_password")!)
        },
        Command("vps.recovery.stop", "DELETE", ["recovery"], .credentials, summary: "Leave recovery mode.") { vps, _, _ in
            .stopRecovery(vm: vps)
        },

        // MARK: Snapshots (vps:snapshot)
        Command("vps.snapshot.create", "POST", ["snapshot"], .snapshot, summary: "Take a snapshot (replaces the existing one).") { vps, _, _ in
            .createSnapshot(vm: vps)
        },
        Command("vps.snapshot.delete", "DELETE", ["snapshot"], .snapshot, summary: "Delete the snapshot.") { vps, _, _ in
            .deleteSnapshot(vm: vps)
        },

        // MARK: Destructive (vps:destroy), each confirmed with the VPS id
        Command("vps.snapshot.restore", "POST", ["snapshot", "restore"], .destroy, fields: [confirm],
                summary: "Restore the snapshot, overwriting the VPS's disk.") { vps, _, _ in .restoreSnapshot(vm: vps) },
        Command("vps.backup.restore", "POST", ["backups", "{backupId}", "restore"], .destroy, fields: [confirm],
                summary: "Restore a backup, overwriting the VPS's disk.") { vps, parameters, _ in
            .restoreBackup(vm: vps, backup: parameters["backupId"]!)
        },
        Command("vps.recreate", "POST", ["recreate"], .destroy,
                fields: [BodyField("template_id", .positiveInteger, "The OS template to install."),
                         BodyField("password", .password, required: false, secret: true, "Root password (random when absent)."),
                         BodyField("panel_password", .password, required: false, secret: true, "Panel password (random when absent)."),
                         BodyField("post_install_script_id", .positiveInteger, required: false, "A post-install script to run."),
                         confirm],
                summary: "Reinstall the OS: every file on the VPS, and its snapshots, are lost.") { vps, _, body in
            .recreate(vm: vps, templateID: body.int("template_id")!, password: body.secret("password"),
                      panelPassword: body.secret("panel_password"), postInstallScriptID: body.int("post_install_script_id"))
        },
    ]
}
