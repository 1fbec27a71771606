import Testing
import VpsgateCore

@Suite struct CommandCatalogueTests {
    /// The VPS commands of docs/api.md (23) and the 18 of its write surface: Docker Manager projects (6), VM
    /// setup, firewalls (5), keys (2), scripts (3) and the purchase.
    @Test func theCatalogueIsSpecSectionsThreeAndFourteen() {
        #expect(Command.catalogue.count == 41)
        #expect(Set(Command.catalogue.map(\.name)).count == 41)
        #expect(Set(Command.catalogue.map { "\($0.method) \($0.pathTemplate)" }).count == 41)
        // Synchronous answers: the setup, and every command on something other than a VPS.
        #expect(Command.catalogue.filter(\.answersResource).map(\.name)
            == ["vps.setup"] + Command.catalogue.filter { $0.scope != .vps }.map(\.name))
        #expect(Command.catalogue.filter { $0.scope == .account }.map(\.name).sorted()
            == ["firewall.create", "post_install_script.create", "public_key.create", "vps.purchase"])
        #expect(Command.catalogue.filter { $0.minimumApprovals > 0 }.map(\.name) == ["vps.purchase"])
        #expect(Command.catalogue.filter(\.unsyncsFirewall).map(\.name) == ["firewall.rule.create", "firewall.rule.update", "firewall.rule.delete"])
        #expect(Command.catalogue.filter { !$0.hashedFields.isEmpty }.map(\.name) == ["post_install_script.create", "post_install_script.update"])
        #expect(Command.catalogue.filter { $0.permission == .dockerWrite }.map(\.name).sorted()
            == ["vps.docker.create", "vps.docker.down", "vps.docker.restart", "vps.docker.start", "vps.docker.stop", "vps.docker.update"])
        let destructive = Command.catalogue.filter(\.destructive).map(\.name).sorted()
        #expect(destructive == ["vps.backup.restore", "vps.recreate", "vps.snapshot.restore"])
        #expect(Command.catalogue.filter { $0.permission == .destroy }.map(\.name).sorted() == destructive)
        // What cannot be undone (`Command.irreversible`'s rule): every delete, restore and
        // overwrite, every credential handed out, the setup and the purchase.
        #expect(Command.catalogue.filter(\.irreversible).map(\.name).sorted() == [
            "firewall.delete", "firewall.rule.delete", "post_install_script.delete", "post_install_script.update", "public_key.delete",
            "vps.backup.restore", "vps.docker.down", "vps.docker.update", "vps.hostname.reset", "vps.panel_password.set", "vps.ptr.delete",
            "vps.purchase", "vps.recovery.start", "vps.recreate", "vps.root_password.set", "vps.setup", "vps.snapshot.create",
            "vps.snapshot.delete", "vps.snapshot.restore",
        ])
        #expect(Command.catalogue.filter { $0.destructive && !$0.irreversible }.isEmpty)
        #expect(Command.catalogue.filter { $0.method == "DELETE" && !$0.irreversible }.map(\.name).sorted()
            == ["vps.monarx.uninstall", "vps.recovery.stop"])
        let secrets = Command.catalogue.filter { !$0.secretFields.isEmpty }.map(\.name).sorted()
        #expect(secrets == ["vps.docker.create", "vps.panel_password.set", "vps.purchase", "vps.recovery.start", "vps.recreate",
                            "vps.root_password.set", "vps.setup"])
    }

    @Test func everyCommandIsRoutedToItselfAndNothingElse() {
        for command in Command.catalogue {
            let value = { (segment: String) in PathParameter.names.contains(String(segment.dropFirst().dropLast())) ? "web_app-1" : "77" }
            let segments: [Substring] = command.pathTemplate.split(separator: "/").dropFirst().map {
                $0 == "{id}" ? "42" : Substring($0.hasPrefix("{") ? value(String($0)) : String($0))
            }
            let matched = Command.match(method: command.method, segments: segments)
            #expect(matched?.0.name == command.name)
            #expect(matched?.1 == Target(command.scope, 42))
            let parameters: [String: String] = matched?.2 ?? [:]
            #expect(parameters.values.allSatisfy { $0 == "77" || $0 == "web_app-1" })
        }
        // A name parameter takes names only, an id parameter ids only.
        #expect(Command.match(method: "POST", segments: ["vps", "1001", "docker", "ab", "start"]) == nil)
        #expect(Command.match(method: "POST", segments: ["vps", "1001", "docker", "a.b.c", "start"]) == nil)
        #expect(Command.match(method: "POST", segments: ["vps", "1001", "docker", Substring(String(repeating: "x", count: 65)), "start"]) == nil)
        #expect(Command.match(method: "POST", segments: ["vps", "1001", "ptr", "web_app"]) == nil)
        #expect(Command.match(method: "POST", segments: ["vps", "1001", "reboot"]) == nil)
        #expect(Command.match(method: "PATCH", segments: ["vps", "1001", "hostname"]) == nil)
        #expect(Command.match(method: "POST", segments: ["vps", "1001", "ptr", "0"]) == nil)
        #expect(Command.match(method: "POST", segments: ["vps", "1001", "ptr", "012"]) == nil)
        #expect(Command.match(method: "POST", segments: ["vps", "1001", "ptr", "-1"]) == nil)
    }

    func command(_ name: String) -> Command { Command.catalogue.first { $0.name == name }! }

    @Test func validBodiesBecomeTheHostingerRequest() throws {
        let recreate = try command("vps.recreate").prepare(.vps(1003), parameters: [:], body: JSONValue.parse(
            #"{"template_id": 1130, "password": "Correct7Horse-Battery", "confirm": 1003}"#)).get()
        #expect(recreate.path == "/api/vps/v1/virtual-machines/1003/recreate")
        #expect(recreate.body == .object([("template_id", .number("1130")), ("password", .string("Correct7Horse-Battery"))]))
        #expect(!recreate.repeatSafe)
        let ptr = try command("vps.ptr.create").prepare(.vps(1001), parameters: ["ipAddressId": "2001"], body: JSONValue.parse(#"{"domain":"a.example.com"}"#)).get()
        #expect(ptr.path == "/api/vps/v1/virtual-machines/1001/ptr/2001" && ptr.repeatSafe)
        let firewall = try command("vps.firewall.sync").prepare(.vps(1001), parameters: ["firewallId": "4001"], body: nil).get()
        #expect(firewall.path == "/api/vps/v1/firewall/4001/sync/1001")
        let create = try command("vps.docker.create").prepare(.vps(1001), parameters: [:], body: JSONValue.parse(
            #"{"project_name": "web_app-1", "content": "services: {}", "environment": "TOKEN=s3cret"}"#)).get()
        #expect(create.path == "/api/vps/v1/virtual-machines/1001/docker" && create.method == "POST" && !create.repeatSafe)
        #expect(create.body == .object([("project_name", .string("web_app-1")), ("content", .string("services: {}")),
                                        ("environment", .string("TOKEN=s3cret"))]))
        let down = try command("vps.docker.down").prepare(.vps(1001), parameters: ["projectName": "web_app-1"], body: nil).get()
        #expect(down.path == "/api/vps/v1/virtual-machines/1001/docker/web_app-1/down" && down.method == "DELETE" && !down.repeatSafe)
        let restart = try command("vps.docker.restart").prepare(.vps(1001), parameters: ["projectName": "web_app-1"], body: nil).get()
        #expect(restart.path == "/api/vps/v1/virtual-machines/1001/docker/web_app-1/restart" && restart.repeatSafe)
        #expect(command("vps.docker.create").secretFields == ["environment"])
        let setup = try command("vps.setup").prepare(.vps(1004), parameters: [:], body: JSONValue.parse(
            #"{"template_id": 1130, "data_center_id": 19, "hostname": "new.example.com", "install_monarx": true}"#)).get()
        #expect(setup.path == "/api/vps/v1/virtual-machines/1004/setup" && !setup.repeatSafe)
        #expect(setup.body == .object([("template_id", .number("1130")), ("data_center_id", .number("19")),
                                       ("hostname", .string("new.example.com")), ("install_monarx", .bool(true))]))
        #expect(throws: FieldErrors.self) {
            try command("vps.setup").prepare(.vps(1004), parameters: [:], body: JSONValue.parse(#"{"template_id": 1130, "data_center_id": 19, "install_monarx": "yes"}"#)).get()
        }
    }

    @Test func composeContentIsSizeLimitedAndProjectNamesAreChecked() throws {
        let create = command("vps.docker.create")
        let big = String(repeating: "x", count: 8193)
        for body in [#"{"project_name": "ab", "content": "x"}"#, #"{"project_name": "web app", "content": "x"}"#,
                     #"{"project_name": "web", "content": ""}"#, #"{"project_name": "web", "content": "\#(big)"}"#,
                     #"{"project_name": "web", "content": "x", "environment": 7}"#, #"{"project_name": "web"}"#] {
            #expect(throws: FieldErrors.self, "\(body)") { try create.prepare(.vps(1001), parameters: [:], body: JSONValue.parse(body)).get() }
        }
        let exact = String(repeating: "x", count: 8192)
        #expect((try? create.prepare(.vps(1001), parameters: [:], body: JSONValue.parse(#"{"project_name": "web", "content": "\#(exact)"}"#)).get()) != nil)
    }

    @Test(arguments: [
        ("vps.hostname.set", #"{"hostname": "x"}"#, "hostname"),
        ("vps.nameservers.set", #"{"ns1": "1.1.1.1", "ns2": null, "ns9": "1.1.1.1"}"#, "ns9"),
        ("vps.public_keys.attach", #"{"ids": [1, 1]}"#, "ids"),
        ("vps.recreate", #"{"template_id": 1130, "confirm": 1004}"#, "confirm"),
        ("vps.recreate", #"{"template_id": 1130}"#, "confirm"),
        ("vps.snapshot.restore", #"{"confirm": "1003"}"#, "confirm"),
        ("vps.start", #"{"force": true}"#, "force"),
        ("vps.start", #"[1]"#, "body"),
    ])
    func invalidBodiesNameTheField(_ name: String, _ body: String, _ field: String) throws {
        let result = command(name).prepare(.vps(1003), parameters: [:], body: try JSONValue.parse(body))
        guard case .failure(let errors) = result else {
            Issue.record("\(name) accepted \(body)")
            return
        }
        #expect(errors.fields.map(\.field).contains(field))
    }

    @Test func secretsAreRedactedAtAnyDepth() throws {
        let body = try JSONValue.parse(#"{"password": "p", "nested": [{"root_password": "q"}], "hostname": "h"}"#)
        let redacted = Redaction.redact(body, secrets: ["password", "root_password"])
        #expect(redacted.text() == #"{"password":"[REDACTED]","nested":[{"root_password":"[REDACTED]"}],"hostname":"h"}"#)
    }

    @Test func idempotencyKeysAreCheckedAsTheSpecSays() {
        #expect(IdempotencyKey.parse(nil) == .failure(.missing))
        #expect(IdempotencyKey.parse("12345678") == .success("12345678"))
        #expect(IdempotencyKey.parse("\"quoted-key-1\"") == .success("quoted-key-1"))
        #expect(IdempotencyKey.parse("1234567") == .failure(.invalid))
        #expect(IdempotencyKey.parse(String(repeating: "k", count: 256)) == .failure(.invalid))
        #expect(IdempotencyKey.parse("has a space") == .failure(.invalid))
        #expect(IdempotencyKey.parse("\"unterminated") == .failure(.invalid))
        #expect(IdempotencyKey.parse("quote\"inside") == .failure(.invalid))
    }

    @Test func theDocumentListsExactlyTheCatalogueTheReadsAndTheApprovalCalls() {
        let document = OpenAPIDocument.generate()
        var listed: [String] = []
        for (path, item) in document["paths"]?.objectValue ?? [] {
            for (method, _) in item.objectValue ?? [] { listed.append("\(method.uppercased()) \(path)") }
        }
        let expected = Command.catalogue.map { "\($0.method) \($0.pathTemplate)" } + OpenAPIDocument.reads.map { "\($0.method) \($0.path)" }
            + ApprovalAction.allCases.map { "POST /v1/operations/{operationId}/\($0.rawValue)" }
            + ["POST /v1/batches"] + BatchAction.allCases.map { "POST /v1/batches/{id}/\($0.rawValue)" }
        #expect(listed.sorted() == expected.sorted())
        #expect(OpenAPIDocument.routes.map { "\($0.method) \($0.path)" }.sorted() == expected.sorted())
    }
}
