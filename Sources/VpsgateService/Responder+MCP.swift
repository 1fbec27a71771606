import FastCGI
import Hostinger
import VpsgateCore
import VpsgateTools

/// `/mcp`: MCP's Streamable HTTP transport, without sessions (docs/clients.md#mcp-over-http).
/// Each POST carries one JSON-RPC message and gets its answer as `application/json` (a
/// notification: 202, no body); there is no SSE stream, so GET (and DELETE: no session to
/// end) answer 405. The caller is whoever nginx authenticated, as for `/v1`: a tool call is
/// the API request of the same name, routed here with the caller's identity, so it has
/// exactly the caller's permissions, approvals, freezes and audit rows.
extension Responder {
    /// The secret under which tool calls' idempotency keys are derived, with the caller's
    /// principal: an HMAC under vpsgate's current secret key (`VPSGATE_SECRET_KEY_FILE`), so
    /// every instance derives the same key and a retried call is one command whichever
    /// instance takes it; no one without the secret key can recompute a key from a guess.
    var mcpKeySecret: [UInt8] { Array(context.keys.mac([Array("vpsgate /mcp idempotency keys".utf8)]).utf8) }

    func mcp(_ request: FastCGIRequest, _ requestContext: RequestContext) -> FastCGIResponse {
        guard request.method == "POST" else {
            var response = problem(Problem(.methodNotAllowed, status: 405, title: "Method not allowed",
                                           detail: "POST one JSON-RPC message; this server offers no SSE stream and no sessions.",
                                           instance: request.path), requestContext)
            response.headers.append(.init("Allow", "POST"))
            return response
        }
        guard let principal = requestContext.principal else {
            var response = problem(Problem(.unauthenticated, status: 401, title: "Authentication required",
                                           detail: "No authenticated principal.", instance: request.path), requestContext)
            response.headers.append(.init("WWW-Authenticate", "Bearer"))
            return response
        }
        // A browser on another site must not drive an agent's endpoint with credentials it
        // attaches by itself (a client certificate): no Origin is accepted (MCP asks servers to
        // check it), and only application/json, which a browser cannot send cross-site
        // without a CORS preflight that vpsgate never grants.
        if let origin = request.header("Origin") {
            return problem(Problem(.forbidden, status: 403, title: "Forbidden",
                                   detail: "/mcp is for agents, not browsers: requests with an Origin (\(origin.prefix(100))) are refused.",
                                   instance: request.path), requestContext)
        }
        guard request.parameters["CONTENT_TYPE"]?.split(separator: ";").first?.trimmingSpaces.lowercased() == "application/json" else {
            return problem(Problem(.malformedRequest, status: 415, title: "Unsupported media type",
                                   detail: "POST one JSON-RPC message as Content-Type: application/json.", instance: request.path), requestContext)
        }
        if let version = request.header("MCP-Protocol-Version"), !MCPEndpoint.protocolVersions.contains(version) {
            return malformed("MCP-Protocol-Version \(version) is not supported; use one of \(MCPEndpoint.protocolVersions.joined(separator: ", ")).",
                             requestContext)
        }
        var scope = ToolScope()
        switch requestContext.queryValue("read_only") {
        case nil, "0", "false": break
        case "", "1", "true": scope.readOnly = true
        case let other?: return malformed("read_only must be 1 or true (or 0, false), not \(other.prefix(64)).", requestContext)
        }
        if let toolsets = requestContext.queryValue("toolsets") {
            switch ToolScope.toolsets(toolsets.replacingPercentComma()) {
            case .success(let sets): scope.toolsets = sets
            case .failure(let error): return malformed(error.description + ".", requestContext)
            }
        }
        let message: JSONValue
        do {
            message = try JSONValue.parse(request.body)
        } catch {
            return json(400, MCPEndpoint.error(id: .null, code: -32700, "Parse error: \(error)").serialized())
        }
        let sender = RoutedRequests(responder: self, original: request, requestContext: requestContext)
        guard let answer = MCPEndpoint.answer(message, scope: scope, via: sender, keySecret: mcpKeySecret, keyContext: principal) else {
            return FastCGIResponse(status: 202, headers: [], body: [])
        }
        return json(200, answer.serialized(), headers: [.init("Cache-Control", "no-store")])
    }

