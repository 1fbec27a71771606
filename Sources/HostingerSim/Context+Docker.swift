import VpsgateCore

/// Hostinger's Docker Manager: Compose projects on a VM. Reads answer at once; each
/// mutation is an action on the VM, and the project's containers follow it.
extension Context {
    /// The document: 3–64 characters, letters, digits, dashes and underscores.
    static func isProjectName(_ name: String) -> Bool {
        (3...64).contains(name.count) && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// The document caps the compose text and the environment at 8192 characters.
    static let maximumComposeLength = 8192

    /// A route on one project of one VM: an unknown VM or project answers 404, a name the
    /// document does not allow 422.
    static func project(_ method: String, _ template: String,
                        _ handle: @escaping @Sendable (inout Context, VirtualMachine, DockerProject) -> SimResponse) -> Route {
        vm(method, template) { context, vm, parameters in
            let name = parameters["projectName"] ?? ""
            guard isProjectName(name) else {
                return validationError([("project_name", ["The project name must be 3 to 64 letters, digits, dashes or underscores."])])
            }
            guard let project = vm.dockerProjects[name] else { return Simulator.routeNotFound() }
            return handle(&context, vm, project)
        }
    }

    // MARK: - Reads

    /// Container stats are left out of the list, as the document says.
    func listProjects(_ vm: VirtualMachine) -> SimResponse {
        .json(200, .array(vm.dockerProjects.keys.sorted().compactMap { vm.dockerProjects[$0] }.map { projectJSON($0, on: vm) }))
    }

    func projectContents(_ project: DockerProject) -> SimResponse {
        .json(200, .object([("content", .string(project.content)), ("environment", Self.optional(project.environment))]))
    }

    func containers(_ project: DockerProject, on vm: VirtualMachine) -> SimResponse {
        .json(200, .array(project.services.map { containerJSON($0, of: project, on: vm, withStats: true) }))
    }

    /// Log entries grouped by service, in the order of the compose file.
    func logs(_ project: DockerProject) -> SimResponse {
        .json(200, .array(project.services.map { service in
            .object([("service", .string(service.name)), ("entries", .array(project.log.filter { $0.service == service.name }.map { entry in
                .object([("timestamp", .string(Timestamp.rfc3339(microseconds: entry.time))), ("line", .string(entry.line))])
            }))])
        }))
    }

    // MARK: - Mutations

    /// Deploys a project from compose text or a URL; a project of the same name is replaced
    /// (the document).
    mutating func createProject(_ vm: VirtualMachine) -> SimResponse {
        validated([
            ("project_name", Self.projectNameRule), ("content", Self.stringRule(maxLength: Self.maximumComposeLength)),
            ("environment", Self.stringRule(required: false, maxLength: Self.maximumComposeLength)),
        ]) { context in
            guard vm.state == "running" else { return Self.notRunning() }
            let name = context.body["project_name"]?.stringValue ?? ""
            let content = context.body["content"]?.stringValue ?? ""
            let isURL = content.hasPrefix("https://") || content.hasPrefix("http://")
            let services = isURL ? [ComposeFile.service(fromURL: content)] : ComposeFile.services(in: content)
            guard !services.isEmpty else {
                return Self.validationError([("content", ["The content must be a URL or a compose file with at least one service."])])
            }
            let project = DockerProject(name: name, content: content, environment: context.body["environment"]?.stringValue,
                                        services: services, at: context.now)
            let change = DockerChange(kind: .create, project: name, previous: vm.dockerProjects[name])
            context.state.vms[vm.id]?.dockerProjects[name] = project
            return context.act(vm, "docker_project_create", .docker(change))
        }
    }

    /// Start, stop, restart, update or down (delete) a project: its containers pass through
    /// `stopping` or `restarting` while the action runs, and go back if it fails.
    mutating func changeProject(_ kind: DockerChange.Kind, _ project: DockerProject, on vm: VirtualMachine) -> SimResponse {
        guard vm.state == "running" else { return Self.notRunning() }
        var marked = project
        switch kind {
        case .stop, .down: marked.mark("stopping")
        case .restart: marked.mark("restarting")
        default: break
        }
        state.vms[vm.id]?.dockerProjects[project.name] = marked
        let name = kind == .down ? "docker_project_delete" : "docker_project_\(kind.rawValue)"
        return act(vm, name, .docker(DockerChange(kind: kind, project: project.name, previous: project)))
    }

    private static func notRunning() -> SimResponse {
        refusal("virtual_machine", "The virtual machine must be running to manage Docker projects.")
    }

    static var projectNameRule: Rule {
        { value in
            let problems = stringRule(maxLength: 64)(value)
            guard problems.isEmpty, let text = value?.stringValue else { return problems }
            return isProjectName(text) ? [] : ["The FIELD must be 3 to 64 letters, digits, dashes or underscores."]
        }
    }

    // MARK: - Shapes

    func projectJSON(_ project: DockerProject, on vm: VirtualMachine) -> JSONValue {
        .object([
            ("name", .string(project.name)), ("status", .string(project.status)), ("state", .string(project.state)),
            ("path", .string(project.path)),
            ("containers", .array(project.services.map { containerJSON($0, of: project, on: vm, withStats: false) })),
        ])
    }

    func containerJSON(_ service: DockerService, of project: DockerProject, on vm: VirtualMachine, withStats: Bool) -> JSONValue {
        let name = project.containerName(service)
        let seed = Self.fnv1a("\(vm.id)/\(name)")
        let hex = String(seed, radix: 16)
        var members: [(key: String, value: JSONValue)] = [
            ("id", .string(String((String(repeating: "0", count: max(0, 16 - hex.count)) + hex).prefix(12)))),
            ("name", .string(name)), ("image", .string(service.image)), ("command", .string(service.command)),
            ("status", .string(containerStatus(service))), ("state", .string(service.state)), ("health", .string("")),
            ("ports", .array(service.ports.map(Self.portJSON))),
        ]
        if withStats { members.append(("stats", service.state == "running" ? statsJSON(seed: seed, since: service.since, vm: vm) : .null)) }
        return .object(members)
    }

    /// As `docker ps` words it.
    private func containerStatus(_ service: DockerService) -> String {
        let age = Self.humanDuration(now - (service.since ?? now))
        switch service.state {
        case "running": return "Up \(age)"
        case "exited": return "Exited (0) \(age) ago"
        case "restarting": return "Restarting (0) Less than a second ago"
        case "stopping": return "Up \(age) (stopping)"
        default: return "Created"
        }
    }

    /// Steady made-up figures for a running container, the traffic growing with its uptime.
    private func statsJSON(seed: UInt64, since: Int64?, vm: VirtualMachine) -> JSONValue {
        let total = vm.plan.memory * 1_048_576
        let permille = Int(seed % 40) + 5
        let uptime = Int(max(0, now - (since ?? now)) / 1_000_000)
        func hundredths(_ value: Int) -> JSONValue { .number("\(value / 100).\(value % 100 < 10 ? "0" : "")\(value % 100)") }
        return .object([
            ("cpu_percentage", hundredths(Int(seed % 900) + 10)), ("memory_percentage", hundredths(permille * 10)),
            ("memory_used", Self.number(total / 1000 * permille)), ("memory_total", Self.number(total)),
            ("net_in", Self.number(2048 + uptime * 1500)), ("net_out", Self.number(1024 + uptime * 300)),
        ])
    }

    static func portJSON(_ port: DockerPort) -> JSONValue {
        .object([
            ("type", .string(port.type)), ("protocol", .string(port.protocol)), ("host_ip", optional(port.hostIP)),
            ("host_port", optional(port.hostPort)), ("container_port", optional(port.containerPort)),
            ("host_port_start", optional(port.hostRange?.lowerBound)), ("host_port_end", optional(port.hostRange?.upperBound)),
            ("container_port_start", optional(port.containerRange?.lowerBound)),
            ("container_port_end", optional(port.containerRange?.upperBound)),
        ])
    }

    /// `Less than a second`, `5 seconds`, `About a minute`, `3 hours`, as Docker says it.
    static func humanDuration(_ microseconds: Int64) -> String {
        let seconds = microseconds / 1_000_000
        switch seconds {
        case ..<1: return "Less than a second"
        case ..<60: return "\(seconds) seconds"
        case ..<120: return "About a minute"
        case ..<3600: return "\(seconds / 60) minutes"
        case ..<7200: return "About an hour"
        case ..<172_800: return "\(seconds / 3600) hours"
        default: return "\(seconds / 86_400) days"
        }
    }

    /// FNV-1a: the same container id and figures for the same container in every run
    /// (Swift's `Hasher` is seeded per process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
