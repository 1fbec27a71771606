import Testing
import VpsgateCore

@Suite struct JSONValueTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONValue.parse(#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "d\u00e9\n\ud83d\ude80"}} "#)
        #expect(value["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(value["b"]?["c"]?.stringValue == "dé\n🚀")
        #expect(value["a"]?.arrayValue?.first?.intValue == 1)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "+1", "\"\u{1}\"", "\"\\x\"", "{\"a\" 1}", "[1] x", "nul",
        "\"\\ud800\"", "{\"a\":1,\"a\":2}", "'a'", "NaN",
    ])
    func refusesMalformedDocuments(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func refusesInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xff, 0xfe, 0x22]) }
    }

    @Test func boundsNestingDepth() throws {
        let deep = String(repeating: "[", count: 33) + String(repeating: "]", count: 33)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
        let fine = String(repeating: "[", count: 32) + String(repeating: "]", count: 32)
        _ = try JSONValue.parse(fine)
    }

    @Test func canonicalFormSortsKeysAndDropsWhitespace() throws {
        let a = try JSONValue.parse(#"{"b": 1, "a": {"y": [1, 2], "x": null}}"#)
        let b = try JSONValue.parse(#"{"a":{"x":null,"y":[1,2]},"b":1}"#)
        #expect(a.text(sortedKeys: true) == #"{"a":{"x":null,"y":[1,2]},"b":1}"#)
        #expect(a.serialized(sortedKeys: true) == b.serialized(sortedKeys: true))
        #expect(a.text() == #"{"b":1,"a":{"y":[1,2],"x":null}}"#)
    }

    @Test func largeIntegersAreNotRounded() throws {
        let value = try JSONValue.parse("[9007199254740993, 99999999999999999999]")
        #expect(value.arrayValue?[0].intValue == 9_007_199_254_740_993)
        #expect(value.arrayValue?[1].intValue == nil)
    }
}

@Suite struct ValidatorsTests {
    @Test(arguments: ["example.com", "srv1.hstgr.cloud", "a-b.c-d.io", "x.example.com.", String(repeating: "a", count: 63) + ".com"])
    func acceptsFQDNs(_ name: String) { #expect(Validators.isFQDN(name)) }

    @Test(arguments: ["localhost", "-a.com", "a-.com", "a..com", "a b.com", "a_b.com", String(repeating: "a", count: 64) + ".com",
                      "1.2.3.4", "", ".", "exa mple.com"])
    func refusesOtherNames(_ name: String) { #expect(!Validators.isFQDN(name)) }

    @Test func recognisesIPAddresses() {
        for good in ["1.1.1.1", "255.255.255.255", "::1", "2606:4700:4700::1111", "fe80::1:2:3:4", "::ffff:192.0.2.1", "1:2:3:4:5:6:7:8"] {
            #expect(Validators.isIPAddress(good), "\(good)")
        }
        for bad in ["256.1.1.1", "1.1.1", "01.1.1.1", "dns.google", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::1", ""] {
            #expect(!Validators.isIPAddress(bad), "\(bad)")
        }
    }

    @Test func passwordRules() {
        #expect(Validators.passwordProblems("Correct-Horse7Battery").isEmpty)
        #expect(Validators.passwordProblems("Short1a").contains("must be at least 12 characters"))
        #expect(Validators.passwordProblems("alllowercase1234").contains("must contain an upper-case letter"))
        #expect(Validators.passwordProblems("ALLUPPERCASE1234").contains("must contain a lower-case letter"))
        #expect(Validators.passwordProblems("NoDigitsAnywhere").contains("must contain a digit"))
        #expect(Validators.passwordProblems("Password1234").contains("appears in a list of leaked passwords"))
    }

    @Test func timestampsAreRFC3339() {
        #expect(Timestamp.rfc3339(microseconds: 0) == "1970-01-01T00:00:00.000000Z")
        #expect(Timestamp.rfc3339(microseconds: 784_111_777_000_001) == "1994-11-06T08:49:37.000001Z")
        #expect(Timestamp.rfc3339Seconds(microseconds: 1_772_000_000_000_000) == "2026-02-25T06:13:20Z")
        #expect(Timestamp.rfc3339(microseconds: -1) == "1969-12-31T23:59:59.999999Z")
    }
}
