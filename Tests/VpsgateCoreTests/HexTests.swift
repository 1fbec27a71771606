import Testing
import VpsgateCore

struct HexTests {
    @Test func encodesEachByteAsTwoLowerCaseDigits() {
        #expect(Hex.encode([] as [UInt8]) == "")
        #expect(Hex.encode([0x00, 0x09, 0x0a, 0x0f, 0x10, 0xa5, 0xff] as [UInt8]) == "00090a0f10a5ff")
        #expect(Hex.encode(Array(0...255) as [UInt8]).count == 512)
        // A sequence without contiguous storage takes the same path's result.
        #expect(Hex.encode((0..<4).lazy.map { UInt8($0 * 0x41) }) == "004182c3")
        #expect(Hex.encode(ArraySlice([0xde, 0xad, 0xbe, 0xef] as [UInt8]).dropFirst()) == "adbeef")
    }

    @Test func encodesAWordMostSignificantFirst() {
        #expect(Hex.encode(0x0123_4567_89ab_cdef as UInt64) == "0123456789abcdef")
        #expect(Hex.encode(1 as UInt64) == "0000000000000001")
    }

    @Test func decodesWhatItEncodes() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }
        #expect(Hex.decode(Hex.encode(bytes)) == bytes)
    }
}
