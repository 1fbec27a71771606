import ArgumentParser
import Testing
import VpsgateCore
@testable import VpsgateClient

/// The command line as vpsgatectl parses it, before anything is sent: an argument array in,
/// the parsed call or the usage error out.
@Suite struct CatalogueCallTests {
    func parse(_ words: [String], standardInput: String = "") throws -> CatalogueCall {
        try CatalogueCall.parse(words) { standardInput }
    }

    /// The usage error `words` are refused with (nil when they parse).
    func refusal(_ words: [String]) -> String? {
        do {
            _ = try parse(words)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func aCommandByItsName() throws {
        let call = try parse(["vps", "restart", "1001"])
        #expect(call.invocation.command.name == "vps.restart")
        #expect(call.invocation.target == Target(.vps, 1001))
        #expect(call.invocation.path == "/v1/vps/1001/restart")
        #expect(call.invocation.body == nil)
        #expect(call.output == "json")
        #expect(call.wait)
        #expect(!call.plan)
        #expect(!call.yes)
        #expect(call.key == nil)
        #expect(call.timeout == 600)
    }

    @Test func aFieldAfterTheID() throws {
        for words in [["vps", "hostname", "set", "1001", "--hostname", "web1.example.com"],
                      ["vps", "hostname", "set", "1001", "--hostname=web1.example.com"]] {
            let call = try parse(words)
            #expect(call.invocation.command.name == "vps.hostname.set")
            #expect(call.invocation.path == "/v1/vps/1001/hostname")
            #expect(call.invocation.body?["hostname"]?.stringValue == "web1.example.com")
        }
    }

    @Test func dashesAndUnderscoresNameTheSameCommand() throws {
        #expect(try parse(["vps", "root-password", "set", "1001", "--password", "Sample7Password-Ok"]).invocation.command.name == "vps.root_password.set")
        #expect(try parse(["vps", "root_password", "set", "1001", "--password", "-"], standardInput: "Sample7Password-Ok")
            .invocation.body?["password"]?.stringValue == "Sample7Password-Ok")
    }

    @Test func pathParameters() throws {
        let rule = try parse(["firewall", "rule", "delete", "4001", "--rule-id", "77", "--yes"])
        #expect(rule.invocation.command.name == "firewall.rule.delete")
        #expect(rule.invocation.target == Target(.firewall, 4001))
        #expect(rule.invocation.parameters == ["ruleId": "77"])
        #expect(rule.invocation.path == "/v1/firewalls/4001/rules/77")
        #expect(rule.yes)

        let docker = try parse(["vps", "docker", "stop", "1001", "--project-name=web_app-1"])
        #expect(docker.invocation.parameters == ["projectName": "web_app-1"])
        #expect(docker.invocation.path == "/v1/vps/1001/docker/web_app-1/stop")

        let sync = try parse(["vps", "firewall", "sync", "1001", "--firewall-id", "4001"])
        #expect(sync.invocation.path == "/v1/vps/1001/firewalls/4001/sync")
    }

    @Test func theCallersOwnOptions() throws {
        let call = try parse(["vps", "restart", "1001", "--plan", "-o", "table", "--key", "k-1", "--timeout=30", "--no-wait"])
        #expect(call.plan)
        #expect(call.output == "table")
        #expect(call.key == "k-1")
        #expect(call.timeout == 30)
        #expect(!call.wait)

        let waiting = try parse(["vps", "restart", "1001", "--no-wait", "--wait", "--output=json", "--key=k-2", "-y"])
        #expect(waiting.wait)
        #expect(waiting.output == "json")
        #expect(waiting.key == "k-2")
        #expect(waiting.yes)

        #expect(try parse(["vps", "snapshot", "delete", "1001", "--yes"]).yes)
        #expect(try parse(["vps", "restart", "1001", "--emergency", "outage"]).emergency == "outage")
    }

    /// `--reason`: sent as the Vpsgate-Reason header; one the server would refuse is refused here, before anything is sent.
    @Test func aReason() throws {
        #expect(try parse(["vps", "restart", "1001", "--reason", "ticket OPS-42"]).reason == "ticket OPS-42")
        #expect(try parse(["vps", "restart", "1001", "--reason=why not"]).reason == "why not")
        #expect(try parse(["vps", "restart", "1001"]).reason == nil)
        #expect(refusal(["vps", "restart", "1001", "--reason", "a\nb"])?.contains("--reason") == true)
        #expect(refusal(["vps", "restart", "1001", "--reason", String(repeating: "x", count: 501)])?.contains("--reason") == true)
        #expect(refusal(["vps", "restart", "1001", "--reason"]) != nil)
    }

    @Test func anAccountCommandTakesNoID() throws {
        let call = try parse(["firewall", "create", "--name", "edge"])
        #expect(call.invocation.target == Target(.account, nil))
        #expect(call.invocation.path == "/v1/firewalls")
    }

    @Test func refusals() {
        #expect(refusal(["vps", "frobnicate", "1001"])?.hasPrefix("unknown command: vps frobnicate 1001") == true)
        #expect(refusal(["vps", "restart"])?.hasPrefix("vps.restart needs the VPS id first") == true)
        #expect(refusal(["vps", "restart", "web1"])?.hasPrefix("vps.restart needs the VPS id first") == true)
        #expect(refusal(["vps", "restart", "0"])?.hasPrefix("vps.restart needs the VPS id first") == true)
        #expect(refusal(["vps", "restart", "1001", "--frobnicate"]) == "unknown option --frobnicate for vps.restart: vps restart <VPS id>")
        #expect(refusal(["vps", "restart", "1001", "--key"]) == "--key needs a value")
        #expect(refusal(["vps", "restart", "1001", "--timeout", "soon"]) == "--timeout takes seconds")
        #expect(refusal(["vps", "hostname", "set", "1001", "--hostname"]) == "--hostname needs a value")
        #expect(refusal(["vps", "public-keys", "attach", "1001", "--ids", "1,x"]) == "--ids takes ids separated by commas")
    }

    /// A path parameter goes into the request's path: one that is not of its kind could name
    /// another route, so it is refused before anything is sent.
    @Test func aPathParameterOutsideItsPattern() {
        #expect(refusal(["vps", "docker", "stop", "1001", "--project-name", "../restart#"])
            == #"--project-name must be 3 to 64 letters, digits, dashes or underscores, not "../restart#""#)
        #expect(refusal(["firewall", "rule", "delete", "4001", "--rule-id", "../restart#"])
            == #"--rule-id must be a positive whole number, not "../restart#""#)
        #expect(refusal(["firewall", "rule", "delete", "4001", "--rule-id=0"]) == #"--rule-id must be a positive whole number, not "0""#)
    }
}

/// The words after a group's name (`vpsgatectl vps …`): a catalogue command, help or a read.
@Suite struct GroupTests {
    @Test func aCommandOfTheCatalogue() throws {
        guard case .command(let command, let rest) = try VPS.resolve(["restart", "1001", "--plan"]) else {
            Issue.record("not a command")
            return
        }
        #expect(command.name == "vps.restart")
        #expect(rest == ["1001", "--plan"])
    }

