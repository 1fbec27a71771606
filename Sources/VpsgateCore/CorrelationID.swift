/// The id that follows one request through nginx, vpsgate, Hostinger, the logs and the audit.
///
/// nginx passes `REQUEST_ID` (the client's `X-Request-ID` when it is well formed, else its own
/// `$request_id`). vpsgate checks it again and generates one when it is missing or malformed,
/// so a value that reaches logs, headers and SQL is always safe to print.
public struct CorrelationID: Hashable, Sendable, CustomStringConvertible {
    /// The validated value: 1 to 128 characters from `A-Z a-z 0-9 . _ : -`.
    public let value: String

    /// Accepts `raw` when it is well formed, otherwise generates a fresh id.
    public init(validating raw: String?) {
        if let raw, Self.isValid(raw) {
            value = raw
        } else {
            value = Self.generate()
        }
    }

    public var description: String { value }

    /// Whether `raw` matches `^[A-Za-z0-9._:-]{1,128}$`.
    public static func isValid(_ raw: String) -> Bool {
        let bytes = raw.utf8
        guard (1...128).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    /// 32 lower-case hex digits from the system's random generator, like nginx's `$request_id`.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return Hex.encode(high) + Hex.encode(low)
    }
}
