import VpsgateCore

/// A command of the catalogue as the command line names it: its name's segments
/// (`vps.hostname.set` ⇒ `vps hostname set`), the id its path names, `--field value` for each
/// body field and path parameter. Generated from `Command.catalogue`, the server's own, so
/// the two cannot drift apart.
struct Invocation {
    var command: Command
    var target: Target
    var parameters: [String: String]
    var body: JSONValue?

    /// The command whose name is the longest prefix of `words`, and the words after it.
    static func command(in words: [String]) -> (Command, [String])? {
        var best: (Command, Int)?
        for command in Command.catalogue {
            let segments = command.name.split(separator: ".").map { $0.replacingUnderscores }
            guard segments.count <= words.count,
                  zip(segments, words).allSatisfy({ $0 == $1.replacingUnderscores }) else { continue }
            if best.map({ segments.count > $0.1 }) ?? true { best = (command, segments.count) }
        }
        guard let best else { return nil }
        return (best.0, Array(words.dropFirst(best.1)))
    }

    /// `--flag` names of a body field or path parameter: `--template-id`, `--firewall-id`.
    static func flag(_ name: String) -> String {
        var text = ""
        for character in name {
            if character == "_" { text.append("-") } else if character.isUppercase {
                text.append("-")
                text.append(contentsOf: character.lowercased())
            } else {
                text.append(character)
            }
        }
        return "--" + text
    }

    static func pathParameters(_ command: Command) -> [String] { command.pathParameterNames }

    /// Parses what follows the command's name: its id (unless it acts on the account), then
    /// `--field value` pairs (`@path` reads a file, `-` standard input). `options` are the
    /// words it did not know (the caller's own flags).
    static func parse(_ command: Command, _ words: [String], readStandardInput: () -> String) throws -> (Invocation, [String]) {
        var rest = words
        var id: Int?
        if command.scope != .account {
            guard let first = rest.first, let parsed = PathID.parse(Substring(first)) else {
                throw UsageError("\(command.name) needs the \(command.scope.noun) id first: \(usage(command))")
            }
            id = parsed
            rest.removeFirst()
        }
        var parameters: [String: String] = [:]
        var members: [(key: String, value: JSONValue)] = []
        var others: [String] = []
        var index = 0
        while index < rest.count {
            let word = rest[index]
            let (flag, inline) = word.splitFlag
            if let name = pathParameters(command).first(where: { Self.flag($0) == flag }) {
                guard let value = inline ?? rest[safe: index + 1] else { throw UsageError("\(flag) needs a value") }
                parameters[name] = try checked(name, value, as: flag)
                index += inline == nil ? 2 : 1
            } else if let field = command.fields.first(where: { Self.flag($0.name) == flag }) {
                if field.kind == .boolean && inline == nil && !(rest[safe: index + 1].map { ["true", "false"].contains($0) } ?? false) {
                    members.append((field.name, .bool(true)))
                    index += 1
                    continue
                }
                guard var value = inline ?? rest[safe: index + 1] else { throw UsageError("\(flag) needs a value") }
                if value == "-" { value = readStandardInput() } else if value.hasPrefix("@") { value = try readFile(String(value.dropFirst())) }
                members.append((field.name, try json(value, for: field)))
                index += inline == nil ? 2 : 1
            } else {
                others.append(word)
                index += 1
            }
        }
        let target = Target(command.scope, id)
        return (Invocation(command: command, target: target, parameters: parameters, body: members.isEmpty ? nil : .object(members)), others)
    }

    /// A field's text as JSON of its kind: numbers, booleans, comma-separated lists.
    static func json(_ text: String, for field: BodyField) throws -> JSONValue {
        switch field.kind {
        case .positiveInteger, .confirmation:
            guard let number = Int(text) else { throw UsageError("\(flag(field.name)) takes a whole number") }
            return .number(String(number))
        case .positiveIntegers:
            let numbers = text.split(separator: ",").compactMap { Int($0) }
            guard numbers.count == text.split(separator: ",").count else { throw UsageError("\(flag(field.name)) takes ids separated by commas") }
            return .array(numbers.map { .number(String($0)) })
        case .boolean:
            guard text == "true" || text == "false" else { throw UsageError("\(flag(field.name)) takes true or false") }
            return .bool(text == "true")
        case .identifiers:
            return .array(text.split(separator: ",").map { .string(String($0)) })
        default:
            return .string(text)
        }
    }

