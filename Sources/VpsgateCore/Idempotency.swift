import Crypto

/// The rules of the `Idempotency-Key` header (docs/design.md#idempotency).
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
    /// no whitespace). The fingerprint is an HMAC of these under vpsgate's secret key
    /// (`SecretKeyRing.fingerprints`): a password in a body is never stored, not even as a
    /// hash someone holding the database could test guesses against.
    public static func fingerprintParts(method: String, path: String, body: JSONValue?) -> [[UInt8]] {
        [Array(method.utf8), Array(path.utf8), (body ?? .null).serialized(sortedKeys: true)]
    }

    /// The unkeyed SHA-256 fingerprint that vpsgate stored before its fingerprints were
    /// keyed: only compared with keys stored then (a retry across the upgrade), never stored.
    public static func legacyFingerprint(method: String, path: String, body: JSONValue?) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(method.utf8))
        hasher.update(data: [0])
        hasher.update(data: Array(path.utf8))
        hasher.update(data: [0])
        hasher.update(data: (body ?? .null).serialized(sortedKeys: true))
        return Hex.encode(Array(hasher.finalize()))
    }
}

/// Replaces the values of secret fields by `"[REDACTED]"`, at any depth.
public enum Redaction {
    public static let marker = "[REDACTED]"
    /// Stands for the value of a field the command does not declare: its name is kept
    /// (the audit shows what was tried), its value never is.
    public static let undeclaredMarker = "[UNDECLARED]"

    /// What the audit may keep of a command's body (docs/design.md#trust-boundaries): declared fields with
    /// their values (secret ones as `[REDACTED]`), undeclared ones by name only, and a body
    /// that is not an object by its type only. Strings lose NUL characters, which
    /// PostgreSQL's `jsonb` cannot hold, so the row is always written.
    public static func auditable(_ body: JSONValue, declared: Set<String>, secrets: Set<String>, hashed: Set<String> = []) -> JSONValue {
        guard case .object(let members) = body else {
            return .object([("_body", .string(undeclaredMarker))])
        }
        return .object(members.map { member in
            if secrets.contains(member.key) { return (storable(member.key), .string(marker)) }
            if hashed.contains(member.key), let text = member.value.stringValue { return (member.key, .string(digest(text))) }
            guard declared.contains(member.key) else { return (storable(member.key), .string(undeclaredMarker)) }
            return (member.key, withoutNUL(member.value))
        })
    }

    private static func storable(_ text: String) -> String {
        guard text.unicodeScalars.contains("\u{0}") else { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars { scalars.append(scalar == "\u{0}" ? "\u{FFFD}" : scalar) }
        return String(scalars)
    }

    private static func withoutNUL(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): .string(storable(text))
        case .array(let items): .array(items.map(withoutNUL))
        case .object(let members): .object(members.map { (storable($0.key), withoutNUL($0.value)) })
        default: value
        }
    }

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

    /// `value` with every string member named in `fields`, at any depth, replaced by its
    /// SHA-256 (`sha256:<hex>`): what vpsgate keeps of a post-install script's content.
    public static func hashing(_ value: JSONValue, fields: Set<String>) -> JSONValue {
        guard !fields.isEmpty else { return value }
        switch value {
        case .object(let members):
            return .object(members.map { member in
                if fields.contains(member.key), let text = member.value.stringValue { return (member.key, .string(digest(text))) }
                return (member.key, hashing(member.value, fields: fields))
            })
        case .array(let items):
            return .array(items.map { hashing($0, fields: fields) })
        default:
            return value
        }
    }

    /// `sha256:<hex>` of the text's UTF-8 bytes.
    public static func digest(_ text: String) -> String {
        "sha256:" + Hex.encode(Array(SHA256.hash(data: Array(text.utf8))))
    }
}
