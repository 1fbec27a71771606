/// One call vpsgate makes to Hostinger's VPS API: an explicit operation, never a passthrough.
public struct HostingerRequest: Sendable, Equatable {
    /// A short name for logs and audit: `start`, `set_hostname`, ….
    public var name: String
    public var method: String
    /// The path under the base URL, starting `/api/vps/v1/`.
    public var path: String
    public var body: JSONValue?
    /// Whether sending it twice has the effect of sending it once (docs/hostinger.md).
    public var repeatSafe: Bool
    /// A read a command needs (a batch's `*`): it takes the budget as a command does.
    public var forCommand = false

    public init(name: String, method: String, path: String, body: JSONValue? = nil, repeatSafe: Bool) {
        self.name = name
        self.method = method
        self.path = path
        self.body = body
        self.repeatSafe = repeatSafe
    }

    static let vms = "/api/vps/v1/virtual-machines"

    /// A call on one VM, `<method> /api/vps/v1/virtual-machines/<vm>/<suffix>`: what a new VPS
    /// command's catalogue entry usually sends, written in the entry itself.
    public static func vm(_ vm: Int, _ method: String, _ suffix: String, name: String, body: JSONValue? = nil, repeatSafe: Bool) -> Self {
        .init(name: name, method: method, path: "\(vms)/\(vm)/\(suffix)", body: body, repeatSafe: repeatSafe)
    }

    // MARK: - Mutations (table of docs/hostinger.md#what-repeating-a-write-does)

    public static func start(vm: Int) -> Self { .init(name: "start", method: "POST", path: "\(vms)/\(vm)/start", repeatSafe: true) }
    public static func stop(vm: Int) -> Self { .init(name: "stop", method: "POST", path: "\(vms)/\(vm)/stop", repeatSafe: true) }
    public static func restart(vm: Int) -> Self { .init(name: "restart", method: "POST", path: "\(vms)/\(vm)/restart", repeatSafe: true) }

    public static func setHostname(vm: Int, hostname: String) -> Self {
        .init(name: "set_hostname", method: "PUT", path: "\(vms)/\(vm)/hostname", body: .object([("hostname", .string(hostname))]), repeatSafe: true)
    }

    public static func resetHostname(vm: Int) -> Self { .init(name: "reset_hostname", method: "DELETE", path: "\(vms)/\(vm)/hostname", repeatSafe: true) }

    public static func setNameservers(vm: Int, ns1: String, ns2: String?, ns3: String?) -> Self {
        var members: [(key: String, value: JSONValue)] = [("ns1", .string(ns1))]
        if let ns2 { members.append(("ns2", .string(ns2))) }
        if let ns3 { members.append(("ns3", .string(ns3))) }
        return .init(name: "set_nameservers", method: "PUT", path: "\(vms)/\(vm)/nameservers", body: .object(members), repeatSafe: true)
    }

    public static func setRootPassword(vm: Int, password: Secret) -> Self {
        .init(name: "set_root_password", method: "PUT", path: "\(vms)/\(vm)/root-password", body: .object([("password", .string(password.value))]), repeatSafe: true)
    }

    public static func setPanelPassword(vm: Int, password: Secret) -> Self {
        .init(name: "set_panel_password", method: "PUT", path: "\(vms)/\(vm)/panel-password", body: .object([("password", .string(password.value))]), repeatSafe: true)
    }

    public static func createPTR(vm: Int, ipAddress: Int, domain: String) -> Self {
        .init(name: "create_ptr", method: "POST", path: "\(vms)/\(vm)/ptr/\(ipAddress)", body: .object([("domain", .string(domain))]), repeatSafe: true)
    }

    public static func deletePTR(vm: Int, ipAddress: Int) -> Self {
        .init(name: "delete_ptr", method: "DELETE", path: "\(vms)/\(vm)/ptr/\(ipAddress)", repeatSafe: true)
    }

    public static func startRecovery(vm: Int, rootPassword: Secret) -> Self {
        .init(name: "start_recovery", method: "POST", path: "\(vms)/\(vm)/recovery", body: .object([("root_password", .string(rootPassword.value))]), repeatSafe: false)
    }

