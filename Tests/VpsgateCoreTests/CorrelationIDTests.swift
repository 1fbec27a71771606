import Testing
import VpsgateCore

@Suite struct CorrelationIDTests {
    @Test(arguments: ["abc", "A-b_c.d:e", String(repeating: "x", count: 128), "0"])
    func acceptsWellFormedIDs(_ raw: String) {
        #expect(CorrelationID(validating: raw).value == raw)
    }

    @Test(arguments: ["", String(repeating: "x", count: 129), "a b", "a/b", "ä", "a\r\nX-Evil: 1", "a\"b", "a;b"])
    func replacesMalformedIDs(_ raw: String) {
        let id = CorrelationID(validating: raw)
        #expect(id.value != raw)
        #expect(CorrelationID.isValid(id.value))
        #expect(id.value.count == 32)
    }

    @Test func generatesDistinctHexIDsWhenAbsent() {
        let first = CorrelationID(validating: nil).value
        let second = CorrelationID(validating: nil).value
        #expect(first != second)
        #expect(first.allSatisfy { $0.isHexDigit && !$0.isUppercase })
    }
}