    @Test func reads() throws {
        guard case .read(let path, let output) = try VPS.resolve(["get", "1001", "-o", "table"]) else {
            Issue.record("not a read")
            return
        }
        #expect(path == "/v1/vps/1001")
        #expect(output == "table")
        guard case .read(let list, _) = try Firewall.resolve(["list"]) else {
            Issue.record("not a read")
            return
        }
        #expect(list == "/v1/firewalls")
    }

    /// A read Hostinger answers in pages takes `--page N`; another read, or a page that is not
    /// a whole number from 1, is not a read.
    @Test func pages() throws {
        guard case .read(let second, _) = try Firewall.resolve(["list", "--page", "2"]),
              case .read(let third, _) = try VPS.resolve(["actions", "--page", "3", "1001"]) else {
            Issue.record("not a read")
            return
        }
        #expect(second == "/v1/firewalls?page=2")
        #expect(third == "/v1/vps/1001/actions?page=3")
        #expect(VPS.read(["actions", "1001", "--page", "0"]) == nil)
        #expect(VPS.read(["actions", "1001", "--page"]) == nil)
        #expect(VPS.read(["get", "1001", "--page", "2"]) == nil)
    }

    @Test func operationAndBatchListsTakeALimitAndACursor() throws {
        #expect(throws: (any Error).self) { try Operations.List.parse(["--limit", "0"]) }
        #expect(throws: (any Error).self) { try Operations.List.parse(["--cursor", "../x"]) }
        #expect(throws: (any Error).self) { try Batches.List.parse(["--cursor", "0"]) }
        let list = try Operations.List.parse(["--limit", "5", "--cursor", "5f0c7a52-3c1e-4f43-9d67-0c8d1b8f2a10"])
        #expect(list.limit == 5 && list.cursor == "5f0c7a52-3c1e-4f43-9d67-0c8d1b8f2a10")
    }

    @Test func help() throws {
        guard case .help(let text) = try VPS.resolve(["restart", "--help"]) else {
            Issue.record("not help")
            return
        }
        #expect(text.hasPrefix("USAGE: vpsgatectl vps restart <VPS id>"))
        guard case .help(let group) = try VPS.resolve([]) else {
            Issue.record("not help")
            return
        }
        #expect(group.contains("  vps hostname set <VPS id> --hostname <fqdn>"))
    }

    @Test func anUnknownCommandIsRefused() {
        #expect(throws: ValidationError.self) { try VPS.resolve(["frobnicate", "1001"]) }
        #expect(throws: ValidationError.self) { try VPS.resolve(["get", "../1001"]) }
        do {
            _ = try Firewall.resolve(["frobnicate"])
        } catch {
            #expect("\(error)" == "unknown firewall command: frobnicate (see vpsgatectl firewall --help)")
        }
    }

    @Test func theRootCommandRefusesAnUnknownGroup() {
        #expect(throws: (any Error).self) { try VpsgateCtl.parseAsRoot(["frobnicate"]) }
        #expect(throws: (any Error).self) { try VpsgateCtl.parseAsRoot(["operations", "get", "../vps/1001/restart"]) }
    }

    @Test func theRootCommandFindsTheGroup() throws {
        let command = try VpsgateCtl.parseAsRoot(["vps", "restart", "1001", "--yes"])
        #expect((command as? VPS)?.words == ["restart", "1001", "--yes"])
    }
}
