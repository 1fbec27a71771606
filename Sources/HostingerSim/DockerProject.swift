/// A Docker Compose project on a VM, as Hostinger's Docker Manager shows it.
struct DockerProject {
    var name: String
    /// The compose text (or the URL it was given as).
    var content: String
    var environment: String?
    var services: [DockerService]
    /// Recent log lines of every service, oldest first.
    var log: [DockerLogEntry] = []

    /// The document: the logs endpoint returns the last 300 entries.
    static let maximumLogEntries = 300

    var path: String { "/docker/\(name)/docker-compose.yaml" }

    /// A project just deployed from `content`: its containers created, none running yet.
    init(name: String, content: String, environment: String?, services: [DockerService], at time: Int64) {
        self.name = name
        self.content = content
        self.environment = environment
        self.services = services
        record(at: time) { "Container \($0) Created" }
    }

    /// The document's derived project state.
    var state: String {
        let states = Set(services.map(\.state))
        if states.isEmpty { return "unknown" }
        if states == ["running"] { return "running" }
        if states == ["created"] { return "created" }
        if states.isSubset(of: ["exited", "dead"]) { return "stopped" }
        return "mixed"
    }

    /// The raw status as `docker compose ls` writes it: `running(2)`, `exited(1), running(1)`.
    var status: String {
        var counts: [String: Int] = [:]
        for service in services { counts[service.state, default: 0] += 1 }
        return counts.keys.sorted().map { "\($0)(\(counts[$0] ?? 0))" }.joined(separator: ", ")
    }

    /// The container name Compose gives a service's first replica.
    func containerName(_ service: DockerService) -> String { "\(name)-\(service.name)-1" }

    // MARK: - Lifecycle

    mutating func run(at time: Int64) {
        for index in services.indices {
            services[index].state = "running"
            services[index].since = time
        }
        record(at: time) { "Container \($0) Started" }
    }

    mutating func stop(at time: Int64) {
        for index in services.indices {
            services[index].state = "exited"
            services[index].since = time
        }
        record(at: time) { "Container \($0) Stopped" }
    }

    /// Newer images pulled and the containers recreated from them, running.
    mutating func update(at time: Int64) {
        record(at: time) { "Container \($0) Recreated" }
        run(at: time)
    }

    /// Every container in a passing state (`stopping`, `restarting`) while an action runs.
    mutating func mark(_ state: String) {
        for index in services.indices { services[index].state = state }
    }

    private mutating func record(at time: Int64, _ line: (String) -> String) {
        for service in services {
            log.append(DockerLogEntry(service: service.name, time: time, line: line(containerName(service))))
        }
        if log.count > Self.maximumLogEntries { log.removeFirst(log.count - Self.maximumLogEntries) }
    }
}

/// One service of a project, run as one container.
struct DockerService {
    var name: String
    var image: String
    var command: String = ""
    var ports: [DockerPort] = []
    /// The container's state: `created`, `running`, `exited`, `stopping`, `restarting`.
    var state = "created"
    /// When it entered that state (for `Up 3 minutes`).
    var since: Int64? = nil
}

struct DockerPort {
    var type: String
    var `protocol`: String
    var hostIP: String?
    var hostPort: Int?
    var containerPort: Int?
    var hostRange: ClosedRange<Int>?
    var containerRange: ClosedRange<Int>?
}

struct DockerLogEntry {
    var service: String
    var time: Int64
    var line: String
}

/// What a Docker action does to a project.
struct DockerChange {
    enum Kind: String {
        case create, start, stop, restart, update, down
    }

    var kind: Kind
    var project: String
    /// The project as it was before the request, put back if the action fails (nil: there was none).
    var previous: DockerProject?
}

// MARK: - Compose files

