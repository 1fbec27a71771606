import Crypto
import VpsgateCore

// MARK: - What a tool sends and answers

/// vpsgate's answer to one request a tool made.
public struct ToolAnswer: Sendable {
    public var status: Int
    public var body: JSONValue?
    /// Said when vpsgate answered with the stored answer of an earlier request under the same
    /// key (`Idempotent-Replayed: true`); nil otherwise.
    public var replayNote: String?

    public init(status: Int, body: JSONValue?, replayNote: String? = nil) {
        self.status = status
        self.body = body
        self.replayNote = replayNote
    }

    public var isProblem: Bool { status >= 400 }
}

/// A request that got no answer from vpsgate (a connection that failed, a timeout).
public struct ToolRequestFailure: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How a tool reaches vpsgate's API as the caller: over HTTP with the caller's token
/// (`vpsgatectl mcp`), or inside the service, through the same route as the API request
/// with the identity nginx established (`POST /mcp`).
public protocol ToolRequests {
    func send(_ method: String, _ path: String, body: JSONValue?, key: String?, reason: String?) -> Result<ToolAnswer, ToolRequestFailure>
}

/// One tool as MCP lists it.
public struct ToolDefinition: Sendable {
    public var name: String
    public var title: String
    public var description: String
    public var inputSchema: JSONValue
    public var outputSchema: JSONValue
    public var readOnly: Bool
    public var destructive: Bool
    public var idempotent: Bool
    public var toolset: Toolset

    /// MCP's `Tool` object.
    public var json: JSONValue {
        .object([
            ("name", .string(name)), ("title", .string(title)), ("description", .string(description)),
            ("inputSchema", inputSchema), ("outputSchema", outputSchema),
            ("annotations", .object([("title", .string(title)), ("readOnlyHint", .bool(readOnly)), ("destructiveHint", .bool(destructive)),
                                     ("idempotentHint", .bool(idempotent)), ("openWorldHint", .bool(true))])),
        ])
    }
}

/// A tool call's result: text for the model, the answer as structured content (matching the
/// tool's `outputSchema`), and whether it failed.
public struct ToolResult: Sendable {
    public var texts: [String]
    public var structured: JSONValue?
    public var isError: Bool

    public init(texts: [String], structured: JSONValue? = nil, isError: Bool) {
        self.texts = texts
        self.structured = structured
        self.isError = isError
    }

    static func error(_ text: String) -> ToolResult { ToolResult(texts: [text], isError: true) }

    /// MCP's `CallToolResult` object.
    public var json: JSONValue {
        var members: [(key: String, value: JSONValue)] = [
            ("content", .array(texts.map { .object([("type", .string("text")), ("text", .string($0))]) })), ("isError", .bool(isError)),
        ]
        if let structured { members.append(("structuredContent", structured)) }
        return .object(members)
    }
}

// MARK: - The tools

/// vpsgate's MCP tools, derived from the catalogue of commands (`Command.catalogue`) and of
/// reads (`ReadRoute`), for `vpsgatectl mcp` (stdio) and the service's `POST /mcp` alike.
/// A tool call is the API request of the same name, sent as the caller: the tools add no
/// privilege, and vpsgate's authorization, validation, approvals and audit apply unchanged.
public enum ToolCatalogue {
    /// What a tool does.
    enum Kind {
        case read(ReadRoute)
        case command(Command)
        case plan
        case batchCreate
        case batchCancel
    }

    /// The read tools: the catalogue's reads that name one (`ReadRoute.tool`).
    public static let reads: [ReadRoute] = ReadRoute.allCases.filter { $0.tool != nil }

    /// The tool name of a command: `vps.hostname.set` ⇒ `vps_hostname_set`.
    public static func name(_ command: Command) -> String { String(command.name.map { $0 == "." ? "_" : $0 }) }

