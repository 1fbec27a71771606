/// Every route that only reads, one declaration each: the catalogue of reads that routing,
/// metric labels, the OpenAPI document, vpsgatectl's reads and the MCP server's read tools
/// are built from. A read of one Hostinger resource needs nothing but its declaration here:
/// the service authorizes `permission` on the resource the path names and answers from
/// `hostinger`.
public struct ReadRoute: Sendable, Equatable, CustomStringConvertible {
    /// What a read of Hostinger is asked with, every part checked by the service first.
    public struct ReadArguments: Sendable {
        /// The id the path names (the VPS's, …; 0 when it names none).
        public var id: Int
        /// The page asked for, from 1.
        public var page: Int
        /// The second path parameter (a project name, an action id), as text; empty without one.
        public var parameter: String
        /// The query values the read passes on to Hostinger (`date_from`), decoded.
        public var query: [String: String]

        public init(id: Int, page: Int = 1, parameter: String = "", query: [String: String] = [:]) {
            self.id = id
            self.page = page
            self.parameter = parameter
            self.query = query
        }
    }

    /// The path template: `/v1/vps/{id}/actions`.
    public let path: String
    /// The OpenAPI description.
    public let summary: String
    /// The 200 answer's schema, in the document's components.
    public let schema: String
    /// Query parameters: name, type, summary.
    public let query: [(name: String, type: String, summary: String)]
    /// The permission it needs on the resource it names or lists (`on`); nil: any
    /// authenticated principal, or rules of its own (operations, batches, the caller).
    public let permission: Permission?
    /// The kind of resource the `{id}` names or the list holds, whose grants give `permission`.
    public let on: ResourceKind?
    /// The Hostinger read it answers from, for the path's parameters and the query, checked
    /// (`ReadArguments`); nil: vpsgate answers from its own data.
    public let hostinger: (@Sendable (ReadArguments) -> HostingerRequest)?
    /// The query parameters a request must carry (`date_from`): Hostinger requires them.
    public let required: [String]
    /// How vpsgatectl names it: its group and verb (`vps get <id>`); nil: not a group's read.
    public let command: (group: String, verb: String)?
    /// The MCP server's read tool for it (`vps_get`); nil: no tool.
    public let tool: String?

    init(_ path: String, _ summary: String, schema: String, query: [(name: String, type: String, summary: String)] = [],
         needs permission: Permission? = nil, on kind: ResourceKind? = nil,
         hostinger: (@Sendable (_ id: Int, _ page: Int) -> HostingerRequest)? = nil, command: String? = nil, tool: String? = nil) {
        self.path = path
        self.summary = summary
        self.schema = schema
        self.query = query
        self.permission = permission
        self.on = kind
        if let hostinger {
            self.hostinger = { @Sendable arguments in hostinger(arguments.id, arguments.page) }
        } else {
            self.hostinger = nil
        }
        self.required = []
        self.command = command.map { words in
            let parts = words.split(separator: " ", maxSplits: 1).map(String.init)
            return (parts[0], parts[1])
        }
        self.tool = tool
    }

    /// A read of Hostinger under one VPS that takes more than its id and page: a second path
    /// parameter (`{projectName}`, `{actionId}`) or query values Hostinger requires.
    init(_ path: String, _ summary: String, schema: String, query: [(name: String, type: String, summary: String)] = [],
         requires required: [String] = [], needs permission: Permission, read: @escaping @Sendable (ReadArguments) -> HostingerRequest,
         command: String, tool: String) {
        self.path = path
        self.summary = summary
        self.schema = schema
        self.query = query
        self.permission = permission
        self.on = .vps
        self.hostinger = read
        self.required = required
        let parts = command.split(separator: " ", maxSplits: 1).map(String.init)
        self.command = (parts[0], parts[1])
        self.tool = tool
    }

    public static func == (lhs: ReadRoute, rhs: ReadRoute) -> Bool { lhs.path == rhs.path }
    public var description: String { path }

    private static let page = [(name: "page", type: "integer", summary: "Page number, from 1.")]

