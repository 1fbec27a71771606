import Crypto

/// The seal chain over the audit trail: each seal is an HMAC-SHA256, under vpsgate's secret
/// key, of the previous seal and the row's canonical content, so changing, removing or
/// slipping in a row breaks every seal from there on, and only a holder of the key can seal.
/// Seals written before the chain was keyed (no key id) are plain SHA-256 and still verify.
public enum AuditChain {
    /// The seal before the first row.
    public static let genesis = String(repeating: "0", count: 64)

    /// The keyed seal (64 hex digits) that follows `previous` for a row.
    public static func seal(previous: String, canonical: String, key: SecretKeyRing.Key) -> String {
        String(SecretKeyRing.mac(key, [Array(previous.utf8), Array(canonical.utf8)]).split(separator: ":")[1])
    }

    /// The unkeyed seal of rows sealed before the chain was keyed.
    public static func legacySeal(previous: String, canonical: String) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(previous.utf8))
        hasher.update(data: [0x0a])
        hasher.update(data: Array(canonical.utf8))
        return Hex.encode(Array(hasher.finalize()))
    }
}
