import ArgumentParser
import Crypto
import MCP
import VpsgateCore

/// `vpsgatectl mcp`: an MCP server on stdio that lets an AI agent use vpsgate with its own
/// token. Its tools are the catalogue's commands and reads, with
/// annotations from the catalogue, and only those the token's grants allow. A tool call's
/// idempotency key is derived from the call (tool and arguments) under a secret of this
/// process, so a retried call is not a second command, and a replay says so; a command that
/// needs approval answers that it awaits one, and nothing is sent to Hostinger until a
/// person approves it. It never holds Hostinger's token.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mcp", abstract: "Serve vpsgate's commands and reads to an MCP client on stdio.")

    func run() async throws {
        let runner: Runner
        do {
            runner = try Runner()
        } catch let error as ExitCodeError {
            throw ExitCode(error.code)
        }
        let server = await Self.server(ToolCatalogue(api: runner.api))
        try await server.start(transport: StdioTransport())
        await server.waitUntilCompleted()
    }

    /// The MCP server of `catalogue`'s tools, not yet started on a transport.
    static func server(_ catalogue: ToolCatalogue) async -> Server {
        let server = Server(name: "vpsgate", version: BuildInfo.version, capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in
            .init(tools: catalogue.tools())
        }
        await server.withMethodHandler(CallTool.self) { params in
            catalogue.call(params.name, arguments: params.arguments ?? [:])
        }
        return server
    }
}

/// The tools, from the catalogue and the caller's grants.
struct ToolCatalogue: Sendable {
    let api: any VpsgateRequests

    /// The read tools: the catalogue's reads that name one (`ReadRoute.tool`).
    static let reads: [ReadRoute] = ReadRoute.allCases.filter { $0.tool != nil }