    // MARK: VPS, from Hostinger
    public static let listVPS = ReadRoute("/v1/vps", "VPS from Hostinger, filtered to the caller's grants (vps:read).", schema: "VirtualMachineList",
                                          needs: .read, on: .vps, hostinger: { _, _ in .listVirtualMachines() }, command: "vps list", tool: "vps_list")
    public static let getVPS = ReadRoute("/v1/vps/{id}", "One VPS from Hostinger (vps:read).", schema: "VirtualMachine",
                                         needs: .read, on: .vps, hostinger: { id, _ in .virtualMachine(id) }, command: "vps get", tool: "vps_get")
    public static let vpsActions = ReadRoute("/v1/vps/{id}/actions", "Hostinger's action list for the VPS (vps:read).", schema: "ActionPage",
                                             query: page, needs: .read, on: .vps, hostinger: { id, page in .actions(vm: id, page: page) },
                                             command: "vps actions", tool: "vps_actions")
    public static let dockerProjects = ReadRoute("/v1/vps/{id}/docker", "The VPS's Docker Manager projects, from Hostinger (docker:read).",
                                                 schema: "DockerProjectList", needs: .dockerRead, on: .vps,
                                                 hostinger: { id, _ in .dockerProjects(vm: id) }, command: "vps docker")
    public static let vpsAction = ReadRoute("/v1/vps/{id}/actions/{actionId}", "One of Hostinger's actions on the VPS (vps:read).",
                                            schema: "Action", needs: .read, read: { .action(vm: $0.id, id: Int($0.parameter) ?? 0) },
                                            command: "vps action", tool: "vps_action_get")
    public static let dockerProject = ReadRoute(
        "/v1/vps/{id}/docker/{projectName}", "One Docker Manager project's compose file and environment, from Hostinger (docker:read).",
        schema: "DockerProjectContents", needs: .dockerRead, read: { .projectContents(vm: $0.id, project: $0.parameter) },
        command: "vps docker-project", tool: "vps_docker_project_get")
    public static let dockerContainers = ReadRoute(
        "/v1/vps/{id}/docker/{projectName}/containers", "A Docker Manager project's containers with their stats, from Hostinger (docker:read).",
        schema: "DockerContainerList", needs: .dockerRead, read: { .projectContainers(vm: $0.id, project: $0.parameter) },
        command: "vps docker-containers", tool: "vps_docker_containers")
    public static let dockerLogs = ReadRoute(
        "/v1/vps/{id}/docker/{projectName}/logs", "A Docker Manager project's recent log entries by service, from Hostinger (docker:read).",
        schema: "DockerLogList", needs: .dockerRead, read: { .projectLogs(vm: $0.id, project: $0.parameter) },
        command: "vps docker-logs", tool: "vps_docker_logs")
    public static let attachedKeys = ReadRoute("/v1/vps/{id}/public-keys", "The SSH public keys attached to the VPS, from Hostinger (vps:read).",
                                               schema: "AttachedPublicKeyPage", query: page, needs: .read,
                                               read: { .attachedPublicKeys(vm: $0.id, page: $0.page) }, command: "vps public-keys",
                                               tool: "vps_public_keys")
    public static let backups = ReadRoute("/v1/vps/{id}/backups", "The VPS's backups (what vps.backup.restore takes), from Hostinger (vps:read).",
                                          schema: "BackupPage", query: page, needs: .read, read: { .backups(vm: $0.id, page: $0.page) },
                                          command: "vps backups", tool: "vps_backups")
    public static let monarx = ReadRoute("/v1/vps/{id}/monarx", "The Monarx malware scanner's last scan on the VPS, from Hostinger (vps:read).",
                                         schema: "MonarxMetrics", needs: .read, read: { .monarxMetrics(vm: $0.id) }, command: "vps monarx",
                                         tool: "vps_monarx")
    public static let vpsMetrics = ReadRoute(
        "/v1/vps/{id}/metrics", "The VPS's usage history (CPU, RAM, disk, traffic, uptime) between two times, from Hostinger (vps:read).",
        schema: "VpsMetrics",
        query: [("date_from", "date-time", "Required: the first time, RFC 3339 (2025-05-01T00:00:00Z), passed to Hostinger as given."),
                ("date_to", "date-time", "Required: the last time, RFC 3339, after date_from, passed to Hostinger as given.")],
        requires: ["date_from", "date_to"], needs: .read,
        read: { .metrics(vm: $0.id, from: $0.query["date_from"] ?? "", to: $0.query["date_to"] ?? "") },
        command: "vps metrics", tool: "vps_metrics")
    public static let snapshot = ReadRoute("/v1/vps/{id}/snapshot", "The VPS's snapshot, from Hostinger; 404 when it has none (vps:read).",
                                           schema: "Snapshot", needs: .read, read: { .snapshot(vm: $0.id) }, command: "vps snapshot",
                                           tool: "vps_snapshot")