    /// The permissions the caller holds, by resource kind (`GET /v1/me`); nil when unreadable.
    public static func held(via api: some ToolRequests) -> [ResourceKind: Set<String>]? {
        guard case .success(let answer) = api.send("GET", ReadRoute.me.path, body: nil, key: nil, reason: nil), !answer.isProblem,
              let grants = answer.body?["grants"]?.arrayValue else { return nil }
        var held: [ResourceKind: Set<String>] = [:]
        for grant in grants {
            guard let resource = grant["resource"]?.stringValue.flatMap(Target.parse) else { continue }
            held[resource.kind, default: []].formUnion(grant["permissions"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        }
        return held
    }

    /// The tools `held` allows, within `scope`, in a stable order: reads, commands, then plan
    /// and the batch tools.
    public static func tools(held: [ResourceKind: Set<String>], scope: ToolScope) -> [ToolDefinition] {
        var tools: [ToolDefinition] = []
        for (read, tool) in readTools where read.permission.map({ held[read.on ?? .vps]?.contains($0.rawValue) ?? false }) ?? true {
            tools.append(tool)
        }
        let commands = Command.catalogue.filter { held[$0.scope]?.contains($0.permission.rawValue) ?? false }
        tools += commandTools.filter { held[$0.command.scope]?.contains($0.command.permission.rawValue) ?? false }.map(\.tool)
        if commands.contains(where: { scope.allows(toolset($0), readOnly: true) }) { tools.append(planDefinition) }
        if commands.contains(where: { $0.scope == .vps }) { tools += [batchCreateDefinition, batchCancelDefinition] }
        return tools.filter { scope.allows($0.toolset, readOnly: $0.readOnly) }
    }

    /// Calls the tool `name` as the caller, within `scope`: a tool outside it is refused and
    /// nothing is sent. `keySecret` and `keyContext` (the caller, where one process serves
    /// many) key the idempotency keys derived from calls (`derivedKey`).
    public static func call(_ name: String, arguments: [String: JSONValue], scope: ToolScope, via api: some ToolRequests,
                            keySecret: [UInt8], keyContext: String = "") -> ToolResult {
        guard let kind = kind(name) else { return .error("unknown tool \(name)") }
        let definition = definition(kind)
        guard scope.allows(definition.toolset, readOnly: definition.readOnly) else {
            return .error("\(name) is outside this session's tools (\(describe(scope))); nothing was sent")
        }
        switch kind {
        case .read(let read):
            guard let path = path(read, arguments) else { return .error("invalid arguments for \(name); nothing was sent") }
            return answer(api.send("GET", path, body: nil, key: nil, reason: nil), wraps: wraps(read.schema))
        case .command(let command):
            return run(command, name, arguments, api, key: { derivedKey(name, arguments, secret: keySecret, context: keyContext) })
        case .plan:
            return plan(arguments, scope: scope, api)
        case .batchCreate:
            return createBatch(arguments, api, key: derivedKey(name, arguments, secret: keySecret, context: keyContext))
        case .batchCancel:
            guard let id = id(arguments) else { return .error("batch_cancel needs id, the batch id (a positive whole number); nothing was sent") }
            return answer(api.send("POST", "/v1/batches/\(id)/\(BatchAction.cancel.rawValue)", body: nil, key: nil,
                                   reason: arguments["reason"]?.stringValue), wraps: false)
        }
    }

    /// Every read's and command's tool, built once: they depend on the catalogue alone.
    static let readTools: [(read: ReadRoute, tool: ToolDefinition)] = reads.map { ($0, definition($0)) }
    static let commandTools: [(command: Command, tool: ToolDefinition)] = Command.catalogue.map { ($0, definition($0)) }

    static func kind(_ name: String) -> Kind? {
        if let read = reads.first(where: { $0.tool == name }) { return .read(read) }
        if let command = Command.catalogue.first(where: { Self.name($0) == name }) { return .command(command) }
        switch name {
        case planDefinition.name: return .plan
        case batchCreateDefinition.name: return .batchCreate
        case batchCancelDefinition.name: return .batchCancel
        default: return nil
        }
    }

    static func definition(_ kind: Kind) -> ToolDefinition {
        switch kind {
        case .read(let read): definition(read)
        case .command(let command): definition(command)
        case .plan: planDefinition
        case .batchCreate: batchCreateDefinition
        case .batchCancel: batchCancelDefinition
        }
    }

    static func describe(_ scope: ToolScope) -> String {
        var parts: [String] = []
        if scope.readOnly { parts.append("read-only") }
        if let sets = scope.toolsets { parts.append("toolsets " + sets.map(\.rawValue).sorted().joined(separator: ",")) }
        return parts.joined(separator: ", ")
    }

    // MARK: - Toolsets and titles

    /// A read's toolset: what follows commands is `operations`, the account's catalogue
    /// `account`, any other the kind of resource it reads.
    static func toolset(_ read: ReadRoute) -> Toolset {
        for prefix in ["/v1/operations", "/v1/events", "/v1/batches", "/v1/me", "/v1/approvals", "/v1/freezes"] where read.path.hasPrefix(prefix) {
            return .operations
        }
        if read.path.hasPrefix("/v1/templates") || read.path.hasPrefix("/v1/data-centers") { return .account }
        return Toolset(read.on ?? .vps)
    }

    static func toolset(_ command: Command) -> Toolset { Toolset(command.scope) }

    /// `vps_docker_logs` ⇒ `VPS: docker logs`: the resource first, then what is done.
    static func title(_ name: String) -> String {
        let prefixes: [(String, String)] = [("vps_", "VPS"), ("firewall_", "Firewall"), ("public_key_", "Public key"),
                                            ("post_install_script_", "Post-install script"), ("operation_", "Operation"), ("event_", "Event feed"),
                                            ("batch_", "Batch"), ("templates_", "Templates"), ("data_centers_", "Data centers")]
        for (prefix, noun) in prefixes where name.hasPrefix(prefix) {
            return noun + ": " + String(name.dropFirst(prefix.count).map { $0 == "_" ? " " : $0 })
        }
        return String(name.map { $0 == "_" ? " " : $0 })
    }

    // MARK: - Reads

    static func definition(_ read: ReadRoute) -> ToolDefinition {
        var properties: [(key: String, value: JSONValue)] = []
        var required: [JSONValue] = []
        if read == .getOperation {
            properties.append(("operation_id", .object([("type", .string("string")), ("description", .string("The operation id."))])))
            properties.append(("wait_seconds", .object([("type", .string("integer")), ("minimum", .number("0")), ("maximum", .number("50")),
                                                        ("description", .string("Seconds to wait for the operation to end (0 to 50).")) ])))
            required.append(.string("operation_id"))
        } else {
            if read.namesOne {
                properties.append(("id", .object([("type", .string("integer")), ("description", .string("The \(noun(read)) id."))])))
                required.append(.string("id"))
            }
            if let parameter = read.parameter {
                properties.append((parameter, PathParameter.jsonSchema(parameter)))
                required.append(.string(parameter))
            }
            // Every query value the route takes, as an argument: filters, limits, cursors.
            for item in read.query {
                let schema: JSONValue = item.type == "date-time"
                    ? .object([("type", .string("string")), ("format", .string("date-time")), ("description", .string(item.summary))])
                    : .object([("type", .string(item.type)), ("description", .string(item.summary))])
                properties.append((item.name, schema))
                if read.required.contains(item.name) { required.append(.string(item.name)) }
            }
        }
        let name = read.tool ?? read.path
        return ToolDefinition(name: name, title: title(name), description: read.summary,
                              inputSchema: .object([("type", .string("object")), ("properties", .object(properties)), ("required", .array(required))]),
                              outputSchema: outputSchema(read.schema), readOnly: true, destructive: false, idempotent: true, toolset: toolset(read))
    }

    static func noun(_ read: ReadRoute) -> String {
        if read.path.hasPrefix("/v1/batches") { return "batch" }
        return (read.on ?? .vps).noun
    }

    /// The read's path for the tool's arguments, or nil when they are not valid: checked
    /// before anything is sent (`../restart#` in a parameter would reach another route).
    public static func path(_ read: ReadRoute, _ arguments: [String: JSONValue]) -> String? {
        if read == .getOperation {
            guard let id = arguments["operation_id"]?.stringValue, UUIDv4.isValid(id) else { return nil }
            return read.filled(id) + "?wait=\(min(max(arguments["wait_seconds"]?.intValue ?? 0, 0), 50))"
        }
        var values: [String] = []
        if read.namesOne {
            guard let id = id(arguments) else { return nil }
            values.append(String(id))
        }
        if let parameter = read.parameter {
            guard let value = arguments[parameter].flatMap({ $0.intValue.map(String.init) ?? $0.stringValue }),
                  PathParameter.accepts(parameter, Substring(value)) else { return nil }
            values.append(value)
        }
        var query: [String] = []
        for item in read.query {
            guard let argument = arguments[item.name] else {
                if read.required.contains(item.name) { return nil }
                continue
            }
            guard let value = item.type == "integer" ? argument.intValue.map(String.init) : argument.stringValue else { return nil }
            query.append("\(item.name)=\(percentEncoded(value))")
        }
        return (values.isEmpty ? read.path : read.filled(values)) + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
    }

    /// The `id` argument when it is a path id (a positive whole number), else nil.
    public static func id(_ arguments: [String: JSONValue]) -> Int? {
        arguments["id"]?.intValue.flatMap { PathID.parse(Substring(String($0))) }
    }

    // MARK: - Commands

    static func definition(_ command: Command) -> ToolDefinition {
        ToolDefinition(name: name(command), title: title(name(command)), description: description(command), inputSchema: schema(command),
                       outputSchema: outputSchema("Operation"), readOnly: false, destructive: command.irreversible,
                       idempotent: command.repeatSafe, toolset: toolset(command))
    }

    public static func description(_ command: Command) -> String {
        var text = "\(command.summary) Permission: \(command.permission.rawValue)."
        if command.irreversible {
            text += " It cannot be undone: call plan first (tool \(name(command)) and these arguments) to see what would be sent and the decision it would meet."
        }
        if command.destructive { text += " Destroys data: confirm must repeat the VPS id." }
        if command.minimumApprovals > 0 { text += " Always waits for a person's approval." }
        for effect in command.effects { text += " \(effect)" }
        return text + " Returns the operation; a command that needs approval says so and sends nothing until a person approves it."
    }

    /// The command's input: the path's ids and the body's fields, with the OpenAPI
    /// document's JSON Schema (patterns and limits included), and the call's options.
    public static func schema(_ command: Command, options: Bool = true) -> JSONValue {
        var properties: [(key: String, value: JSONValue)] = []
        var required: [JSONValue] = []
        if command.scope != .account {
            properties.append(("id", .object([("type", .string("integer")), ("minimum", .number("1")),
                                              ("description", .string("The \(command.scope.noun) id."))])))
            required.append(.string("id"))
        }
        for name in command.pathParameterNames {
            properties.append((name, PathParameter.jsonSchema(name)))
            required.append(.string(name))
        }
        for field in command.fields {
            properties.append((field.name, field.jsonSchema))
            if field.required { required.append(.string(field.name)) }
        }
        if options {
            properties.append(("idempotency_key", .object([("type", .string("string")), ("description", .string(
                "Optional. By default the key is derived from the call (keyed by this server), so repeating the same call does not run the command twice, and the answer says it was a replay; give a new key to run it again on purpose."))])))
        }
        properties.append(("reason", .object([("type", .string("string")), ("minLength", .number("1")),
                                              ("maxLength", .number(String(CommandReason.maximumLength))), ("description", .string(
            "Optional. Why the command is asked for, one line: kept with the operation and shown to the people who approve it. Not part of the derived key."))])))
        if options {
            properties.append(("wait_seconds", .object([("type", .string("integer")), ("minimum", .number("0")), ("maximum", .number("50")),
                                                        ("description", .string("Seconds to wait for the operation to end (default 30)."))])))
        }
        return .object([("type", .string("object")), ("properties", .object(properties)), ("required", .array(required)),
                        ("additionalProperties", .bool(false))])
    }

    /// The command's path and body for the tool's arguments, or the error to answer (nothing sent).
    static func request(_ command: Command, _ name: String, _ arguments: [String: JSONValue]) -> Result<(path: String, body: JSONValue?), ToolRequestFailure> {
        var path = command.pathTemplate
        if command.scope != .account {
            guard let id = id(arguments) else {
                return .failure(.init("\(name) needs id, the \(command.scope.noun) id (a positive whole number); nothing was sent"))
            }
            path = path.replacingFirst("{id}", with: String(id))
        }
        for parameter in command.pathParameterNames {
            guard let value = arguments[parameter].flatMap({ $0.intValue.map(String.init) ?? $0.stringValue }) else {
                return .failure(.init("\(name) needs \(parameter); nothing was sent"))
            }
            // Checked before anything is sent: `../restart#` would reach another route.
            guard PathParameter.accepts(parameter, Substring(value)) else {
                let kind = PathParameter.names.contains(parameter) ? "3 to 64 letters, digits, dashes or underscores" : "a positive whole number"
                return .failure(.init("\(name): \(parameter) must be \(kind), not \(JSONValue.string(value).text()); nothing was sent"))
            }
            path = path.replacingFirst("{\(parameter)}", with: percentEncoded(value))
        }
        let members = command.fields.compactMap { field in arguments[field.name].map { (key: field.name, value: $0) } }
        return .success((path, members.isEmpty ? nil : .object(members)))
    }

    static func run(_ command: Command, _ name: String, _ arguments: [String: JSONValue], _ api: some ToolRequests,
                    key derive: () -> String) -> ToolResult {
        let built: (path: String, body: JSONValue?)
        switch request(command, name, arguments) {
        case .failure(let failure): return .error(failure.description)
        case .success(let request): built = request
        }
        let reason = arguments["reason"]?.stringValue
        if let reason, case .failure(let invalid) = CommandReason.parse(reason) {
            return .error("\(name): reason: \(CommandReason.message(invalid)); nothing was sent")
        }
        let key = arguments["idempotency_key"]?.stringValue ?? derive()
        let sent = api.send(command.method, built.path, body: built.body, key: key, reason: reason)
        // A replay is said, whatever follows: the agent must not believe the command ran again.
        let replay = (try? sent.get())?.replayNote.map { ["\($0). To run it again on purpose, call it with a new idempotency_key."] } ?? []
        guard case .success(let response) = sent, !response.isProblem, let operation = response.body, let operationID = operation["id"]?.stringValue
        else { return answer(sent, wraps: false, adding: replay) }
        if operation["state"]?.stringValue == "awaiting_approval" {
            let required = operation["approval"]?["required"]?.intValue ?? 1
            return ToolResult(texts: ["""
                awaiting approval: operation \(operationID) (\(command.name)) needs \(required) approval(s) from another principal. \
                Nothing has been sent to Hostinger; a person must approve it (POST \(ApprovalAction.approve.path(operationID))). \
                Follow it with operation_get.
                """, operation.text()] + replay, structured: operation, isError: false)
        }
        let wait = min(max(arguments["wait_seconds"]?.intValue ?? 30, 0), 50)
        guard wait > 0, !isTerminal(operation["state"]?.stringValue ?? "") else { return answer(sent, wraps: false, adding: replay) }
        return answer(api.send("GET", ReadRoute.getOperation.filled(operationID) + "?wait=\(wait)", body: nil, key: nil, reason: nil),
                      wraps: false, adding: replay)
    }

    static func isTerminal(_ state: String) -> Bool { ["succeeded", "failed", "cancelled"].contains(state) }

    // MARK: - Plan and batches

    static let commandToolNames: [JSONValue] = Command.catalogue.map { .string(name($0)) }

    static let planDefinition = ToolDefinition(
        name: "plan", title: "Plan a command",
        description: "What a command would do, without doing it (the API's validate_only answer): the decision it would meet "
            + "(proceed, needs_approval, busy, frozen), the Hostinger request it would send (secrets redacted), the approvals it needs, "
            + "the policy, the resource's current state and the effects. Call it before any command that cannot be undone. "
            + "Nothing is sent to Hostinger and nothing is recorded as an operation.",
        inputSchema: .object([
            ("type", .string("object")),
            ("properties", .object([
                ("tool", .object([("type", .string("string")), ("enum", .array(commandToolNames)),
                                  ("description", .string("The command's tool (vps_restart, …)."))])),
                ("arguments", .object([("type", .string("object")), ("description", .string("The arguments the command's tool would be called with."))])),
            ])),
            ("required", .array([.string("tool"), .string("arguments")])), ("additionalProperties", .bool(false)),
        ]),
        outputSchema: outputSchema("ValidateOnly"), readOnly: true, destructive: false, idempotent: true, toolset: .operations)

    static func plan(_ arguments: [String: JSONValue], scope: ToolScope, _ api: some ToolRequests) -> ToolResult {
        guard let name = arguments["tool"]?.stringValue, case .command(let command)? = kind(name) else {
            return .error("plan needs tool, the name of a command's tool (vps_restart, …); nothing was sent")
        }
        guard scope.allows(toolset(command), readOnly: true) else {
            return .error("\(name) is outside this session's tools (\(describe(scope))); nothing was sent")
        }
        let given = arguments["arguments"]?.objectValue ?? []
        let commandArguments = Dictionary(given.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        switch request(command, name, commandArguments) {
        case .failure(let failure): return .error(failure.description)
        case .success(let built):
            return answer(api.send(command.method, built.path + "?validate_only=true", body: built.body, key: nil,
                                   reason: commandArguments["reason"]?.stringValue), wraps: false)
        }
    }

    static let batchCreateDefinition = ToolDefinition(
        name: "batch_create", title: "Batch: create",
        description: "Runs one VPS command on many VPS, a few at a time (the API's POST /v1/batches): each VPS gets an operation of "
            + "its own under the caller's permissions, approvals and freezes. Commands that destroy data are not run in batches. "
            + "Returns the batch; follow it with batch_get, stop it with batch_cancel.",
        inputSchema: .object([
            ("type", .string("object")),
            ("properties", .object([
                ("command", .object([("type", .string("string")), ("description", .string("The command's name (vps.restart) or tool (vps_restart)."))])),
                ("vps", .object([("description", .string("The VPS ids, or \"*\" for every VPS the caller may run the command on.")),
                                 ("oneOf", .array([.object([("type", .string("array")), ("items", .object([("type", .string("integer"))])),
                                                            ("minItems", .number("1"))]),
                                                   .object([("const", .string("*"))])]))])),
                ("body", .object([("type", .string("object")), ("description", .string("The command's body, as its tool's fields."))])),
                ("parameters", .object([("type", .string("object")), ("description", .string("The command's path parameters (projectName, …)."))])),
                ("max_in_flight", .object([("type", .string("integer")), ("minimum", .number("1"))])),
                ("max_failures", .object([("type", .string("integer")), ("minimum", .number("0"))])),
                ("pause_seconds", .object([("type", .string("integer")), ("minimum", .number("0"))])),
                ("reason", .object([("type", .string("string")), ("description", .string("Optional. Why, one line."))])),
                ("idempotency_key", .object([("type", .string("string")), ("description", .string("Optional; derived from the call by default."))])),
            ])),
            ("required", .array([.string("command"), .string("vps")])), ("additionalProperties", .bool(false)),
        ]),
        outputSchema: outputSchema("Batch"), readOnly: false, destructive: false, idempotent: true, toolset: .operations)

    static let batchCancelDefinition = ToolDefinition(
        name: "batch_cancel", title: "Batch: cancel",
        description: "Stops a batch: no further VPS is started; operations already sent run to their end. Returns the batch.",
        inputSchema: .object([
            ("type", .string("object")),
            ("properties", .object([("id", .object([("type", .string("integer")), ("minimum", .number("1")), ("description", .string("The batch id."))])),
                                    ("reason", .object([("type", .string("string")), ("description", .string("Optional. Why, one line."))]))])),
            ("required", .array([.string("id")])), ("additionalProperties", .bool(false)),
        ]),
        outputSchema: outputSchema("Batch"), readOnly: false, destructive: false, idempotent: true, toolset: .operations)

    static func createBatch(_ arguments: [String: JSONValue], _ api: some ToolRequests, key derived: String) -> ToolResult {
        guard let given = arguments["command"]?.stringValue,
              let command = Command.named(given) ?? Command.catalogue.first(where: { name($0) == given }) else {
            return .error("batch_create needs command, a VPS command's name (vps.restart) or tool (vps_restart); nothing was sent")
        }
        var members: [(key: String, value: JSONValue)] = [("command", .string(command.name))]
        for field in ["vps", "body", "parameters", "max_in_flight", "max_failures", "pause_seconds"] {
            if let value = arguments[field] { members.append((field, value)) }
        }
        return answer(api.send("POST", "/v1/batches", body: .object(members), key: arguments["idempotency_key"]?.stringValue ?? derived,
                               reason: arguments["reason"]?.stringValue), wraps: false)
    }

    // MARK: - Answers

    /// The answer as the tool's result: its body as text and as structured content (wrapped
    /// as `{"items": …}` where the answer is a list: structured content is an object), then
    /// `adding` (a replay's note).
    static func answer(_ sent: Result<ToolAnswer, ToolRequestFailure>, wraps: Bool, adding: [String] = []) -> ToolResult {
        switch sent {
        case .failure(let error): return .error("vpsgate could not be reached: \(error)")
        case .success(let answer):
            let text = answer.body.map { $0.text() } ?? "HTTP \(answer.status)"
            guard !answer.isProblem, let body = answer.body else { return ToolResult(texts: [text] + adding, isError: answer.isProblem) }
            return ToolResult(texts: [text] + adding, structured: wraps ? .object([("items", body)]) : body, isError: false)
        }
    }

    // MARK: - Output schemas, from the OpenAPI document

    static let document = OpenAPIDocument.generate()

    /// Whether a schema's answer is not an object, so that its structured content is wrapped.
    static func wraps(_ schema: String) -> Bool { document["components"]?["schemas"]?[schema]?["type"]?.stringValue != "object" }

    /// The document's schema `name` with every `$ref` written out (an MCP client validates
    /// structured content against it on its own), wrapped as `{"items": …}` where it is not an object.
    static func outputSchema(_ name: String) -> JSONValue {
        let schema = resolved(.object([("$ref", .string("#/components/schemas/\(name)"))]), depth: 0)
        guard wraps(name) else { return schema }
        return .object([("type", .string("object")), ("properties", .object([("items", schema)])), ("required", .array([.string("items")]))])
    }

    static func resolved(_ node: JSONValue, depth: Int) -> JSONValue {
        switch node {
        case .object(let members):
            if let reference = node["$ref"]?.stringValue, depth < 12 {
                let name = reference.split(separator: "/").last.map(String.init) ?? ""
                return resolved(document["components"]?["schemas"]?[name] ?? .object([]), depth: depth + 1)
            }
            return .object(members.map { ($0.key, resolved($0.value, depth: depth)) })
        case .array(let items): return .array(items.map { resolved($0, depth: depth) })
        default: return node
        }
    }

    // MARK: - Keys

    /// `mcp-` and an HMAC-SHA256, under `secret`, of `context` (the caller), the tool and its
    /// arguments (without the key, the wait and the reason). The same call gets the same key,
    /// so a retried call is one command. Keys are shown to every reader of the VPS (operations,
    /// events, webhooks, audit); an unkeyed hash of the arguments would let any of them test a
    /// guessed password against it. Secret fields enter nothing but this HMAC.
    public static func derivedKey(_ name: String, _ arguments: [String: JSONValue], secret: [UInt8], context: String = "") -> String {
        let canonical = JSONValue.object(arguments.filter { !["idempotency_key", "wait_seconds", "reason"].contains($0.key) }
            .sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        if !context.isEmpty { hmac.update(data: Array(context.utf8) + [0]) }
        hmac.update(data: Array(name.utf8) + [0])
        hmac.update(data: canonical.serialized(sortedKeys: true))
        return "mcp-" + Hex.encode(Array(hmac.finalize())).prefix(40)
    }

    /// Unreserved characters as they are, every other byte as `%XX`: no value adds a segment.
    public static func percentEncoded(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            let character = Character(UnicodeScalar(byte))
            if character.isASCII && (character.isLetter || character.isNumber || "-._~".contains(character)) {
                result.append(character)
            } else {
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return result
    }
}

extension Command {
    /// Whether sending its Hostinger request twice has the effect of sending it once, read
    /// from the request the catalogue builds for a sample of valid input.
    public var repeatSafe: Bool { sampleRequest?.repeatSafe ?? false }
}

extension String {
    fileprivate func replacingFirst(_ pattern: String, with replacement: String) -> String {
        guard let range = firstRange(of: pattern) else { return self }
        return String(self[..<range.lowerBound]) + replacement + String(self[range.upperBound...])
    }
}