    /// The read's path for the tool's arguments (`id`, or `operation_id` and `wait_seconds`),
    /// or nil when they are not valid: checked before anything is sent.
    static func path(_ read: ReadRoute, _ arguments: [String: Value]) -> String? {
        if read == .getOperation {
            guard let id = arguments["operation_id"]?.stringValue, UUIDv4.isValid(id) else { return nil }
            return read.filled(id) + "?wait=\(min(max(arguments["wait_seconds"]?.intValue ?? 0, 0), 50))"
        }
        guard read.namesOne else { return read.path }
        guard let id = id(arguments) else { return nil }
        var values = [String(id)]
        // Checked before anything is sent: `../restart#` would reach another route.
        if let parameter = read.parameter {
            guard let value = arguments[parameter].flatMap({ $0.intValue.map(String.init) ?? $0.stringValue }),
                  PathParameter.accepts(parameter, Substring(value)) else { return nil }
            values.append(value)
        }
        var query: [String] = []
        for name in read.required {
            guard let value = arguments[name]?.stringValue else { return nil }
            query.append("\(name)=\(Runner.percentEncoded(value))")
        }
        return read.filled(values) + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// The `id` argument when it is a path id (a positive whole number), else nil.
    static func id(_ arguments: [String: Value]) -> Int? { arguments["id"]?.intValue.flatMap { PathID.parse(Substring(String($0))) } }

    /// The tool name of a command: `vps.hostname.set` ⇒ `vps_hostname_set`.
    static func name(_ command: Command) -> String { String(command.name.map { $0 == "." ? "_" : $0 }) }

    /// The permissions the token holds, by resource kind (`GET /v1/me`); nil when unreadable.
    func held() -> [ResourceKind: Set<String>]? {
        guard case .success(let answer) = api.send("GET", ReadRoute.me.path), !answer.isProblem, let grants = answer.body?["grants"]?.arrayValue else {
            return nil
        }
        var held: [ResourceKind: Set<String>] = [:]
        for grant in grants {
            guard let resource = grant["resource"]?.stringValue.flatMap(Target.parse) else { continue }
            held[resource.kind, default: []].formUnion(grant["permissions"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        }
        return held
    }

    func tools() -> [Tool] {
        let held = self.held() ?? [:]
        var tools: [Tool] = []
        for read in Self.reads where read.permission.map({ held[read.on ?? .vps]?.contains($0.rawValue) ?? false }) ?? true {
            var properties: [String: Value] = [:]
            var required: [Value] = []
            if read == .getOperation {
                properties["operation_id"] = .object(["type": .string("string"), "description": .string("The operation id.")])
                properties["wait_seconds"] = .object(["type": .string("integer"), "minimum": .int(0), "maximum": .int(50)])
                required.append(.string("operation_id"))
            } else if read.namesOne {
                properties["id"] = .object(["type": .string("integer"), "description": .string("The \((read.on ?? .vps).noun) id.")])
                required.append(.string("id"))
            }
            if let parameter = read.parameter {
                properties[parameter] = Self.value(PathParameter.jsonSchema(parameter))
                required.append(.string(parameter))
            }
            for item in read.query where read.required.contains(item.name) {
                properties[item.name] = item.type == "date-time"
                    ? .object(["type": .string("string"), "format": .string("date-time"), "description": .string(item.summary)])
                    : .object(["type": .string(item.type), "description": .string(item.summary)])
                required.append(.string(item.name))
            }
            tools.append(Tool(name: read.tool ?? read.path, description: read.summary,
                              inputSchema: .object(["type": .string("object"), "properties": .object(properties), "required": .array(required)]),
                              annotations: .init(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true)))
        }
        for command in Command.catalogue where held[command.scope]?.contains(command.permission.rawValue) ?? false {
            tools.append(Tool(name: Self.name(command), description: Self.description(command), inputSchema: Self.schema(command),
                              annotations: .init(readOnlyHint: false, destructiveHint: command.irreversible,
                                                 idempotentHint: command.repeatSafe, openWorldHint: true)))
        }
        return tools
    }

    static func description(_ command: Command) -> String {
        var text = "\(command.summary) Permission: \(command.permission.rawValue)."
        if command.irreversible { text += " It cannot be undone." }
        if command.destructive { text += " Destroys data: confirm must repeat the VPS id." }
        if command.minimumApprovals > 0 { text += " Always waits for a person's approval." }
        for effect in command.effects { text += " \(effect)" }
        return text + " Returns the operation; a command that needs approval says so and sends nothing until a person approves it."
    }

    static func schema(_ command: Command) -> Value {
        var properties: [String: Value] = [:]
        var required: [Value] = []
        if command.scope != .account {
            properties["id"] = .object(["type": .string("integer"), "minimum": .int(1), "description": .string("The \(command.scope.noun) id.")])
            required.append(.string("id"))
        }
        for name in Invocation.pathParameters(command) {
            properties[name] = value(PathParameter.jsonSchema(name))
            required.append(.string(name))
        }
        // The same schema as the OpenAPI document's request body: patterns and limits included.
        for field in command.fields {
            properties[field.name] = value(field.jsonSchema)
            if field.required { required.append(.string(field.name)) }
        }
        properties["idempotency_key"] = .object(["type": .string("string"), "description": .string(
            "Optional. By default the key is derived from the call (keyed by this server process), so repeating the same call does not run the command twice, and the answer says it was a replay; give a new key to run it again on purpose.")])
        properties["reason"] = .object(["type": .string("string"), "minLength": .int(1), "maxLength": .int(CommandReason.maximumLength),
                                        "description": .string(
            "Optional. Why the command is asked for, one line: kept with the operation and shown to the people who approve it. Not part of the derived key.")])
        properties["wait_seconds"] = .object(["type": .string("integer"), "minimum": .int(0), "maximum": .int(50),
                                              "description": .string("Seconds to wait for the operation to end (default 30).")])
        return .object(["type": .string("object"), "properties": .object(properties), "required": .array(required),
                        "additionalProperties": .bool(false)])
    }

    func call(_ name: String, arguments: [String: Value]) -> CallTool.Result {
        if let read = Self.reads.first(where: { $0.tool == name }) {
            guard let path = Self.path(read, arguments) else { return Self.error("invalid arguments for \(name)") }
            return answer(api.send("GET", path))
        }
        guard let command = Command.catalogue.first(where: { Self.name($0) == name }) else { return Self.error("unknown tool \(name)") }
        let id = Self.id(arguments)
        if command.scope != .account && id == nil { return Self.error("\(name) needs id, the \(command.scope.noun) id (a positive whole number)") }
        var parameters: [String: String] = [:]
        for parameter in Invocation.pathParameters(command) {
            guard let value = arguments[parameter].flatMap({ $0.intValue.map(String.init) ?? $0.stringValue }) else {
                return Self.error("\(name) needs \(parameter)")
            }
            // Checked before anything is sent: `../restart#` would reach another route.
            do {
                parameters[parameter] = try Invocation.checked(parameter, value, as: parameter)
            } catch {
                return Self.error("\(name): \(error); nothing was sent")
            }
        }
        var members: [(key: String, value: JSONValue)] = []
        for field in command.fields { if let value = arguments[field.name] { members.append((field.name, Self.json(value))) } }
        let invocation = Invocation(command: command, target: Target(command.scope, id), parameters: parameters,
                                    body: members.isEmpty ? nil : .object(members))
        let key = arguments["idempotency_key"]?.stringValue ?? Self.derivedKey(name, arguments)
        let reason = arguments["reason"]?.stringValue
        if let reason, case .failure(let invalid) = CommandReason.parse(reason) {
            return Self.error("\(name): reason: \(CommandReason.message(invalid)); nothing was sent")
        }
        let sent = api.send(command.method, invocation.path, body: invocation.body, key: key, reason: reason)
        // A replay is said, whatever follows: the agent must not believe the command ran again.
        let replay: [Tool.Content] = (try? sent.get())?.replayNote.map {
            [.text(text: "\($0). To run it again on purpose, call it with a new idempotency_key.")]
        } ?? []
        guard case .success(let response) = sent, !response.isProblem, let operation = response.body, let operationID = operation["id"]?.stringValue
        else { return answer(sent, adding: replay) }
        if operation["state"]?.stringValue == "awaiting_approval" {
            let required = operation["approval"]?["required"]?.intValue ?? 1
            return CallTool.Result(content: [.text(text: """
                awaiting approval: operation \(operationID) (\(command.name)) needs \(required) approval(s) from another principal. \
                Nothing has been sent to Hostinger; a person must approve it (POST \(ApprovalAction.approve.path(operationID))). \
                Follow it with operation_get.
                """), .text(text: String(decoding: operation.serialized(), as: UTF8.self))] + replay, isError: false)
        }
        let wait = min(max(arguments["wait_seconds"]?.intValue ?? 30, 0), 50)
        guard wait > 0, !Runner.isTerminal(operation["state"]?.stringValue ?? "") else { return answer(sent, adding: replay) }
        return answer(api.send("GET", ReadRoute.getOperation.filled(operationID) + "?wait=\(wait)"), adding: replay)
    }

    /// The secret under which this process derives keys: random at start, never written or
    /// shown, so the keys it derives cannot be recomputed outside it.
    static let keySecret = RandomBytes.generate(32)

    /// `mcp-` and an HMAC-SHA256, under `keySecret`, of the tool and its arguments (without the
    /// key and the wait). The same call in this process gets the same key, so a retried call
    /// is one command. Keys are shown to every reader of the VPS (operations, events, webhooks,
    /// audit); an unkeyed hash of the arguments would let any of them test a guessed password
    /// against it. Secret fields enter nothing but this HMAC, whose key never leaves the process.
    static func derivedKey(_ name: String, _ arguments: [String: Value]) -> String {
        let canonical = JSONValue.object(arguments.filter { !["idempotency_key", "wait_seconds", "reason"].contains($0.key) }
            .sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) })
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: keySecret))
        hmac.update(data: Array(name.utf8) + [0])
        hmac.update(data: canonical.serialized(sortedKeys: true))
        return "mcp-" + Hex.encode(Array(hmac.finalize())).prefix(40)
    }

    /// A JSON Schema of the catalogue as an MCP value: numbers as integers where they are whole.
    static func value(_ json: JSONValue) -> Value {
        switch json {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .number(let text): Int(text).map { .int($0) } ?? Double(text).map { .double($0) } ?? .string(text)
        case .string(let text): .string(text)
        case .array(let items): .array(items.map(value))
        case .object(let members): .object(Dictionary(members.map { ($0.key, value($0.value)) }, uniquingKeysWith: { _, last in last }))
        }
    }

    static func json(_ value: Value) -> JSONValue {
        switch value {
        case .null: .null
        case .bool(let flag): .bool(flag)
        case .int(let number): .number(String(number))
        case .double(let number): number == number.rounded() && abs(number) < 1e15 ? .number(String(Int(number))) : .number(String(number))
        case .string(let text): .string(text)
        case .data(_, let data): .string(String(decoding: data, as: UTF8.self))
        case .array(let items): .array(items.map(json))
        case .object(let members): .object(members.sorted { $0.key < $1.key }.map { ($0.key, json($0.value)) })
        }
    }

    /// The answer as the tool's result: its body first, then `adding` (a replay's note).
    func answer(_ sent: Result<Answer, HTTPClientErrorBox.Wrapped>, adding: [Tool.Content] = []) -> CallTool.Result {
        switch sent {
        case .failure(let error): return Self.error("vpsgate could not be reached: \(error)")
        case .success(let answer):
            let text = answer.body.map { String(decoding: $0.serialized(), as: UTF8.self) } ?? "HTTP \(answer.status)"
            return CallTool.Result(content: [.text(text: text)] + adding, isError: answer.isProblem)
        }
    }

    static func error(_ text: String) -> CallTool.Result { CallTool.Result(content: [.text(text: text)], isError: true) }
}