    // MARK: Operations, approvals and events, from the database
    public static let listOperations = ReadRoute(
        "/v1/operations", "Operations the caller may see, newest first.", schema: "OperationPage",
        query: [("vps", "integer", "Only this VPS."), ("state", "string", "Only this state."),
                ("requester", "string", "Only operations this principal requested."),
                ("command", "string", "Only this command (vps.restart, …)."),
                ("resource", "string", "Only this resource: vps:1001, firewall:12, firewall:* (every firewall) or account."),
                ("since", "string", "Only operations created at or after this RFC 3339 time."),
                ("until", "string", "Only operations created before this RFC 3339 time."),
                ("limit", "integer", "1 to 200, default 50."), ("before", "string", "Continue after this operation id (the previous page's next_before).")],
        tool: "operation_list")
    public static let getOperation = ReadRoute(
        "/v1/operations/{operationId}", "One operation, refreshed from Hostinger while it is not terminal; with wait, answered when it is terminal.",
        schema: "Operation",
        query: [("wait", "integer", "Seconds (0 to 50) to wait for the operation to become terminal; answered at once, with Retry-After, when this instance has no waiting place free.")],
        tool: "operation_get")
    public static let operationTimeline = ReadRoute(
        "/v1/operations/{operationId}/timeline",
        "One operation and its history in order: audit rows, events (state changes, Hostinger's action states) and approval decisions; for whoever may read the operation.",
        schema: "Timeline")
    public static let approvals = ReadRoute(
        "/v1/approvals",
        "Operations awaiting approval that the caller may approve (vps:approve), oldest first, each with its requester, the approvals given and required, when it expires, and the plan of its kept request (what would be sent, secrets redacted; the decision; the effects).",
        schema: "ApprovalPage")
    public static let events = ReadRoute(
        "/v1/events", "Events (operation state changes, approval decisions) on VPS the caller may read, in order; 410 cursor-expired past retention.",
        schema: "EventPage",
        query: [("after", "string", "The `next` cursor of the previous page (absent: from the oldest event kept)."),
                ("limit", "integer", "1 to 500, default 100."),
                ("wait", "integer", "Seconds (0 to 50) an empty page waits for the next event.")],
        tool: "event_list")

    // MARK: The account's catalogue, which every principal may read
    public static let templates = ReadRoute("/v1/templates", "The OS templates VMs can be set up or recreated with, from Hostinger (any principal).",
                                            schema: "TemplateList", hostinger: { _, _ in .templates() }, command: "catalogue templates",
                                            tool: "templates_list")
    public static let template = ReadRoute("/v1/templates/{id}", "One OS template, from Hostinger (any principal).", schema: "Template",
                                           hostinger: { id, _ in .template(id) })
    public static let dataCenters = ReadRoute("/v1/data-centers", "The data centers a VM can be set up in, from Hostinger (any principal).",
                                              schema: "DataCenterList", hostinger: { _, _ in .dataCenters() }, command: "catalogue data-centers",
                                              tool: "data_centers_list")

    // MARK: Account-level resources, from Hostinger, filtered to the caller's grants
    public static let firewalls = ReadRoute("/v1/firewalls", "The account's firewalls the caller may read (firewall:read), from Hostinger.",
                                            schema: "FirewallPage", query: page, needs: .firewallRead, on: .firewall,
                                            hostinger: { _, page in .listFirewalls(page: page) }, command: "firewall list", tool: "firewall_list")
    public static let firewall = ReadRoute("/v1/firewalls/{id}", "One firewall with its rules (firewall:read), from Hostinger.", schema: "Firewall",
                                           needs: .firewallRead, on: .firewall, hostinger: { id, _ in .firewall(id) }, command: "firewall get",
                                           tool: "firewall_get")
    public static let publicKeys = ReadRoute("/v1/public-keys", "The account's SSH public keys the caller may read (public_key:read), from Hostinger.",
                                             schema: "PublicKeyPage", query: page, needs: .publicKeyRead, on: .publicKey,
                                             hostinger: { _, page in .listPublicKeys(page: page) }, command: "public_key list", tool: "public_key_list")
    public static let scripts = ReadRoute("/v1/post-install-scripts", "The account's post-install scripts the caller may read (script:read), from Hostinger.",
                                          schema: "PostInstallScriptPage", query: page, needs: .scriptRead, on: .postInstallScript,
                                          hostinger: { _, page in .listScripts(page: page) }, command: "post_install_script list",
                                          tool: "post_install_script_list")
    public static let script = ReadRoute("/v1/post-install-scripts/{id}", "One post-install script, its content included (script:read), from Hostinger.",
                                         schema: "PostInstallScript", needs: .scriptRead, on: .postInstallScript, hostinger: { id, _ in .script(id) },
                                         command: "post_install_script get")

    // MARK: The caller, and batches
    public static let me = ReadRoute("/v1/me", "The caller: its principal and grants, each with its role's permissions (what a client may offer it).",
                                     schema: "Me")
    public static let batches = ReadRoute("/v1/batches", "The caller's batches, newest first.", schema: "BatchPage",
                                          query: [("limit", "integer", "1 to 200, default 50."), ("before", "integer", "Continue after this batch id.")],
                                          tool: "batch_list")
    public static let batch = ReadRoute("/v1/batches/{id}", "One batch with its children (its requester, or vps:read or vps:approve on every VPS of it).",
                                        schema: "Batch", tool: "batch_get")

