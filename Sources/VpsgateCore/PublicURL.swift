/// A public base URL vpsgate writes into what it answers or sends (problem `type` URLs, the
/// console link of a webhook), parsed strictly: `https://HOST[:PORT][/PATH]`, absolute, with
/// no user information, query or fragment (vpsgate appends a path and a fragment itself).
public enum PublicURL {
    /// The URL without trailing slashes, or why it is refused.
    public static func validate(_ text: String) -> Result<String, ConfigurationProblem> {
        guard text.hasPrefix("https://") else {
            return .failure(ConfigurationProblem("must be an absolute https:// URL"))
        }
        guard !text.contains("@"), !text.contains("?"), !text.contains("#"), !text.contains("\\") else {
            return .failure(ConfigurationProblem("must hold no user, query or fragment"))
        }
        let rest = text.dropFirst(8)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        guard path.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "%" && $0 != "\"" && $0 != "<" && $0 != ">" }) else {
            return .failure(ConfigurationProblem("the path must be plain ASCII"))
        }
        guard UpstreamURL.host(of: authority) != nil else {
            return .failure(ConfigurationProblem("the host must be a name, an IPv4 or a bracketed IPv6 address, with an optional port"))
        }
        var url = text
        while url.hasSuffix("/") { url.removeLast() }
        return .success(url)
    }
}
