import Crypto

/// vpsgate's secret keys, kept outside the database (docs/design.md#trust-boundaries): idempotency
/// fingerprints are HMACs under them and the audit seal chain is keyed by them, so a copy
/// of the database alone can neither brute-force a password from a fingerprint nor
/// re-seal an altered trail.
///
/// The file `VPSGATE_SECRET_KEY_FILE` holds one key per line, `ID HEX` (an id of 1 to 32
/// letters, digits, `-` or `_`, then 64 hex digits: 32 random bytes); `#` starts a comment.
/// The first key signs; the others still verify, which is how a key is rotated: put the
/// new one first, keep the old one until nothing signed by it matters (24 h for
/// idempotency keys; for seals, as long as the audit trail is kept).
public struct SecretKeyRing: Sendable {
    public struct Key: Sendable {
        public let id: String
        let key: SymmetricKey
        /// For AES-GCM, derived from `key` (HKDF-SHA256): the HMAC key itself never encrypts.
        let sealing: SymmetricKey

        init(id: String, key: SymmetricKey) {
            self.id = id
            self.key = key
            self.sealing = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Array("vpsgate seal v1".utf8), outputByteCount: 32)
        }
    }

    /// The key that signs.
    public let current: Key
    /// Keys that still verify, newest first.
    public let previous: [Key]

    public static func parse(_ text: String) -> Result<SecretKeyRing, ConfigurationProblem> {
        var keys: [Key] = []
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.prefix { $0 != "#" }.trimmingCharacters(in: " \t\r")
            guard !line.isEmpty else { continue }
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 2, (1...32).contains(parts[0].count),
                parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            else {
                return .failure(ConfigurationProblem("line \(number + 1): expected `ID HEX` (an id of letters, digits, - or _)"))
            }
            guard let bytes = Hex.decode(parts[1]), bytes.count == 32 else {
                return .failure(ConfigurationProblem("line \(number + 1): the key must be 64 hex digits (32 random bytes)"))
            }
            guard !keys.contains(where: { $0.id == parts[0] }) else {
                return .failure(ConfigurationProblem("line \(number + 1): key id \(parts[0]) appears twice"))
            }
            keys.append(Key(id: String(parts[0]), key: SymmetricKey(data: bytes)))
        }
        guard let current = keys.first else {
            return .failure(ConfigurationProblem("holds no key; create one with `vpsgate key generate`"))
        }
        return .success(SecretKeyRing(current: current, previous: Array(keys.dropFirst())))
    }

    /// A new key line, `ID HEX`, for the key file.
    public static func generateLine(id: String) -> String {
        "\(id) \(Hex.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }))"
    }

    /// The key with `id`, current or previous.
    public func key(id: String) -> Key? {
        current.id == id ? current : previous.first { $0.id == id }
    }

    // MARK: - Uses

    /// `ID:HEX` of HMAC-SHA256 under `key` over `parts`, each followed by a NUL.
    public static func mac(_ key: Key, _ parts: [[UInt8]]) -> String {
        var hmac = HMAC<SHA256>(key: key.key)
        for part in parts {
            hmac.update(data: part)
            hmac.update(data: [0])
        }
        return key.id + ":" + Hex.encode(Array(hmac.finalize()))
    }

    /// Every key's fingerprint of the same request, the current key's first.
    public func fingerprints(method: String, path: String, body: JSONValue?) -> [String] {
        let parts = IdempotencyKey.fingerprintParts(method: method, path: path, body: body)
        return ([current] + previous).map { Self.mac($0, parts) }
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text.removeFirst() }
        while let last = text.last, set.contains(last) { text.removeLast() }
        return String(text)
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}

// MARK: - Sealing secrets kept for later

extension SecretKeyRing {
    /// `bytes` encrypted and authenticated under the current key (nonce, ciphertext and tag),
    /// with the key's id to open it with.
    public func seal(_ bytes: [UInt8]) throws -> (keyID: String, sealed: [UInt8]) {
        let box = try AES.GCM.seal(bytes, using: current.sealing)
        guard let combined = box.combined else { throw SealError() }
        return (current.id, Array(combined))
    }

    /// What `seal` sealed, or nil when the key is gone or the bytes were altered.
    public func open(_ sealed: [UInt8], keyID: String) -> [UInt8]? {
        guard let key = key(id: keyID), let box = try? AES.GCM.SealedBox(combined: sealed),
            let opened = try? AES.GCM.open(box, using: key.sealing)
        else { return nil }
        return Array(opened)
    }

    public struct SealError: Error {}
}

// MARK: - Authenticating what leads to a Hostinger call

extension SecretKeyRing {
    /// `bytes` sealed like `seal(_:)`, with `associated` authenticated but not encrypted:
    /// opening needs the same associated bytes, so a sealed value cannot be moved to another
    /// row whose associated data differs.
    public func seal(_ bytes: [UInt8], authenticating associated: [UInt8]) throws -> (keyID: String, sealed: [UInt8]) {
        let box = try AES.GCM.seal(bytes, using: current.sealing, authenticating: associated)
        guard let combined = box.combined else { throw SealError() }
        return (current.id, Array(combined))
    }

    /// What `seal(_:authenticating:)` sealed, or nil when the key is gone, the bytes were
    /// altered or `associated` is not what was sealed with them.
    public func open(_ sealed: [UInt8], keyID: String, authenticating associated: [UInt8]) -> [UInt8]? {
        guard let key = key(id: keyID), let box = try? AES.GCM.SealedBox(combined: sealed),
            let opened = try? AES.GCM.open(box, using: key.sealing, authenticating: associated)
        else { return nil }
        return Array(opened)
    }

    /// `ID:HEX` of `parts` under the current key (see `mac(_:_:)`).
    public func mac(_ parts: [[UInt8]]) -> String { Self.mac(current, parts) }

    /// Whether `mac` (`ID:HEX`) is the HMAC of `parts` under the key it names, compared in
    /// constant time.
    public func verify(mac: String, _ parts: [[UInt8]]) -> Bool {
        guard let colon = mac.firstIndex(of: ":"), let key = key(id: String(mac[..<colon])),
            let given = Hex.decode(mac[mac.index(after: colon)...])
        else { return false }
        // `mac(_:_:)` hashes each part followed by a NUL: the same bytes, joined.
        return HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: Self.joined(parts), using: key.key)
    }

    private static func joined(_ parts: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = []
        for part in parts {
            bytes += part
            bytes.append(0)
        }
        return bytes
    }
}
