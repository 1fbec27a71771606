/// The value rules Hostinger enforces (docs/hostinger.md), shared by vpsgate's own
/// validation and the simulator's.
public enum Validators {
    /// A fully qualified domain name: 2+ labels, each 1–63 of `a-z 0-9 -` not starting or
    /// ending with `-`, 253 characters at most, and a top-level label that is not numeric.
    /// A Docker Compose project name as Hostinger takes it: 3 to 64 letters, digits, dashes
    /// or underscores (ASCII).
    public static func isProjectName(_ name: String) -> Bool {
        (3...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d || $0 == 0x5f }
    }

    public static func isFQDN(_ name: String) -> Bool {
        var text = Substring(name)
        if text.hasSuffix(".") { text = text.dropLast() }
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        for label in labels {
            guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-",
                label.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        return !labels.last!.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    /// A dotted-quad IPv4 address without leading zeros.
    public static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in
            guard (1...3).contains(part.count), part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                let value = Int(part), value <= 255
            else { return false }
            return part.count == 1 || part.first != "0"
        }
    }

    /// An IPv6 address in RFC 4291 text form (with `::` and an optional IPv4 tail).
    public static func isIPv6(_ text: String) -> Bool {
        guard text.utf8.count <= 45, !text.isEmpty else { return false }
        var groups = text.components(separatedByString: "::")
        guard groups.count <= 2 else { return false }
        let compressed = groups.count == 2
        var count = 0
        for (index, half) in groups.enumerated() where !half.isEmpty {
            let pieces = half.split(separator: ":", omittingEmptySubsequences: false)
            for (position, piece) in pieces.enumerated() {
                let isLast = index == groups.count - 1 && position == pieces.count - 1
                if isLast && piece.contains(".") {
                    guard isIPv4(String(piece)) else { return false }
                    count += 2
                    continue
                }
                guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit) else { return false }
                count += 1
            }
        }
        groups.removeAll()
        return compressed ? count <= 7 : count == 8
    }

    public static func isIPAddress(_ text: String) -> Bool { isIPv4(text) || isIPv6(text) }

    /// A few passwords from public leak lists, refused as Hostinger refuses leaked ones.
    public static let leakedPasswords: Set<String> = [
        "Password1234", "Password12345", "Qwerty123456", "Welcome12345", "Admin1234567", "Passw0rd1234",
    ]

    /// What is wrong with a password (empty when acceptable): at least `minimumLength`
    /// characters, one upper-case and one lower-case letter, one digit, not a leaked one.
    public static func passwordProblems(_ password: String, minimumLength: Int = 12) -> [String] {
        var problems: [String] = []
        if password.count < minimumLength { problems.append("must be at least \(minimumLength) characters") }
        if !password.contains(where: { $0.isUppercase }) { problems.append("must contain an upper-case letter") }
        if !password.contains(where: { $0.isLowercase }) { problems.append("must contain a lower-case letter") }
        if !password.contains(where: { $0.isASCII && $0.isNumber }) { problems.append("must contain a digit") }
        if leakedPasswords.contains(password) { problems.append("appears in a list of leaked passwords") }
        return problems
    }

    /// A firewall rule's port: `443`, `1024:2048` or `any`.
    public static func isPort(_ text: String) -> Bool {
        if text == "any" { return true }
        let bounds = text.split(separator: ":", omittingEmptySubsequences: false).map { part in
            !part.isEmpty && part.count <= 5 && part.allSatisfy { $0.isASCII && $0.isNumber } ? Int(part) : nil
        }
        guard (1...2).contains(bounds.count), let low = bounds.first ?? nil, let high = bounds.last ?? nil else { return false }
        return 1 <= low && low <= high && high <= 65_535
    }

    /// A firewall rule's source: an IPv4 or IPv6 address, an IPv4 or IPv6 CIDR block, or an
    /// IPv4 range `a-b`.
    public static func isNetworkSource(_ text: String) -> Bool {
        if isIPAddress(text) { return true }
        let range = text.split(separator: "-", omittingEmptySubsequences: false)
        if range.count == 2 { return range.allSatisfy { isIPv4(String($0)) } }
        let cidr = text.split(separator: "/", omittingEmptySubsequences: false)
        guard cidr.count == 2, cidr[1].count <= 3, let length = Int(cidr[1]) else { return false }
        let address = String(cidr[0])
        if isIPv4(address) { return (0...32).contains(length) }
        return isIPv6(address) && (0...128).contains(length)
    }

    static let sshKeyTypes: Set<Substring> = [
        "ssh-rsa", "ssh-ed25519", "ssh-dss", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
    ]

    /// `TYPE BASE64 [comment]` with a type OpenSSH knows, on one line, 16 KiB at most.
    public static func isSSHPublicKey(_ text: String) -> Bool {
        guard text.utf8.count <= 16_384, !text.contains(where: { $0.isNewline || $0 == "\u{0}" }) else { return false }
        let parts = text.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, sshKeyTypes.contains(parts[0]) else { return false }
        let data = parts[1]
        return data.count >= 16 && data.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+/=".contains($0)) }
    }

    /// A catalogue identifier (a plan's item id, a coupon): 1 to 100 of `A-Z a-z 0-9 . - _`.
    public static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 100 && text.utf8.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

extension String {
    /// Splits on a multi-character separator, keeping empty pieces.
    func components(separatedByString separator: String) -> [String] {
        var pieces: [String] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            pieces.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        pieces.append(String(rest))
        return pieces
    }
}
