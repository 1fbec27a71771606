import VpsgateCore

/// MCP's JSON-RPC messages, answered for the Streamable HTTP transport without sessions
/// (`POST /mcp`, docs/clients.md#mcp-over-http): every request is answered on its own, so
/// any instance may take any message. Pure: what a tool sends goes through `ToolRequests`.
public enum MCPEndpoint {
    /// The protocol versions answered; the first is offered to a client asking for another.
    public static let protocolVersions = ["2025-11-25", "2025-06-18", "2025-03-26"]

    /// The JSON-RPC answer to `message`, or nil for a notification or a client's response
    /// (HTTP 202, no body). Every tool call and listing goes through `api` as the caller.
    public static func answer(_ message: JSONValue, scope: ToolScope, via api: some ToolRequests, keySecret: [UInt8],
                              keyContext: String) -> JSONValue? {
        guard message.objectValue != nil, message["jsonrpc"]?.stringValue == "2.0" else {
            return error(id: .null, code: -32600, "Invalid Request: one JSON-RPC 2.0 message (an object) per POST")
        }
        guard let method = message["method"]?.stringValue else { return nil }  // a client's response: nothing to answer
        guard let id = message["id"], !id.isNull else { return nil }  // a notification (initialized, cancelled, …)
        let params = message["params"] ?? .object([])
        switch method {
        case "initialize":
            let asked = params["protocolVersion"]?.stringValue ?? ""
            let version = protocolVersions.contains(asked) ? asked : protocolVersions[0]
            return result(id: id, .object([
                ("protocolVersion", .string(version)),
                ("capabilities", .object([("tools", .object([("listChanged", .bool(false))]))])),
                ("serverInfo", .object([("name", .string("vpsgate")), ("version", .string(BuildInfo.version))])),
                ("instructions", .string(instructions)),
            ]))
        case "ping":
            return result(id: id, .object([]))
        case "tools/list":
            guard let held = ToolCatalogue.held(via: api) else {
                return error(id: id, code: -32603, "vpsgate could not read the caller's grants (GET /v1/me)")
            }
            return result(id: id, .object([("tools", .array(ToolCatalogue.tools(held: held, scope: scope).map(\.json)))]))
        case "tools/call":
            guard let name = params["name"]?.stringValue else { return error(id: id, code: -32602, "Invalid params: tools/call needs name") }
            let arguments = Dictionary((params["arguments"]?.objectValue ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
            return result(id: id, ToolCatalogue.call(name, arguments: arguments, scope: scope, via: api, keySecret: keySecret,
                                                     keyContext: keyContext).json)
        default:
            return error(id: id, code: -32601, "Method not found: \(method)")
        }
    }

    /// What the server tells an agent at the start.
    public static let instructions = """
        vpsgate runs Hostinger VPS commands under your own credential: its grants decide which tools you see, \
        approvals and change freezes apply, and every call is audited. Call plan before a command that cannot be undone. \
        A command returns its operation; follow it with operation_get (wait_seconds) or the event feed (event_list with after).
        """

    public static func result(id: JSONValue, _ result: JSONValue) -> JSONValue {
        .object([("jsonrpc", .string("2.0")), ("id", id), ("result", result)])
    }

    public static func error(id: JSONValue, code: Int, _ message: String) -> JSONValue {
        .object([("jsonrpc", .string("2.0")), ("id", id), ("error", .object([("code", .number(String(code))), ("message", .string(message))]))])
    }
}
