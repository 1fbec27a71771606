import HTTPClient
import MCP
import Synchronization
import Testing
import VpsgateCore
import VpsgateTools
@testable import VpsgateClient

/// vpsgate stood in for: `GET /v1/me` answers the token's grants, and every request is
/// recorded, so a test sees what a tool call sent (or that it sent nothing).
final class StandInVpsgate: VpsgateRequests {
    let requests = Mutex<[String]>([])
    let grants: JSONValue

    init(grants: [(resource: String, permissions: [String])]) {
        self.grants = .array(grants.map { grant in
            .object([("resource", .string(grant.resource)), ("permissions", .array(grant.permissions.map { .string($0) }))])
        })
    }

    func send(_ method: String, _ path: String, body: JSONValue?, key: String?, timeoutSeconds: Int) -> Result<Answer, HTTPClientError> {
        requests.withLock { $0.append("\(method) \(path)") }
        if method == "GET" && path == "/v1/me" {
            return .success(Answer(status: 200, headers: [], body: .object([("grants", grants)])))
        }
        return .success(Answer(status: 202, headers: [], body: .object([("id", .string("5f0c7a52-3c1e-4f43-9d67-0c8d1b8f2a10")),
                                                                       ("state", .string("succeeded"))])))
    }
}

/// The MCP server's tools as an MCP client sees them, over the SDK's in-memory transport.
@Suite struct ToolCatalogueTests {
    let vpsgate = StandInVpsgate(grants: [("vps:1001", ["vps:read", "vps:power", "vps:snapshot", "docker:write"]),
                                          ("firewall:*", ["firewall:write"])])

    /// A client connected to the server of `vpsgate`'s tools; `body` runs with it.
    func withClient(_ body: (Client) async throws -> Void) async throws {
        let server = await MCPCommand.server(ToolCatalogueServer(api: vpsgate))
        let (clientTransport, serverTransport) = await InMemoryTransport.createConnectedPair()
        try await server.start(transport: serverTransport)
        let client = Client(name: "tests", version: "1.0.0")
        _ = try await client.connect(transport: clientTransport)
        try await body(client)
        await client.disconnect()
        await server.stop()
    }

    func text(_ content: [Tool.Content]) -> String {
        content.compactMap { if case .text(let value, _, _) = $0 { value } else { nil } }.joined(separator: "\n")
    }

