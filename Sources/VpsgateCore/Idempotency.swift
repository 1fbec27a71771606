/// The rules of the `Idempotency-Key` header (SPEC section 6).
public enum IdempotencyKey {
    public enum Problem: Error, Equatable, Sendable {
        case missing
        case invalid
    }

    /// The key from the header: 8–255 visible ASCII characters other than `"` and `\`, bare
    /// or as a structured-field string (`"…"`).
    public static func parse(_ header: String?) -> Result<String, Problem> {
        guard let header, !header.isEmpty else { return .failure(.missing) }
        var key = Substring(header)
        if key.count >= 2, key.first == "\"", key.last == "\"" {
            key = key.dropFirst().dropLast()
        }
        // A quote or backslash left is a malformed structured-field string, not a key.
        if key.contains("\"") || key.contains("\\") { return .failure(.invalid) }
        guard (8...255).contains(key.utf8.count), key.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else {
            return .failure(.invalid)
        }
        return .success(String(key))
    }

    /// What makes two requests "the same": method, path and the canonical body (keys sorted,
    /// no whitespace). Secret values enter only through this hash, never stored as such.
    public static func fingerprint(method: String, path: String, body: JSONValue?) -> String {
        var hasher = SHA256()
        hasher.update(method.utf8)
        hasher.update([0])
        hasher.update(path.utf8)
        hasher.update([0])
        hasher.update((body ?? .null).serialized(sortedKeys: true))
        return Hex.encode(hasher.finalize())
    }
}

/// Replaces the values of secret fields by `"[REDACTED]"`, at any depth.
public enum Redaction {
    public static let marker = "[REDACTED]"

    public static func redact(_ value: JSONValue, secrets: Set<String>) -> JSONValue {
        switch value {
        case .object(let members):
            return .object(members.map { member in
                secrets.contains(member.key) ? (member.key, .string(marker)) : (member.key, redact(member.value, secrets: secrets))
            })
        case .array(let items):
            return .array(items.map { redact($0, secrets: secrets) })
        default:
            return value
        }
    }
}