    /// A path parameter's value when it is one of its kind (`PathParameter.accepts`: an id, or
    /// a name); anything else is refused before a request is made, since a value such as
    /// `../restart#` would send the command to another route. `label` names it in the error.
    static func checked(_ name: String, _ value: String, as label: String) throws -> String {
        guard PathParameter.accepts(name, Substring(value)) else {
            let kind = PathParameter.names.contains(name) ? "3 to 64 letters, digits, dashes or underscores" : "a positive whole number"
            throw UsageError("\(label) must be \(kind), not \(String(decoding: JSONValue.string(value).serialized(), as: UTF8.self))")
        }
        return value
    }

    /// The path this invocation's request goes to; parameters are percent-encoded as well as
    /// checked, so no value can add a segment.
    var path: String {
        var path = command.pathTemplate.replacingFirst("{id}", with: target.id.map(String.init) ?? "")
        for (name, value) in parameters { path = path.replacingFirst("{\(name)}", with: Runner.percentEncoded(value)) }
        return path
    }

    /// One line of usage: `vps hostname set <VPS id> --hostname <fqdn>`.
    static func usage(_ command: Command) -> String {
        var parts = command.name.split(separator: ".").map(String.init)
        if command.scope != .account { parts.append("<\(command.scope.noun) id>") }
        parts += pathParameters(command).map { "\(flag($0)) <\($0)>" }
        parts += command.fields.map { field in
            let text = "\(flag(field.name)) <\(field.kind.placeholder)>"
            return field.required ? text : "[\(text)]"
        }
        return parts.joined(separator: " ")
    }

    /// Help for one command: its usage, what it does, its permission, its fields and effects.
    static func help(_ command: Command) -> String {
        var lines = ["USAGE: vpsgatectl \(usage(command)) [--wait|--no-wait] [--key <key>] [--reason <text>] [--plan] [--yes] [-o json|table]", "",
                     command.summary, "", "Permission: \(command.permission.rawValue) on \(command.scope == .account ? "the account" : "the \(command.scope.noun)")."]
        if command.destructive { lines.append("Destructive: --confirm must repeat the VPS id.") }
        if command.irreversible {
            lines.append("Irreversible: it cannot be undone. On a terminal vpsgatectl asks first; otherwise it needs --yes (which also skips the question).")
        }
        if command.minimumApprovals > 0 { lines.append("Always needs \(command.minimumApprovals) approval(s) before it is sent.") }
        if !command.fields.isEmpty {
            lines.append("")
            lines.append("FIELDS:")
            for field in command.fields {
                lines.append("  \(flag(field.name)) <\(field.kind.placeholder)>\(field.required ? "" : " (optional)")\(field.secret ? " (secret: use @file or -)" : "")")
                lines.append("        \(field.summary)")
            }
        }
        for effect in command.effects { lines.append("Effect: \(effect)") }
        return lines.joined(separator: "\n")
    }
}

extension BodyField.Kind {
    var placeholder: String {
        switch self {
        case .fqdn: "fqdn"
        case .ipAddress: "address"
        case .password: "password"
        case .positiveInteger, .confirmation: "id"
        case .positiveIntegers: "id,id,…"
        case .projectName: "name"
        case .text: "text|@file"
        case .boolean: "true|false"
        case .oneOf(let choices): choices.joined(separator: "|")
        case .port: "port|a:b|any"
        case .networkSource: "address|cidr|a-b|any"
        case .sshPublicKey: "key|@file"
        case .identifier: "identifier"
        case .identifiers: "a,b,…"
        }
    }
}

extension Substring {
    var replacingUnderscores: String { String(map { $0 == "-" ? "_" : $0 }) }
}

extension String {
    var replacingUnderscores: String { String(map { $0 == "-" ? "_" : $0 }) }

    /// `--name=value` ⇒ (`--name`, `value`); `--name` ⇒ (`--name`, nil), with `_` as `-`.
    var splitFlag: (String, String?) {
        guard hasPrefix("--") else { return (self, nil) }
        let parts = split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        let flag = String(parts[0]).map { $0 == "_" ? "-" : $0 }
        return (String(flag), parts.count == 2 ? String(parts[1]) : nil)
    }

    func replacingFirst(_ pattern: String, with replacement: String) -> String {
        guard let range = firstRange(of: pattern) else { return self }
        return String(self[..<range.lowerBound]) + replacement + String(self[range.upperBound...])
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
