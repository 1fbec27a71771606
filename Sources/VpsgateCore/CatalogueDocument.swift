/// The catalogues of commands and reads as Markdown tables: `vpsgate openapi --markdown`
/// prints them, and `docs/catalogue.md` is that output, so the tables cannot drift from
/// what vpsgate serves.
public enum CatalogueDocument {
    public static func markdown() -> String {
        var lines = [
            "# vpsgate's catalogue",
            "",
            "Generated from `Command.catalogue` and `ReadRoute.allCases` by `vpsgate openapi --markdown > docs/catalogue.md`; do not edit.",
            "",
            "## Commands",
            "",
            "| command | route | permission on | body | Hostinger call | Hostinger actions | irreversible |",
            "|---|---|---|---|---|---|---|",
        ]
        for command in Command.catalogue {
            let body = command.fields.isEmpty ? "—" : command.fields.map { "`\($0.name)`" + ($0.required ? "" : "?") + ($0.secret ? " (secret)" : "") }
                .joined(separator: ", ")
            let call = command.sampleRequest.map { "`\($0.method) \(command.hostingerTemplate($0.path))`" } ?? "—"
            let actions = command.actions.isEmpty ? "— (answers with the resource)" : command.actions.sorted().map { "`\($0)`" }.joined(separator: ", ")
            let on = command.scope == .account ? "the account" : "the \(command.scope.noun)"
            lines.append("| `\(command.name)` | `\(command.method) \(command.pathTemplate)` | `\(command.permission.rawValue)` on \(on) | \(body) | \(call) | "
                + "\(actions) | \(command.irreversible ? "yes" : "no") |")
        }
        lines += ["", "## Reads", "", "| route | permission on | Hostinger read | vpsgatectl | MCP tool |", "|---|---|---|---|---|"]
        for route in ReadRoute.allCases where !route.isService {
            let permission = route.permission.map { "`\($0.rawValue)` on \(route.on.map { "the \($0.noun)" } ?? "it")" } ?? "—"
            let read = route.hostinger.map { hostinger in
                let sample = route.parameter.map { PathParameter.names.contains($0) ? "sample-1" : String(Command.sampleID + 1) } ?? ""
                let request = hostinger(ReadRoute.ReadArguments(id: Command.sampleID, page: 1, parameter: sample,
                                                                query: Dictionary(uniqueKeysWithValues: route.required.map { ($0, "{\($0)}") })))
                var path = request.path.replacingAll(String(Command.sampleID), with: "{id}").replacingAll("?page=1", with: "")
                if let name = route.parameter { path = path.replacingAll(sample, with: "{\(name)}") }
                for name in route.required { path = path.replacingAll(HostingerRequest.queryEncoded("{\(name)}"), with: "{\(name)}") }
                return "`GET \(path)`"
            } ?? "— (vpsgate's own)"
            let command = route.command.map { "`vpsgatectl \($0.group) \($0.verb)\(route.commandArguments)`" } ?? "—"
            lines.append("| `GET \(route.path)` | \(permission) | \(read) | \(command) | \(route.tool.map { "`\($0)`" } ?? "—") |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Command {
    /// The id a sample request names, recognisable in the paths it builds.
    static let sampleID = 900_001

    /// The `{name}` path parameters of its route, in order.
    public var pathParameterNames: [String] { pathSuffix.filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) } }

    /// The Hostinger request it builds from a sample of valid input: what it sends, and
    /// whether sending it twice is safe (`HostingerRequest.repeatSafe`).
    public var sampleRequest: HostingerRequest? {
        var members: [(key: String, value: JSONValue)] = []
        for field in fields where field.required {
            let sample: JSONValue =
                switch field.kind {
                case .fqdn: .string("host.example.com")
                case .ipAddress: .string("192.0.2.1")
                case .password: .string("Sample7Password-Ok")
                case .positiveInteger: .number("1")
                case .confirmation: .number(String(Self.sampleID))
                case .positiveIntegers: .array([.number("1")])
                case .projectName: .string("sample")
                case .text: .string("x")
                case .boolean: .bool(true)
                case .oneOf(let choices): .string(choices.first ?? "")
                case .port: .string("22")
                case .networkSource: .string("any")
                case .sshPublicKey: .string("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISample")
                case .identifier: .string("sample")
                case .identifiers: .array([.string("sample")])
                }
            members.append((field.name, sample))
        }
        if fields.contains(where: { $0.name == "source" }) {
            members = members.map { $0.key == "source" ? ($0.key, .string("any")) : $0 }
        }
        var parameters: [String: String] = [:]
        for (index, name) in pathParameterNames.enumerated() {
            parameters[name] = PathParameter.names.contains(name) ? "sample-\(index)" : String(Self.sampleID + 1 + index)
        }
        guard case .success(let request) = prepare(Target(scope, Self.sampleID), parameters: parameters,
                                                   body: members.isEmpty ? nil : .object(members)) else { return nil }
        return request
    }

    /// A sample request's path as a template: the sample values back as `{id}`, `{name}`.
    func hostingerTemplate(_ path: String) -> String {
        var path = path
        for (index, name) in pathParameterNames.enumerated() {
            path = path.replacingAll(PathParameter.names.contains(name) ? "sample-\(index)" : String(Self.sampleID + 1 + index), with: "{\(name)}")
        }
        return path.replacingAll(String(Self.sampleID), with: "{id}")
    }
}

extension String {
    func replacingAll(_ pattern: String, with replacement: String) -> String {
        guard !pattern.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: pattern) {
            result += String(rest[..<range.lowerBound]) + replacement
            rest = rest[range.upperBound...]
        }
        return result + String(rest)
    }
}
