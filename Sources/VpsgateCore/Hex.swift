/// Lower-case hexadecimal encoding without Foundation.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Two hex digits per byte, in order.
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The 16 hex digits of `value`, most significant first.
    public static func encode(_ value: UInt64) -> String {
        encode((0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) })
    }
}