    public static func stopRecovery(vm: Int) -> Self { .init(name: "stop_recovery", method: "DELETE", path: "\(vms)/\(vm)/recovery", repeatSafe: false) }
    /// Not repeat-safe: a second call replaces the snapshot the first one took.
    public static func createSnapshot(vm: Int) -> Self { .init(name: "create_snapshot", method: "POST", path: "\(vms)/\(vm)/snapshot", repeatSafe: false) }
    public static func deleteSnapshot(vm: Int) -> Self { .init(name: "delete_snapshot", method: "DELETE", path: "\(vms)/\(vm)/snapshot", repeatSafe: false) }
    public static func restoreSnapshot(vm: Int) -> Self { .init(name: "restore_snapshot", method: "POST", path: "\(vms)/\(vm)/snapshot/restore", repeatSafe: false) }

    public static func restoreBackup(vm: Int, backup: Int) -> Self {
        .init(name: "restore_backup", method: "POST", path: "\(vms)/\(vm)/backups/\(backup)/restore", repeatSafe: false)
    }

    public static func recreate(vm: Int, templateID: Int, password: Secret?, panelPassword: Secret?, postInstallScriptID: Int?) -> Self {
        var members: [(key: String, value: JSONValue)] = [("template_id", .number(String(templateID)))]
        if let password { members.append(("password", .string(password.value))) }
        if let panelPassword { members.append(("panel_password", .string(panelPassword.value))) }
        if let postInstallScriptID { members.append(("post_install_script_id", .number(String(postInstallScriptID)))) }
        return .init(name: "recreate", method: "POST", path: "\(vms)/\(vm)/recreate", body: .object(members), repeatSafe: false)
    }

    /// Sets up a VM in state `initial`. Answered with the VM (not an action); not repeat-safe:
    /// a second setup of a VM no longer `initial` fails.
    public static func setup(vm: Int, members: [(key: String, value: JSONValue)]) -> Self {
        .init(name: "setup_vm", method: "POST", path: "\(vms)/\(vm)/setup", body: .object(members), repeatSafe: false)
    }

    // Docker Manager projects. Creating twice fails on the existing name, updating pulls and
    // recreates, taking down deletes: only start, stop and restart are repeat-safe.

    public static func createDockerProject(vm: Int, name: String, content: String, environment: Secret?) -> Self {
        var members: [(key: String, value: JSONValue)] = [("project_name", .string(name)), ("content", .string(content))]
        if let environment { members.append(("environment", .string(environment.value))) }
        return .init(name: "create_docker_project", method: "POST", path: "\(vms)/\(vm)/docker", body: .object(members), repeatSafe: false)
    }

    public static func dockerProject(vm: Int, project: String, _ verb: String) -> Self {
        .init(name: "\(verb)_docker_project", method: "POST", path: "\(vms)/\(vm)/docker/\(project)/\(verb)",
              repeatSafe: ["start", "stop", "restart"].contains(verb))
    }

    public static func downDockerProject(vm: Int, project: String) -> Self {
        .init(name: "down_docker_project", method: "DELETE", path: "\(vms)/\(vm)/docker/\(project)/down", repeatSafe: false)
    }

    public static func dockerProjects(vm: Int) -> Self { .init(name: "list_docker_projects", method: "GET", path: "\(vms)/\(vm)/docker", repeatSafe: true) }

    public static func installMonarx(vm: Int) -> Self { .init(name: "install_monarx", method: "POST", path: "\(vms)/\(vm)/monarx", repeatSafe: true) }
    public static func uninstallMonarx(vm: Int) -> Self { .init(name: "uninstall_monarx", method: "DELETE", path: "\(vms)/\(vm)/monarx", repeatSafe: true) }

    public static func activateFirewall(_ firewall: Int, vm: Int) -> Self {
        .init(name: "activate_firewall", method: "POST", path: "/api/vps/v1/firewall/\(firewall)/activate/\(vm)", repeatSafe: true)
    }