    public static let freezes = ReadRoute(
        "/v1/freezes",
        "The change freezes in force now and those still to come, by start: a freeze over every VPS for any principal, one on a VPS for those who may read it (vps:read). Commands they cover answer 423 change-frozen.",
        schema: "FreezeList")

    // MARK: The service's own routes, outside /v1 (no principal needed)
    public static let healthz = ReadRoute("/healthz", "Liveness.", schema: "Health")
    public static let readyz = ReadRoute("/readyz", "Readiness: database reachable and schema current.", schema: "Health")
    public static let openAPI = ReadRoute("/openapi.json", "This document.", schema: "Document")
    public static let metrics = ReadRoute("/metrics", "Prometheus text format; nginx exposes it on an internal listener only.", schema: "Metrics")

    /// Every read, in the OpenAPI document's order.
    public static let allCases: [ReadRoute] = [
        listVPS, getVPS, vpsActions, vpsAction, dockerProjects, dockerProject, dockerContainers, dockerLogs, attachedKeys, backups, monarx,
        vpsMetrics, snapshot, listOperations, getOperation, operationTimeline, approvals, events, templates, template, dataCenters,
        firewalls, firewall, publicKeys, scripts, script, me, batches, batch, freezes, healthz, readyz, openAPI, metrics,
    ]

    /// The service's own routes, outside `/v1` (no principal needed).
    public var isService: Bool { !path.hasPrefix("/v1/") }

    /// The bounded metric label: `GET /v1/vps/{id}`, or the path of a service route.
    public var label: String { isService ? path : "GET " + path }

    /// Whether the path names one resource (`{id}` or `{operationId}`) rather than a list.
    public var namesOne: Bool { path.contains("{") }

    /// The name of the path's second parameter (`projectName`, `actionId`), if it has one.
    public var parameter: String? {
        let names = templateSegments.filter { $0.hasPrefix("{") }
        return names.count > 1 ? String(names[1].dropFirst().dropLast()) : nil
    }

    /// The path with its parameters filled in, in order (`/v1/vps/1001`,
    /// `/v1/vps/1001/docker/web`); the caller checks the values.
    public func filled(_ values: String...) -> String { filled(values) }

    /// The path with `values` in its parameters, in order.
    public func filled(_ values: [String]) -> String {
        var result = path
        for value in values {
            guard let open = result.firstIndex(of: "{"), let close = result[open...].firstIndex(of: "}") else { break }
            result = String(result[..<open]) + value + String(result[result.index(after: close)...])
        }
        return result
    }

    /// What vpsgatectl's words after the verb give the read: ` <id>`, ` <id> <projectName>`,
    /// ` <id> --date-from <date_from> --date-to <date_to>`.
    public var commandArguments: String {
        var words = namesOne ? " <id>" : ""
        if let parameter { words += " <\(parameter)>" }
        for name in required { words += " \(Self.flag(name)) <\(name)>" }
        return words
    }

    /// The command-line flag of a required query parameter: `date_from` ⇒ `--date-from`.
    public static func flag(_ name: String) -> String { "--" + name.replacing("_", with: "-") }

    /// The route whose template `path` fits, with its id segment (VPS or operation id) and
    /// its second parameter's segment (`{projectName}`, `{actionId}`), not yet validated.
    public static func match(_ path: String) -> (route: ReadRoute, id: Substring?, parameter: Substring?)? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for route in allCases {
            let template = route.templateSegments
            guard template.count == segments.count else { continue }
            var values: [Substring] = []
            var matched = true
            for (pattern, segment) in zip(template, segments) {
                if pattern.hasPrefix("{") {
                    guard !segment.isEmpty else { matched = false; break }
                    values.append(segment)
                } else if pattern != segment {
                    matched = false
                    break
                }
            }
            if matched { return (route, values.first, values.dropFirst().first) }
        }
        return nil
    }

    private var templateSegments: [Substring] { path.split(separator: "/", omittingEmptySubsequences: false) }
}

extension ApprovalAction {
    /// `/v1/operations/{operationId}/approve`: the route that decides an operation.
    public var pathTemplate: String { ReadRoute.getOperation.path + "/" + rawValue }
    /// The route for one operation; the caller checks that `operationID` is one (a UUID).
    public func path(_ operationID: String) -> String { ReadRoute.getOperation.filled(operationID) + "/" + rawValue }
}

extension BatchAction {
    /// `/v1/batches/{id}/approve`: the route that decides a batch.
    public var pathTemplate: String { ReadRoute.batch.path + "/" + rawValue }
    public func path(_ batch: Int) -> String { ReadRoute.batch.filled(String(batch)) + "/" + rawValue }
}