    private func malformed(_ detail: String, _ requestContext: RequestContext) -> FastCGIResponse {
        problem(Problem(.malformedRequest, status: 400, title: "Malformed request", detail: detail, instance: requestContext.path), requestContext)
    }
}

/// The tools' requests, routed inside this worker as API requests of the caller: the
/// parameters nginx set for `/mcp` (the principal, the authentication, the address, the
/// trace) with the API request's method, path, body and headers. Each gets a correlation id of
/// its own, `<the /mcp request's>.<n>`, so audit rows and logs tie it to the MCP request.
final class RoutedRequests<Store: ResponderStore, Upstream: HostingerCalling>: ToolRequests {
    let responder: Responder<Store, Upstream>
    let original: FastCGIRequest
    let requestContext: RequestContext
    private var count = 0

    /// The parameters an API request inherits from the `/mcp` request: identity and origin only.
    static var inherited: [String] {
        ["REMOTE_USER", "AUTH_TYPE", "REMOTE_ADDR", "REMOTE_PORT", "SERVER_PROTOCOL", "REQUEST_SCHEME", "HTTPS", "SERVER_ADDR",
         "SERVER_PORT", "SERVER_NAME", "HTTP_USER_AGENT", "HTTP_TRACEPARENT", "HTTP_HOST"]
    }

    init(responder: Responder<Store, Upstream>, original: FastCGIRequest, requestContext: RequestContext) {
        self.responder = responder
        self.original = original
        self.requestContext = requestContext
    }

    func send(_ method: String, _ path: String, body: JSONValue?, key: String?, reason: String?) -> Result<ToolAnswer, ToolRequestFailure> {
        count += 1
        var parameters: [String: String] = [:]
        for name in Self.inherited { if let value = original.parameters[name] { parameters[name] = value } }
        let query = path.firstIndex(of: "?").map { String(path[path.index(after: $0)...]) } ?? ""
        parameters["REQUEST_METHOD"] = method
        parameters["REQUEST_URI"] = path
        parameters["DOCUMENT_URI"] = String(path.prefix { $0 != "?" })
        parameters["QUERY_STRING"] = query
        parameters["REQUEST_ID"] = String(requestContext.correlationID.value.prefix(120)) + ".\(count)"
        parameters["HTTP_ACCEPT"] = "application/json"
        let bytes = body?.serialized() ?? []
        if body != nil { parameters["CONTENT_TYPE"] = "application/json" }
        parameters["CONTENT_LENGTH"] = String(bytes.count)
        if let key { parameters[FastCGIRequest.parameterName(forHeader: "Idempotency-Key")] = key }
        if let reason { parameters[FastCGIRequest.parameterName(forHeader: CommandReason.header)] = reason }
        let response = responder.routed(FastCGIRequest(parameters: parameters, body: bytes))
        let replayed = response.headers.contains { $0.name.lowercased() == "idempotent-replayed" && $0.value == "true" }
        let answer = response.body.isEmpty ? nil : try? JSONValue.parse(response.body)
        let note = replayed ? "replayed: this key's request was first made "
            + (answer?["created_at"]?.stringValue.map { "at \($0)" } ?? "earlier")
            + "; this is vpsgate's stored answer to it, and the command was not run again" : nil
        return .success(ToolAnswer(status: response.status, body: answer, replayNote: note))
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return String(text)
    }
}

extension String {
    /// `vps%2Cfirewall` ⇒ `vps,firewall`: the one escape a client may make in a toolsets list.
    fileprivate func replacingPercentComma() -> String {
        var text = self
        while let range = text.firstRange(of: "%2C") ?? text.firstRange(of: "%2c") { text.replaceSubrange(range, with: ",") }
        return text
    }
}
