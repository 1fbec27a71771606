import Testing
import VpsgateCore
import VpsgateTools
@testable import VpsgateClient

/// The tools' scope (read-only, toolsets) and MCP's JSON-RPC messages as `/mcp` answers them,
/// with vpsgate stood in for: no I/O.
@Suite struct MCPEndpointTests {
    let vpsgate = StandInVpsgate(grants: [("vps:*", ["vps:read", "vps:power", "vps:snapshot"]), ("firewall:*", ["firewall:read", "firewall:write"])])
    var sender: ToolCatalogueServer.Sender { .init(api: vpsgate) }

    func answer(_ message: String, scope: ToolScope = .all) throws -> JSONValue? {
        MCPEndpoint.answer(try JSONValue.parse(message), scope: scope, via: sender, keySecret: [1, 2, 3], keyContext: "alice")
    }

    func names(_ scope: ToolScope) -> Set<String> {
        Set(ToolCatalogue.tools(held: ToolCatalogue.held(via: sender) ?? [:], scope: scope).map(\.name))
    }

    @Test func readOnlyAndToolsetsNarrowTheTools() {
        let all = names(.all)
        #expect(all.isSuperset(of: ["vps_restart", "vps_get", "firewall_list", "firewall_delete", "plan", "batch_create", "event_list"]))
        let readOnly = names(ToolScope(readOnly: true))
        #expect(readOnly.contains("vps_get") && readOnly.contains("plan") && !readOnly.contains("vps_restart") && !readOnly.contains("batch_create"))
        let firewall = names(ToolScope(toolsets: [.firewall]))
        #expect(!firewall.isEmpty && firewall.allSatisfy { $0.hasPrefix("firewall_") })
        #expect(names(ToolScope(readOnly: true, toolsets: [.firewall])) == ["firewall_list", "firewall_get"])
    }

    @Test func aToolsetListIsCheckedByName() throws {
        #expect(try ToolScope.toolsets("vps, firewall").get() == [.vps, .firewall])
        #expect(throws: ToolScopeError.self) { try ToolScope.toolsets("vps,dns").get() }
        #expect(throws: ToolScopeError.self) { try ToolScope.toolsets(",").get() }
    }

    /// A tool outside the scope is refused before anything is sent, even when the grants allow it.
    @Test func aCallOutsideTheScopeSendsNothing() {
        for (name, arguments) in [("vps_restart", ["id": JSONValue.number("1001")]), ("firewall_get", ["id": .number("4001")])] {
            let result = ToolCatalogue.call(name, arguments: arguments, scope: ToolScope(readOnly: true, toolsets: [.vps]), via: sender, keySecret: [1])
            #expect(result.isError && result.texts.joined().contains("outside this session's tools"))
        }
        let planned = ToolCatalogue.call("plan", arguments: ["tool": .string("firewall_delete"), "arguments": .object([("id", .number("4001"))])],
                                         scope: ToolScope(toolsets: [.vps]), via: sender, keySecret: [1])
        #expect(planned.isError)
        #expect(vpsgate.requests.withLock { $0 }.isEmpty)
    }

    /// Every tool has a title and an object output schema whose `$ref`s are written out.
    @Test func everyToolHasATitleAndASelfContainedOutputSchema() {
        let owner: [ResourceKind: Set<String>] = Dictionary(uniqueKeysWithValues: ResourceKind.allCases.map { kind in
            (kind, Set(Command.catalogue.map(\.permission.rawValue) + ReadRoute.allCases.compactMap { $0.permission?.rawValue }))
        })
        let tools = ToolCatalogue.tools(held: owner, scope: .all)
        #expect(tools.count == ToolCatalogue.reads.count + Command.catalogue.count + 3)
        for tool in tools {
            #expect(!tool.title.isEmpty, "\(tool.name)")
            #expect(tool.outputSchema["type"]?.stringValue == "object", "\(tool.name)")
            #expect(!tool.outputSchema.text().contains("$ref"), "\(tool.name)")
        }
    }

    @Test func plansAreTheValidateOnlyRequestAndSendNoKey() {
        let result = ToolCatalogue.call("plan", arguments: ["tool": .string("vps_snapshot_delete"), "arguments": .object([("id", .number("1001"))])],
                                        scope: .all, via: sender, keySecret: [1])
        #expect(!result.isError)
        #expect(vpsgate.requests.withLock { $0 } == ["DELETE /v1/vps/1001/snapshot?validate_only=true"])
    }

    @Test func theEndpointAnswersRequestsAndNotNotifications() throws {
        let initialized = try #require(try answer(#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26"}}"#))
        #expect(initialized["result"]?["protocolVersion"]?.stringValue == "2025-03-26")
        #expect(initialized["result"]?["capabilities"]?["tools"] != nil)
        let newer = try #require(try answer(#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"2099-01-01"}}"#))
        #expect(newer["result"]?["protocolVersion"]?.stringValue == MCPEndpoint.protocolVersions[0])
        #expect(try answer(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#) == nil)
        let unknown = try #require(try answer(#"{"jsonrpc":"2.0","id":"x","method":"resources/list"}"#))
        #expect(unknown["error"]?["code"]?.intValue == -32601 && unknown["id"]?.stringValue == "x")
        let batch = try #require(try answer(#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#))
        #expect(batch["error"]?["code"]?.intValue == -32600)
        let listed = try #require(try answer(#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#, scope: ToolScope(readOnly: true)))
        let tools = try #require(listed["result"]?["tools"]?.arrayValue)
        #expect(!tools.isEmpty && tools.allSatisfy { $0["annotations"]?["readOnlyHint"] == .bool(true) })
        let called = try #require(try answer(#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"vps_restart","arguments":{"id":1001,"wait_seconds":0}}}"#))
        #expect(called["result"]?["isError"] == .bool(false))
        #expect(called["result"]?["structuredContent"]?["state"]?.stringValue == "succeeded")
    }
}
