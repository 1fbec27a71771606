import ArgumentParser
import Testing
import VpsgateCore
@testable import VpsgateClient

/// How vpsgatectl prints answers (`OutputFormat`), against the exact text expected.
@Suite struct OutputTests {
    static let vps = try! JSONValue.parse("""
        {"data": [
          {"id": 1001, "hostname": "web1.example.com", "state": "running", "plan": "KVM 2", "cpus": 2, "memory": 8192,
           "ipv4": [{"id": 1, "address": "203.0.113.10", "ptr": null}], "template": {"id": 1, "name": "Ubuntu 24.04"}, "data_center_id": 17},
          {"id": 1002, "hostname": "db.example.com", "state": "stopped", "plan": "KVM 8", "cpus": 8, "memory": 32768,
           "ipv4": [], "template": {"id": 2, "name": "Debian 12"}, "data_center_id": 17}
        ]}
        """)
    static let operations = try! JSONValue.parse("""
        {"data": [{"id": "6f1c0a1e-7d7e-4b7e-9a52-2b8f1d7c9e01", "vps_id": 1001, "resource": {"type": "vps", "id": 1001},
                   "command": "vps.restart", "state": "succeeded", "hostinger_action": {"id": 7, "name": "restart", "state": "success"},
                   "requested_by": "alice", "correlation_id": "c-1", "created_at": "2026-12-04T10:00:00Z", "completed_at": null}],
         "next_before": null}
        """)

    func format(_ output: String, columns: String? = nil, header: Bool = true, terminal: Bool = false) -> OutputFormat {
        OutputFormat(output: output, columns: columns, header: header, terminal: terminal)!
    }

    @Test func aTableHasAHeaderAndAlignedDefaultColumns() throws {
        #expect(try format("table").render(Self.vps) == """
            ID     HOSTNAME           STATE     PLAN    IPV4.0.ADDRESS
            1001   web1.example.com   running   KVM 2   203.0.113.10
            1002   db.example.com     stopped   KVM 8   -
            """)
        #expect(try format("table").render(Self.operations) == """
            ID                                     COMMAND       STATE       VPS_ID   REQUESTED_BY   CREATED_AT
            6f1c0a1e-7d7e-4b7e-9a52-2b8f1d7c9e01   vps.restart   succeeded   1001     alice          2026-12-04T10:00:00Z
            """)
    }

    @Test func wideAddsColumns() throws {
        #expect(try format("wide").render(Self.vps) == """
            ID     HOSTNAME           STATE     PLAN    IPV4.0.ADDRESS   DATA_CENTER_ID   CPUS   MEMORY   TEMPLATE.NAME
            1001   web1.example.com   running   KVM 2   203.0.113.10     17               2      8192     Ubuntu 24.04
            1002   db.example.com     stopped   KVM 8   -                17               8      32768    Debian 12
            """)
    }

    @Test func columnsAreChosenByDottedPathsAndHeadersCanBeDropped() throws {
        #expect(try format("table", columns: "hostname,template.name,ipv4.0.address").render(Self.vps) == """
            HOSTNAME           TEMPLATE.NAME   IPV4.0.ADDRESS
            web1.example.com   Ubuntu 24.04    203.0.113.10
            db.example.com     Debian 12       -
            """)
        #expect(try format("table", columns: "id,state", header: false).render(Self.vps) == "1001   running\n1002   stopped")
    }

    @Test func anUnknownColumnIsAUsageErrorNamingTheKnownOnes() {
        #expect(throws: UsageError.self) { try format("table", columns: "id,hostnme").render(Self.vps) }
        do {
            _ = try format("table", columns: "id,hostnme").render(Self.vps)
        } catch {
            #expect(error.description.hasPrefix("unknown column hostnme: the rows have id, hostname, state, plan, cpus, memory, template.id"))
        }
        #expect(OutputFormat(output: "yaml", terminal: true) == nil)
    }

    @Test func jsonIsIndentedOnATerminalAndCompactOtherwise() throws {
        let value = try JSONValue.parse(#"{"id":1001,"tags":["a"],"empty":{},"hostname":"web1"}"#)
        #expect(try format("json").render(value) == #"{"id":1001,"tags":["a"],"empty":{},"hostname":"web1"}"#)
        #expect(try format("json", terminal: true).render(value) == """
            {
              "id": 1001,
              "tags": [
                "a"
              ],
              "empty": {},
              "hostname": "web1"
            }
            """)
    }

    @Test func jsonlIsOneObjectALine() throws {
        let lines = try format("jsonl").render(Self.vps).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(try JSONValue.parse(String(lines[1]))["id"]?.intValue == 1002)
        #expect(try format("jsonl").render(.object([("id", .number("1"))])) == #"{"id":1}"#)
    }

    @Test func theDefaultIsATableForAListOnATerminalAndJSONOtherwise() throws {
        #expect(try format("auto", terminal: true).render(Self.vps) == (try format("table").render(Self.vps)))
        #expect(try format("auto").render(Self.vps) == Self.vps.text())
        let one = try JSONValue.parse(#"{"id":1001}"#)
        #expect(try format("auto", terminal: true).render(one) == "{\n  \"id\": 1001\n}")
    }

    @Test func serverTextCannotDriveTheTerminal() throws {
        let hostile = JSONValue.array([.object([("id", .number("1")), ("name", .string("evil\u{1B}]0;pwned\u{07}\nnext\r\u{9B}2J\u{202E}x"))])])
        let table = try format("table").render(hostile)
        #expect(table == "ID   NAME\n1    evil\\x1b]0;pwned\\x07\\nnext\\r\\x9b2J\\u{202e}x")
        #expect(!table.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
        // JSON escapes control characters itself.
        #expect(!(try format("json", terminal: true).render(hostile)).unicodeScalars.contains { $0.value == 0x1B })
    }

    @Test func otherReadsFallBackToTheirScalarFields() throws {
        let value = try JSONValue.parse(#"[{"id": 3, "name": "eu", "location": "nl", "nested": {"a": 1}}]"#)
        #expect(try format("table").render(value) == "ID   NAME   LOCATION\n3    eu     nl")
        #expect(try format("wide").render(value) == "ID   NAME   LOCATION   NESTED.A\n3    eu     nl         1")
    }
}

/// Exit codes: an HTTP problem's status to the code scripts see.
@Suite struct ExitCodeTests {
    @Test func authenticationFailuresHaveTheirOwnCode() {
        #expect(Exit.code(forStatus: 401) == 6)
        #expect(Exit.code(forStatus: 403) == 6)
        #expect(Exit.code(forStatus: 404) == 1)
        #expect(Exit.code(forStatus: 422) == 1)
        #expect(Exit.code(forStatus: 409) == 1)
        #expect(Exit.code(forStatus: 503) == 3)
        #expect(Exit.code(forStatus: 500) == 3)
        // Distinct from every other outcome.
        #expect(Set([Exit.done, Exit.failed, Exit.unavailable, Exit.stillRunning, Exit.awaitingApproval, Exit.usage, Exit.authentication]).count == 7)
    }
}
