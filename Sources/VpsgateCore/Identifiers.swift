import Crypto

/// Random bytes from the system's generator, eight per draw (one system call each, not one
/// per byte).
public enum RandomBytes {
    public static func generate(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count + 7)
        while bytes.count < count {
            withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) }
        }
        bytes.removeLast(bytes.count - count)
        return bytes
    }
}

/// Random (version 4) UUIDs as lower-case text.
public enum UUIDv4 {
    public static func generate() -> String {
        var bytes = RandomBytes.generate(16)
        bytes[6] = bytes[6] & 0x0f | 0x40
        bytes[8] = bytes[8] & 0x3f | 0x80
        let hex = Array(Hex.encode(bytes))
        return String(hex[0..<8]) + "-" + String(hex[8..<12]) + "-" + String(hex[12..<16]) + "-"
            + String(hex[16..<20]) + "-" + String(hex[20..<32])
    }

    public static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        return parts.map(\.count) == [8, 4, 4, 4, 12] && parts.allSatisfy { $0.allSatisfy { $0.isHexDigit && !$0.isUppercase } }
    }
}

/// API tokens: random, shown once, stored as SHA-256.
public enum APIToken {
    /// `vpsg_` and 43 base64url characters (256 random bits).
    public static func generate() -> String {
        "vpsg_" + Base64URL.encode(RandomBytes.generate(32))
    }

    /// SHA-256: a token carries 256 random bits, so an unkeyed hash cannot be reversed.
    public static func hash(_ token: String) -> String { Hex.encode(Array(SHA256.hash(data: Array(token.utf8)))) }

    /// The bearer token of an `Authorization` header, when it looks like one of ours.
    public static func bearer(_ header: String?) -> String? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        let token = String(header.dropFirst("Bearer ".count))
        guard (8...200).contains(token.utf8.count), token.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else { return nil }
        return token
    }
}