    @Test func listsTheToolsTheGrantsAllowWithTheirAnnotations() async throws {
        try await withClient { client in
            let tools = try await client.listTools().tools
            let byName = Dictionary(tools.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            #expect(byName.count == tools.count)

            // Reads: read-only, never destructive.
            let list = try #require(byName["vps_list"])
            #expect(list.annotations.readOnlyHint == true)
            // A title, and the answer's schema (a list wrapped as items: structured content is an object).
            #expect(list.title == "VPS: list")
            #expect(list.outputSchema?.objectValue?["properties"]?.objectValue?["items"] != nil)
            #expect(byName["vps_restart"]?.outputSchema?.objectValue?["properties"]?.objectValue?["state"] != nil)
            #expect(byName["plan"] != nil && byName["batch_create"] != nil && byName["event_list"] != nil)
            #expect(list.annotations.destructiveHint == false)

            // A command that can be undone, and one that cannot.
            let restart = try #require(byName["vps_restart"])
            #expect(restart.annotations.readOnlyHint == false)
            #expect(restart.annotations.destructiveHint == false)
            let deleteSnapshot = try #require(byName["vps_snapshot_delete"])
            #expect(deleteSnapshot.annotations.readOnlyHint == false)
            #expect(deleteSnapshot.annotations.destructiveHint == true)
            let deleteRule = try #require(byName["firewall_rule_delete"])
            #expect(deleteRule.annotations.destructiveHint == true)
            #expect(byName["vps_docker_stop"] != nil)

            // Nothing the grants do not allow: no credentials, no destroy, no SSH keys.
            #expect(byName["vps_root_password_set"] == nil)
            #expect(byName["vps_recreate"] == nil)
            #expect(byName["public_key_list"] == nil)
            #expect(byName["firewall_list"] == nil)
        }
        #expect(vpsgate.requests.withLock { $0 } == ["GET /v1/me"])
    }

    /// `../restart#` in a path parameter would send the command to another route: the tool
    /// answers an error, and nothing reaches vpsgate.
    @Test func aBadPathParameterIsAToolErrorAndSendsNothing() async throws {
        try await withClient { client in
            let docker = try await client.callTool(name: "vps_docker_stop", arguments: ["id": .int(1001), "projectName": .string("../restart#")])
            #expect(docker.isError == true)
            #expect(text(docker.content).contains("nothing was sent"))
            let rule = try await client.callTool(name: "firewall_rule_delete", arguments: ["id": .int(4001), "ruleId": .string("../restart#")])
            #expect(rule.isError == true)
            #expect(text(rule.content).contains("ruleId must be a positive whole number"))
            let read = try await client.callTool(name: "vps_get", arguments: ["id": .string("../1001")])
            #expect(read.isError == true)
            let unknown = try await client.callTool(name: "vps_frobnicate", arguments: ["id": .int(1001)])
            #expect(unknown.isError == true)
        }
        #expect(vpsgate.requests.withLock { $0 }.isEmpty)
    }

    @Test func aGoodCallIsSentKeyed() async throws {
        try await withClient { client in
            let restart = try await client.callTool(name: "vps_restart", arguments: ["id": .int(1001)])
            #expect(restart.isError != true)
            #expect(text(restart.content).contains("succeeded"))
        }
        #expect(vpsgate.requests.withLock { $0 } == ["POST /v1/vps/1001/restart"])
    }

    /// A command tool's input is the OpenAPI document's request body, property for property,
    /// patterns and limits included (the project name's pattern, the compose file's size).
    /// A command tool takes an optional `reason` (the Vpsgate-Reason header), which is not part of
    /// the derived key: the same call with another reason is the same command, as for the server.
    @Test func aReasonIsAnOptionalArgumentOutsideTheDerivedKey() throws {
        let restart = try #require(Command.named("vps.restart"))
        guard case .object(let schema) = ToolCatalogueServer.value(ToolCatalogue.schema(restart)), case .object(let properties)? = schema["properties"] else {
            Issue.record("no properties")
            return
        }
        #expect(properties["reason"] != nil)
        let secret = ToolCatalogueServer.keySecret
        #expect(ToolCatalogue.derivedKey("vps_restart", ["id": .number("1001"), "reason": .string("ticket OPS-42")], secret: secret)
                == ToolCatalogue.derivedKey("vps_restart", ["id": .number("1001")], secret: secret))
        // Where one process serves many callers, the caller is part of the key.
        #expect(ToolCatalogue.derivedKey("vps_restart", ["id": .number("1001")], secret: secret, context: "alice")
                != ToolCatalogue.derivedKey("vps_restart", ["id": .number("1001")], secret: secret, context: "bob"))
    }

    @Test func aToolsInputSchemaIsTheDocumentsBodySchema() throws {
        let document = OpenAPIDocument.generate()
        for command in Command.catalogue where !command.fields.isEmpty {
            let operation = try #require(document["paths"]?[command.pathTemplate]?[command.method.lowercased()])
            let body = try #require(operation["requestBody"]?["content"]?["application/json"]?["schema"]?["properties"])
            guard case .object(let schema) = ToolCatalogueServer.value(ToolCatalogue.schema(command)), case .object(let properties)? = schema["properties"] else {
                Issue.record("\(command.name): no properties")
                continue
            }
            for field in command.fields {
                let expected = ToolCatalogueServer.value(try #require(body[field.name]))
                #expect(properties[field.name] == expected, "\(command.name).\(field.name)")
            }
        }
        let create = try #require(Command.named("vps.docker.create"))
        guard case .object(let schema) = ToolCatalogueServer.value(ToolCatalogue.schema(create)), case .object(let properties)? = schema["properties"],
              case .object(let name)? = properties["project_name"], case .object(let content)? = properties["content"] else {
            Issue.record("vps_docker_create has no project_name or content")
            return
        }
        #expect(name["pattern"] == .string("^[A-Za-z0-9_-]{3,64}$"))
        #expect(content["maxLength"] == .int(8192))
    }
}
