/// The seal chain over the audit trail: each seal is SHA-256 of the previous seal and the
/// row's canonical content, so changing, removing or slipping in a row breaks every seal
/// from there on.
public enum AuditChain {
    /// The seal before the first row.
    public static let genesis = String(repeating: "0", count: 64)

    public static func seal(previous: String, canonical: String) -> String {
        var hasher = SHA256()
        hasher.update(previous.utf8)
        hasher.update([0x0a])
        hasher.update(canonical.utf8)
        return Hex.encode(hasher.finalize())
    }
}
