import ArgumentParser
import HTTPClient
import MCP
import VpsgateCore
import VpsgateTools

/// `vpsgatectl mcp`: an MCP server on stdio that lets an AI agent use vpsgate with its own
/// token. Its tools are the catalogue's commands and reads (`VpsgateTools.ToolCatalogue`, the
/// same tools vpsgate serves at `/mcp`), with annotations from the catalogue, and only those
/// the token's grants allow, narrowed further by `--read-only` and `--toolsets`. A tool call's
/// idempotency key is derived from the call (tool and arguments) under a secret of this
/// process, so a retried call is not a second command, and a replay says so; a command that
/// needs approval answers that it awaits one, and nothing is sent to Hostinger until a
/// person approves it. It never holds Hostinger's token.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp", abstract: "Serve vpsgate's commands and reads to an MCP client on stdio.",
        discussion: "Toolsets (--toolsets):\n" + Toolset.allCases.map { "  \($0.rawValue): \($0.summary)" }.joined(separator: "\n"))

    @Flag(name: .customLong("read-only"), help: "Only the tools that change nothing (reads, plan).")
    var readOnly = false

    @Option(name: .customLong("toolsets"), help: "Only these toolsets, comma-separated: \(Toolset.allCases.map(\.rawValue).joined(separator: ",")).")
    var toolsets: String?

    func validate() throws {
        if let toolsets, case .failure(let error) = ToolScope.toolsets(toolsets) { throw ValidationError(error.description) }
    }

    var scope: ToolScope {
        ToolScope(readOnly: readOnly, toolsets: toolsets.flatMap { try? ToolScope.toolsets($0).get() })
    }

    func run() async throws {
        let runner: Runner
        do {
            runner = try Runner()
        } catch let error as ExitCodeError {
            throw ExitCode(error.code)
        }
        let server = await Self.server(ToolCatalogueServer(api: runner.api, scope: scope))
        try await server.start(transport: StdioTransport())
        await server.waitUntilCompleted()
    }

    /// The MCP server of `catalogue`'s tools, not yet started on a transport.
    static func server(_ catalogue: ToolCatalogueServer) async -> Server {
        let server = Server(name: "vpsgate", version: BuildInfo.version, instructions: MCPEndpoint.instructions,
                            capabilities: .init(tools: .init(listChanged: false)))
        await server.withMethodHandler(ListTools.self) { _ in
            .init(tools: catalogue.tools())
        }
        await server.withMethodHandler(CallTool.self) { params in
            catalogue.call(params.name, arguments: params.arguments ?? [:])
        }
        return server
    }
}

/// The shared tools (`ToolCatalogue`) as the SDK's types, sent with the caller's token.
struct ToolCatalogueServer: Sendable {
    let api: any VpsgateRequests
    var scope: ToolScope = .all

    /// The secret under which this process derives keys: random at start, never written or
    /// shown, so the keys it derives cannot be recomputed outside it.
    static let keySecret = RandomBytes.generate(32)

    func tools() -> [Tool] {
        ToolCatalogue.tools(held: ToolCatalogue.held(via: Sender(api: api)) ?? [:], scope: scope).map { tool in
            Tool(name: tool.name, title: tool.title, description: tool.description, inputSchema: Self.value(tool.inputSchema),
                 annotations: .init(title: tool.title, readOnlyHint: tool.readOnly, destructiveHint: tool.destructive,
                                    idempotentHint: tool.idempotent, openWorldHint: true),
                 outputSchema: Self.value(tool.outputSchema))
        }
    }

    func call(_ name: String, arguments: [String: Value]) -> CallTool.Result {
        let result = ToolCatalogue.call(name, arguments: arguments.mapValues(Self.json), scope: scope, via: Sender(api: api),
                                        keySecret: Self.keySecret)
        return CallTool.Result(content: result.texts.map { .text(text: $0, annotations: nil, _meta: nil) }, structuredContent: result.structured.map(Self.value),
                               isError: result.isError)
    }

    /// `api` as the tools' way to vpsgate.
    struct Sender: ToolRequests {
        let api: any VpsgateRequests

        func send(_ method: String, _ path: String, body: JSONValue?, key: String?, reason: String?) -> Result<ToolAnswer, ToolRequestFailure> {
            switch api.send(method, path, body: body, key: key, reason: reason) {
            case .success(let answer): .success(ToolAnswer(status: answer.status, body: answer.body, replayNote: answer.replayNote))
            case .failure(let error): .failure(ToolRequestFailure("\(error)"))
            }
        }
    }

    /// A JSON value as an MCP value: numbers as integers where they are whole.
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
}