    public static func deactivateFirewall(_ firewall: Int, vm: Int) -> Self {
        .init(name: "deactivate_firewall", method: "POST", path: "/api/vps/v1/firewall/\(firewall)/deactivate/\(vm)", repeatSafe: true)
    }

    public static func syncFirewall(_ firewall: Int, vm: Int) -> Self {
        .init(name: "sync_firewall", method: "POST", path: "/api/vps/v1/firewall/\(firewall)/sync/\(vm)", repeatSafe: true)
    }

    public static func attachPublicKeys(vm: Int, ids: [Int]) -> Self {
        .init(name: "attach_public_keys", method: "POST", path: "/api/vps/v1/public-keys/attach/\(vm)",
              body: .object([("ids", .array(ids.map { .number(String($0)) }))]), repeatSafe: true)
    }

    // MARK: - Account-level resources (docs/design.md#resources-and-grants), answered at once with the resource
    // (or `{"message": …}` for a delete). Creating twice makes two; deleting twice fails on
    // the second: only updates (a PUT of the whole resource) are repeat-safe.

    static let firewalls = "/api/vps/v1/firewall"
    static let publicKeys = "/api/vps/v1/public-keys"
    static let scripts = "/api/vps/v1/post-install-scripts"

    public static func createFirewall(name: String) -> Self {
        .init(name: "create_firewall", method: "POST", path: firewalls, body: .object([("name", .string(name))]), repeatSafe: false)
    }

    public static func deleteFirewall(_ id: Int) -> Self {
        .init(name: "delete_firewall", method: "DELETE", path: "\(firewalls)/\(id)", repeatSafe: false)
    }

    public static func createFirewallRule(_ firewall: Int, rule: JSONValue) -> Self {
        .init(name: "create_firewall_rule", method: "POST", path: "\(firewalls)/\(firewall)/rules", body: rule, repeatSafe: false)
    }

    public static func updateFirewallRule(_ firewall: Int, rule id: Int, _ rule: JSONValue) -> Self {
        .init(name: "update_firewall_rule", method: "PUT", path: "\(firewalls)/\(firewall)/rules/\(id)", body: rule, repeatSafe: true)
    }

    public static func deleteFirewallRule(_ firewall: Int, rule id: Int) -> Self {
        .init(name: "delete_firewall_rule", method: "DELETE", path: "\(firewalls)/\(firewall)/rules/\(id)", repeatSafe: false)
    }

    public static func createPublicKey(name: String, key: String) -> Self {
        .init(name: "create_public_key", method: "POST", path: publicKeys, body: .object([("name", .string(name)), ("key", .string(key))]),
              repeatSafe: false)
    }

    public static func deletePublicKey(_ id: Int) -> Self {
        .init(name: "delete_public_key", method: "DELETE", path: "\(publicKeys)/\(id)", repeatSafe: false)
    }

    public static func createScript(name: String, content: String) -> Self {
        .init(name: "create_post_install_script", method: "POST", path: scripts,
              body: .object([("name", .string(name)), ("content", .string(content))]), repeatSafe: false)
    }

    public static func updateScript(_ id: Int, name: String, content: String) -> Self {
        .init(name: "update_post_install_script", method: "PUT", path: "\(scripts)/\(id)",
              body: .object([("name", .string(name)), ("content", .string(content))]), repeatSafe: true)
    }

    public static func deleteScript(_ id: Int) -> Self {
        .init(name: "delete_post_install_script", method: "DELETE", path: "\(scripts)/\(id)", repeatSafe: false)
    }

    /// Buys a VM (charged to the account): never repeated.
    public static func purchase(_ members: [(key: String, value: JSONValue)]) -> Self {
        .init(name: "purchase_vm", method: "POST", path: vms, body: .object(members), repeatSafe: false)
    }

    // MARK: - Reads

