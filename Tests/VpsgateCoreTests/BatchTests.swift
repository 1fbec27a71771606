import Testing
import VpsgateCore

/// What a batch request accepts (docs/design.md#the-shared-budget), and the budget's configuration.
@Suite struct BatchTests {
    func parse(_ text: String) -> Result<BatchRequest, FieldErrors> {
        BatchRequest.parse(try? JSONValue.parse(Array(text.utf8)))
    }

    func fields(_ text: String) -> [String] {
        guard case .failure(let errors) = parse(text) else { return [] }
        return errors.fields.map(\.field)
    }

    @Test func aBatchNamesAVPSCommandItsTargetsAndItsLimits() throws {
        let batch = try parse(#"{"command":"vps.firewall.sync","parameters":{"firewallId":4001},"vps":[1001,1002],"max_in_flight":5,"max_failures":1,"pause_seconds":2}"#).get()
        #expect(batch.command.name == "vps.firewall.sync" && batch.parameters == ["firewallId": "4001"])
        #expect(batch.targets == .ids([1001, 1002]) && batch.maxInFlight == 5 && batch.maxFailures == 1 && batch.pauseSeconds == 2)
        let all = try parse(#"{"command":"vps.restart","vps":"*"}"#).get()
        #expect(all.targets == .all && all.maxInFlight == 1 && all.maxFailures == 0 && all.pauseSeconds == 0)
    }

    @Test func whatABatchRefuses() {
        #expect(fields(#"{"vps":[1]}"#) == ["command"])
        #expect(fields(#"{"command":"vps.recreate","vps":[1]}"#) == ["command"])          // destroys data
        #expect(fields(#"{"command":"firewall.create","vps":[1]}"#) == ["command"])       // not a VPS command
        #expect(fields(#"{"command":"vps.restart","vps":[]}"#) == ["vps"])
        #expect(fields(#"{"command":"vps.restart","vps":[1,1]}"#) == ["vps"])
        #expect(fields(#"{"command":"vps.restart","vps":[0]}"#) == ["vps"])
        #expect(fields(#"{"command":"vps.restart","vps":"all"}"#) == ["vps"])
        #expect(fields(#"{"command":"vps.restart","vps":[1],"max_in_flight":0}"#) == ["max_in_flight"])
        #expect(fields(#"{"command":"vps.restart","vps":[1],"max_in_flight":51}"#) == ["max_in_flight"])
        #expect(fields(#"{"command":"vps.restart","vps":[1],"max_failures":-1}"#) == ["max_failures"])
        #expect(fields(#"{"command":"vps.restart","vps":[1],"pause_seconds":3601}"#) == ["pause_seconds"])
        #expect(fields(#"{"command":"vps.restart","vps":[1],"extra":1}"#) == ["extra"])
        #expect(fields(#"{"command":"vps.firewall.sync","vps":[1]}"#) == ["parameters"])   // firewallId is needed
        #expect(fields(#"{"command":"vps.restart","vps":[1],"parameters":{"firewallId":1}}"#) == ["parameters"])
        #expect(fields(#"{"command":"vps.restart","vps":[1],"body":[1]}"#) == ["body"])
        let many = "[" + (1...1001).map(String.init).joined(separator: ",") + "]"
        #expect(fields(#"{"command":"vps.restart","vps":"# + many + "}") == ["vps"])
    }

    @Test func aSecretInTheBodyIsNeverShown() throws {
        let batch = try parse(#"{"command":"vps.root_password.set","body":{"password":"Correct7Horse-Battery"},"vps":[1001]}"#).get()
        let shown = batch.shown(targets: [1001])
        #expect(shown["body"]?["password"]?.stringValue == Redaction.marker)
        #expect(shown["vps"] == .array([.number("1001")]))
        // A misspelled field may hold a secret too: kept by name only.
        let misspelled = try parse(#"{"command":"vps.root_password.set","body":{"passwrd":"Correct7Horse-Battery"},"vps":[1001]}"#).get()
        #expect(misspelled.shown(targets: [1001])["body"]?["passwrd"]?.stringValue == Redaction.undeclaredMarker)
    }

    @Test func theRateLimitIsRequestsPerUnit() {
        // The period over the limit, and 5 % more against the network's jitter.
        #expect(RateLimit(parsing: "60/min")?.intervalMicroseconds == 1_050_000)
        #expect(RateLimit(parsing: "2/s")?.intervalMicroseconds == 525_000)
        #expect(RateLimit(parsing: "3600/h")?.intervalMicroseconds == 1_050_000)
        for bad in ["60", "0/min", "60/day", "x/min", "60/min/s", "-1/s"] { #expect(RateLimit(parsing: bad) == nil, "\(bad)") }
    }
}