/// Reads the services out of a compose file, as much as the simulator shows of them.
///
/// Compose files are block-style YAML; this reads the `services:` mapping, each service's
/// `image`, `command` and short-syntax `ports`, and nothing else (no anchors, flow style or
/// long-syntax ports). Hostinger's own checks are not documented beyond the lengths.
enum ComposeFile {
    static func services(in content: String) -> [DockerService] {
        var services: [DockerService] = []
        var inServices = false
        var serviceIndent: Int?
        var portsIndent: Int?
        for raw in content.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let text = raw.drop { $0 == " " }
            guard !text.isEmpty, !text.hasPrefix("#") else { continue }
            let indent = raw.count - text.count
            if indent == 0 {
                inServices = text.trimmingTrailingSpaces() == "services:"
                serviceIndent = nil
                continue
            }
            guard inServices else { continue }
            let level = serviceIndent ?? indent
            serviceIndent = level
            if indent == level {
                portsIndent = nil
                if let (key, value) = keyValue(text), value.isEmpty { services.append(DockerService(name: key, image: "")) }
                continue
            }
            guard indent > level, !services.isEmpty else { continue }
            if let ports = portsIndent, indent >= ports, text.hasPrefix("- ") {
                if let port = DockerPort(shortSyntax: unquoted(text.dropFirst(2))) { services[services.count - 1].ports.append(port) }
                continue
            }
            portsIndent = nil
            guard let (key, value) = keyValue(text) else { continue }
            switch key {
            case "image": services[services.count - 1].image = value
            case "command": services[services.count - 1].command = value
            case "ports" where value.isEmpty: portsIndent = indent
            default: break
            }
        }
        return services.map { service in
            var service = service
            if service.image.isEmpty { service.image = "\(service.name):latest" }
            return service
        }
    }

    /// A project given as a URL: the simulator downloads nothing, so the project has one
    /// service named after the URL's last path segment.
    static func service(fromURL url: String) -> DockerService {
        let last = url.split(separator: "/").last.map(String.init) ?? "app"
        let stem = last.split(separator: ".").first.map(String.init) ?? last
        let name = String(stem.lowercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        let service = name.isEmpty ? "app" : name
        return DockerService(name: service, image: "\(service):latest")
    }

    /// `key: value` (the value unquoted, empty for a nested block).
    private static func keyValue(_ text: Substring) -> (String, String)? {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let after = text[text.index(after: colon)...]
        guard after.isEmpty || after.hasPrefix(" ") else { return nil }
        let key = unquoted(text[..<colon])
        guard !key.isEmpty else { return nil }
        return (key, unquoted(after))
    }

    static func unquoted(_ text: Substring) -> String {
        var value = text.drop { $0 == " " }.trimmingTrailingSpaces()
        if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
            value = value.dropFirst().dropLast()
        }
        return String(value)
    }
}

extension DockerPort {
    /// `80`, `8080:80`, `127.0.0.1:8080:80`, `8000-8010:3000-3010`, each with an optional `/udp`.
    init?(shortSyntax text: String) {
        var spec = Substring(text)
        var transport = "tcp"
        if let slash = spec.lastIndex(of: "/") {
            transport = String(spec[spec.index(after: slash)...]).lowercased()
            spec = spec[..<slash]
        }
        guard transport == "tcp" || transport == "udp" else { return nil }
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count), let container = Self.ports(parts[parts.count - 1]) else { return nil }
        self.protocol = transport
        if parts.count == 1 {
            type = container.count > 1 ? "exposed_range" : "exposed"
            (containerPort, containerRange) = container.count > 1 ? (nil, container) : (container.lowerBound, nil)
            return
        }
        guard let host = Self.ports(parts[parts.count - 2]) else { return nil }
        hostIP = parts.count == 3 ? String(parts[0]) : "0.0.0.0"
        if host.count > 1 || container.count > 1 {
            type = "published_range"
            (hostRange, containerRange) = (host, container)
        } else {
            type = "published"
            (hostPort, containerPort) = (host.lowerBound, container.lowerBound)
        }
    }

    /// `80` or `8000-8010` as a range of valid ports.
    private static func ports(_ text: Substring) -> ClosedRange<Int>? {
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard (1...2).contains(bounds.count), let low = bounds.first ?? nil, let high = bounds.last ?? nil,
              1 <= low, low <= high, high <= 65_535 else { return nil }
        return low...high
    }
}

extension Substring {
    fileprivate func trimmingTrailingSpaces() -> Substring {
        var text = self
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return text
    }
}
