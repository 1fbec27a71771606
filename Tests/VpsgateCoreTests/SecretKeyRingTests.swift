import Testing
import VpsgateCore

@Suite struct SecretKeyRingTests {
    /// The bytes 0…31 as a key line.
    static let k1 = "k1 " + Hex.encode(Array(0..<32) as [UInt8])
    static let k0 = "k0 " + String(repeating: "ab", count: 32)

    func ring(_ text: String) throws -> SecretKeyRing { try SecretKeyRing.parse(text).get() }

    @Test func theFirstKeySignsAndTheOthersStillVerify() throws {
        let keys = try ring("# rotated on 2026-11-29\n\(Self.k1)\n\n\(Self.k0)  # the old one\n")
        #expect(keys.current.id == "k1")
        #expect(keys.previous.map(\.id) == ["k0"])
        #expect(keys.key(id: "k0")?.id == "k0" && keys.key(id: "k9") == nil)
    }

    @Test(arguments: [
        "", "# only a comment", "k1", "k1 abc", "k1 " + String(repeating: "zz", count: 32), "k 1 " + String(repeating: "00", count: 32),
        "k1 " + String(repeating: "00", count: 31), "bad/id " + String(repeating: "00", count: 32),
        "k1 " + String(repeating: "00", count: 32) + "\nk1 " + String(repeating: "11", count: 32),
    ])
    func refusesFilesThatAreNotKeys(text: String) {
        #expect(throws: ConfigurationProblem.self) { try SecretKeyRing.parse(text).get() }
    }

    @Test func generatedLinesParse() throws {
        let line = SecretKeyRing.generateLine(id: "k20261129")
        #expect(try ring(line).current.id == "k20261129")
        #expect(SecretKeyRing.generateLine(id: "a") != SecretKeyRing.generateLine(id: "a"))
    }

    /// HMAC-SHA256 under the key, over method, path and canonical body, each NUL-terminated;
    /// the value was computed independently (Python's hmac).
    @Test func fingerprintsAreKeyedAndIgnoreKeyOrderAndWhitespaceButNotValues() throws {
        let keys = try ring("\(Self.k1)\n\(Self.k0)")
        func fingerprints(_ method: String, _ body: String) throws -> [String] {
            keys.fingerprints(method: method, path: "/v1/vps/1/hostname", body: try JSONValue.parse(body))
        }
        let a = try fingerprints("PUT", #"{"a":1,"b":"x"}"#)
        #expect(a[0] == "k1:e17ee0b8d9195e5ad388ed2a2bf04d6ce5e71917c637feb13ea9cef6e09f4c19")
        #expect(a.count == 2 && a[1].hasPrefix("k0:") && a[1] != a[0])
        #expect(try fingerprints("PUT", #"{ "b" : "x", "a" : 1 }"#) == a)
        #expect(try fingerprints("PUT", #"{"a":1,"b":"y"}"#)[0] != a[0])
        #expect(try fingerprints("POST", #"{"a":1,"b":"x"}"#)[0] != a[0])
        // Without the key, the stored value says nothing: the unkeyed digest is another value.
        let legacy = IdempotencyKey.legacyFingerprint(method: "PUT", path: "/v1/vps/1/hostname", body: try JSONValue.parse(#"{"a":1,"b":"x"}"#))
        #expect(!a.contains { $0.hasSuffix(legacy) })
    }

    @Test func sealsAreKeyedAndLegacySealsStillVerify() throws {
        let keys = try ring("\(Self.k1)\n\(Self.k0)")
        let keyed = AuditChain.seal(previous: AuditChain.genesis, canonical: #"[1,"x"]"#, key: keys.current)
        #expect(keyed == "ab2ade543832b2543e6866f29e3e5ba610b53ab33f32784fbdd82423558f6607")
        #expect(AuditChain.seal(previous: AuditChain.genesis, canonical: #"[1,"x"]"#, key: keys.previous[0]) != keyed)
        #expect(AuditChain.legacySeal(previous: AuditChain.genesis, canonical: #"[1,"x"]"#)
            == "28d096fd798e6e34308ea6277977b511d9206400452b421f03a0dcd2a3dc69d7")
    }

    @Test func hexDecodesWhatItEncodesAndNothingElse() {
        let bytes: [UInt8] = [0, 1, 0x7f, 0x80, 0xff]
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
        #expect(Hex.decode("ABcd") == [0xab, 0xcd])
        for bad in ["a", "0g", "zz", "0 "] { #expect(Hex.decode(bad) == nil) }
    }
}