    public static func listFirewalls(page: Int) -> Self {
        .init(name: "list_firewalls", method: "GET", path: "\(firewalls)?page=\(page)", repeatSafe: true)
    }
    public static func firewall(_ id: Int) -> Self { .init(name: "get_firewall", method: "GET", path: "\(firewalls)/\(id)", repeatSafe: true) }
    public static func listPublicKeys(page: Int) -> Self {
        .init(name: "list_public_keys", method: "GET", path: "\(publicKeys)?page=\(page)", repeatSafe: true)
    }
    public static func listScripts(page: Int) -> Self {
        .init(name: "list_post_install_scripts", method: "GET", path: "\(scripts)?page=\(page)", repeatSafe: true)
    }
    public static func script(_ id: Int) -> Self {
        .init(name: "get_post_install_script", method: "GET", path: "\(scripts)/\(id)", repeatSafe: true)
    }

    // The account's catalogue, which every principal may read: OS templates and data centers.
    public static func templates() -> Self { .init(name: "list_templates", method: "GET", path: "/api/vps/v1/templates", repeatSafe: true) }
    public static func template(_ id: Int) -> Self {
        .init(name: "get_template", method: "GET", path: "/api/vps/v1/templates/\(id)", repeatSafe: true)
    }
    public static func dataCenters() -> Self { .init(name: "list_data_centers", method: "GET", path: "/api/vps/v1/data-centers", repeatSafe: true) }

    public static func listVirtualMachines() -> Self { .init(name: "list_vms", method: "GET", path: vms, repeatSafe: true) }
    public static func virtualMachine(_ vm: Int) -> Self { .init(name: "get_vm", method: "GET", path: "\(vms)/\(vm)", repeatSafe: true) }

    public static func actions(vm: Int, page: Int = 1) -> Self {
        .init(name: "list_actions", method: "GET", path: "\(vms)/\(vm)/actions?page=\(page)", repeatSafe: true)
    }

    public static func action(vm: Int, id: Int) -> Self { .init(name: "get_action", method: "GET", path: "\(vms)/\(vm)/actions/\(id)", repeatSafe: true) }

    // Reads of one VM's other resources. A project name is checked (`PathParameter`) before
    // it gets here, so it needs no encoding.

    public static func projectContents(vm: Int, project: String) -> Self {
        .init(name: "get_docker_project", method: "GET", path: "\(vms)/\(vm)/docker/\(project)", repeatSafe: true)
    }
    public static func projectContainers(vm: Int, project: String) -> Self {
        .init(name: "list_docker_containers", method: "GET", path: "\(vms)/\(vm)/docker/\(project)/containers", repeatSafe: true)
    }
    public static func projectLogs(vm: Int, project: String) -> Self {
        .init(name: "get_docker_logs", method: "GET", path: "\(vms)/\(vm)/docker/\(project)/logs", repeatSafe: true)
    }
    public static func attachedPublicKeys(vm: Int, page: Int = 1) -> Self {
        .init(name: "list_attached_public_keys", method: "GET", path: "\(vms)/\(vm)/public-keys?page=\(page)", repeatSafe: true)
    }
    public static func backups(vm: Int, page: Int = 1) -> Self {
        .init(name: "list_backups", method: "GET", path: "\(vms)/\(vm)/backups?page=\(page)", repeatSafe: true)
    }
    public static func monarxMetrics(vm: Int) -> Self { .init(name: "get_monarx_metrics", method: "GET", path: "\(vms)/\(vm)/monarx", repeatSafe: true) }
    public static func snapshot(vm: Int) -> Self { .init(name: "get_snapshot", method: "GET", path: "\(vms)/\(vm)/snapshot", repeatSafe: true) }

    /// The usage history between two times, each as the caller gave it: only `+` (an
    /// offset's sign, which a query would read as a space) and anything outside RFC 3339's
    /// characters are percent-encoded.
    public static func metrics(vm: Int, from: String, to: String) -> Self {
        .init(name: "get_metrics", method: "GET", path: "\(vms)/\(vm)/metrics?date_from=\(queryEncoded(from))&date_to=\(queryEncoded(to))",
              repeatSafe: true)
    }

    static func queryEncoded(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: ":"):
                encoded.append(Character(Unicode.Scalar(byte)))
            default:
                encoded += (byte < 16 ? "%0" : "%") + String(byte, radix: 16, uppercase: true)
            }
        }
        return encoded
    }
}
