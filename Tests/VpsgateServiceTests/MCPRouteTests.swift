import FastCGI
import Hostinger
import Testing
import VpsgateCore
@testable import VpsgateService

/// `/mcp` on the responder: a tool call is the API request of the caller nginx named, through
/// the same command path (keys, audit); nothing without a principal. A call beyond the
/// caller's grants is refused by the database (Tests/e2e/test_mcp_http.py).
@Suite struct MCPRouteTests {
    let store = MemoryStore()
    let hostinger = ScriptedHostinger()
    let responder: Responder<MemoryStore, ScriptedHostinger>

    init() throws {
        store.grants = [Fixture.principal: [1001: [.read, .power]]]
        responder = Responder(context: try Fixture.context(), store: store, hostinger: hostinger)
    }

    func post(_ message: String, principal: String? = Fixture.principal, query: String = "") -> FastCGIResponse {
        var responder = self.responder
        var request = Fixture.request("POST", "/mcp", body: message, key: nil, principal: principal, query: query)
        request.parameters["AUTH_TYPE"] = "token"
        request.parameters["CONTENT_TYPE"] = "application/json"
        return responder.respond(to: request)
    }

    static let restart = #"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"vps_restart","arguments":{"id":1001,"wait_seconds":0}}}"#

    @Test func aToolCallIsTheCallersCommandWithAKeyDerivedFromTheCall() throws {
        hostinger.answer("restart", Fixture.accepted(Fixture.action(9001, "ct_restart", "sent")))
        let response = post(Self.restart)
        #expect(response.status == 200)
        let result = try #require(response.json?["result"])
        #expect(result["isError"] == .bool(false))
        #expect(result["structuredContent"]?["command"]?.stringValue == "vps.restart")
        let begun = try #require(store.begun.first)
        #expect(begun.principal == Fixture.principal && begun.key.hasPrefix("mcp-"))
        #expect(hostinger.calls.map(\.name) == ["restart"])
        // The database decides grants (`begin_command`, tested end to end); here, who asked.
        let audit = begun.audit
        #expect(audit.identity.principal == Fixture.principal && audit.identity.authType == "token")
        #expect(audit.identity.correlationID == "0123456789abcdef0123456789abcdef.1")
        #expect(audit.identity.path == "/v1/vps/1001/restart")
    }

    @Test func aCallOutsideTheRequestsToolsetsSendsNothing() throws {
        let response = post(Self.restart, query: "toolsets=firewall")
        #expect(response.json?["result"]?["isError"] == .bool(true))
        #expect(hostinger.calls.isEmpty && store.begun.isEmpty)
        #expect(post(Self.restart, query: "toolsets=dns").status == 400)
        #expect(post(Self.restart, query: "read_only=maybe").status == 400)
    }

    @Test func withoutAPrincipalNothingIsServed() {
        let response = post(Self.restart, principal: nil)
        #expect(response.status == 401)
        #expect(hostinger.calls.isEmpty && store.begun.isEmpty)
    }

    @Test func theTransportWithoutSessions() {
        #expect(post(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).status == 202)
        #expect(post("{").status == 400)
        var responder = self.responder
        let get = responder.respond(to: Fixture.request("GET", "/mcp", key: nil))
        #expect(get.status == 405 && get.headers.contains { $0.name == "Allow" && $0.value == "POST" })
        var ping = Fixture.request("POST", "/mcp", body: #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, key: nil)
        #expect(responder.respond(to: ping).status == 415, "no Content-Type: not application/json")
        ping.parameters["CONTENT_TYPE"] = "application/json; charset=utf-8"
        #expect(responder.respond(to: ping).status == 200)
        var unsupported = ping
        unsupported.parameters["HTTP_MCP_PROTOCOL_VERSION"] = "1999-01-01"
        #expect(responder.respond(to: unsupported).status == 400)
        var browser = ping
        browser.parameters["HTTP_ORIGIN"] = "https://evil.example"
        #expect(responder.respond(to: browser).status == 403)
    }
}
