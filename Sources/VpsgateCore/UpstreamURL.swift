/// Hostinger's base URL, parsed strictly: the bearer token goes wherever it points.
///
/// `https://HOST[:PORT][/PATH]`, or plain `http://` to a loopback address only (the local
/// simulator). No user information, query, fragment, or host characters outside
/// letters, digits, `.` and `-` (or a bracketed IPv6 address): prefixes such as
/// `http://127.0.0.1.evil.tld` or `http://127.0.0.1@evil.tld` are refused.
public enum UpstreamURL {
    /// The URL without trailing slashes, or why it is refused.
    public static func validate(_ text: String) -> Result<String, ConfigurationProblem> {
        let scheme: String
        let rest: Substring
        if text.hasPrefix("https://") {
            scheme = "https"
            rest = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            scheme = "http"
            rest = text.dropFirst(7)
        } else {
            return .failure(ConfigurationProblem("must be an https:// URL"))
        }
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard !text.contains("@"), !text.contains("?"), !text.contains("#"), !text.contains("\\") else {
            return .failure(ConfigurationProblem("must hold no user, query or fragment"))
        }
        guard path.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "%" }) else {
            return .failure(ConfigurationProblem("the path must be plain ASCII"))
        }
        guard let host = Self.host(of: authority) else {
            return .failure(ConfigurationProblem("the host must be a name, an IPv4 or a bracketed IPv6 address, with an optional port"))
        }
        guard scheme == "https" || ["127.0.0.1", "[::1]", "localhost"].contains(host) else {
            return .failure(ConfigurationProblem("plain http is allowed to a loopback address only (127.0.0.1, [::1], localhost)"))
        }
        var url = text
        while url.hasSuffix("/") { url.removeLast() }
        return .success(url)
    }

    /// The host of `host[:port]`, lower-cased, or nil when either part is malformed.
    static func host(of authority: Substring) -> String? {
        var host = authority
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            let port = authority[authority.index(after: colon)...]
            guard !port.isEmpty, port.count <= 5, port.allSatisfy(\.isASCIIDigit), let number = Int(port), (1...65535).contains(number)
            else { return nil }
            host = authority[..<colon]
        }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2,
                host.dropFirst().dropLast().allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." })
            else { return nil }
            return host.lowercased()
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard !host.isEmpty, host.count <= 253,
            labels.allSatisfy({ label in
                !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            })
        else { return nil }
        return host.lowercased()
    }
}

/// Why a configuration value is refused, in words for the operator.
public struct ConfigurationProblem: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
