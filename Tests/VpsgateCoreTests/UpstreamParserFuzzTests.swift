import Testing
import VpsgateCore

/// Every parser of what Hostinger (or anything in its place) sends is total: random and
/// extreme inputs give a value or nil, never a trap (docs/design.md#trust-boundaries). A trap here ends the
/// test process, which fails the run.
@Suite struct UpstreamParserFuzzTests {
    /// A small deterministic generator, so a failure can be reproduced from its seed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let extremes = [
        "", " ", "0", "-0", "-1", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
        "99999999999999999999999999", "1e309", "-1e309", "NaN", "1.5", "0x10", "\u{0}", "\u{FFFD}",
        "Sun, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 9223372036854775807 08:49:37 GMT",
        "Sun, 99999999999999999 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 99999999999999:49:37 GMT",
        "Sun, 06 Nov -9223372036854775808 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:9223372036854775807 GMT",
        "9999-99-99T99:99:99Z", "0000-00-00T00:00:00Z", "-999-01-01T00:00:00Z", "2026-11-29T17:42:00",
    ]

    static let jsonExtremes = [
        #"{"data":[{"id":9223372036854775807,"name":"x","state":"success","created_at":"9999-12-31T23:59:59Z"}],"meta":{"current_page":9223372036854775807,"per_page":9223372036854775807,"total":-9223372036854775808}}"#,
        #"{"data":[{"id":"1","state":1},{"id":1.5,"state":"sent"},{"id":-1,"state":"error","created_at":"x"}],"meta":{"current_page":0,"per_page":0,"total":0}}"#,
        #"{"data":{"id":1},"meta":[]}"#, #"{"data":null}"#, #"[]"#, #"null"#, #"{"data":[null,[],{},1,"s"]}"#,
        String(repeating: "[", count: 100_000), String(repeating: "{\"a\":", count: 10_000) + "1",
        #"{"message":"\ud800","correlation_id":"\u0000"}"#, #"{"errors":{"a":[1,null,{"b":2}]}}"#,
    ]

    func exercise(_ text: String) {
        _ = RetryAfter.milliseconds(text, nowSeconds: 1_795_000_000)
        _ = RetryAfter.milliseconds(text, nowSeconds: .max)
        _ = RetryAfter.milliseconds(text, nowSeconds: .min)
        _ = Timestamp.secondsSinceEpoch(text)
        guard let json = try? JSONValue.parse(Array(text.utf8)) else { return }
        _ = HostingerActionPage(json: json).map { page in page.reachesBack(to: .min) || page.reachesBack(to: .max) }
        _ = HostingerAction(json: json)
        for item in json["data"]?.arrayValue ?? [] { _ = HostingerAction(json: item)?.json }
        _ = json.intValue
        _ = json.doubleValue
        _ = json.serialized(sortedKeys: true)
    }

    @Test func extremeValuesNeverTrap() {
        for text in Self.extremes + Self.jsonExtremes { exercise(text) }
        for date in Self.extremes { exercise(#"{"data":[{"id":1,"name":"n","state":"sent","created_at":"\#(date)"}]}"#) }
    }

    @Test(arguments: [1, 2, 3, 4])
    func randomInputsNeverTrap(seed: UInt64) {
        var random = SplitMix(state: seed)
        let alphabet = Array(#"0123456789-:,. TZGMTSunNov{}[]":\/eE+ad"#.utf8) + [0, 0xFF, 0xC3, 0x80]
        for _ in 0..<3000 {
            let length = Int.random(in: 0...64, using: &random)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &random)! }
            exercise(String(decoding: bytes, as: UTF8.self))
            // Mutations of well-formed inputs reach deeper than noise.
            var valid = Array((Self.jsonExtremes.randomElement(using: &random)!).utf8.prefix(400))
            for _ in 0..<Int.random(in: 1...4, using: &random) where !valid.isEmpty {
                valid[Int.random(in: 0..<valid.count, using: &random)] = alphabet.randomElement(using: &random)!
            }
            exercise(String(decoding: valid, as: UTF8.self))
        }
    }
}
