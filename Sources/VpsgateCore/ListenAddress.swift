/// Where `vpsgate serve` accepts FastCGI connections from nginx.
public enum ListenAddress: Equatable, Sendable, CustomStringConvertible {
    /// A unix socket at this path; the usual choice on one host.
    case unix(path: String)
    /// A TCP address; for nginx on another host, on a private address.
    case tcp(host: String, port: Int)

    /// Parses `unix:/path`, an absolute or `./`-relative path, or `host:port`.
    ///
    /// A TCP address must name its host: an empty host would listen on every interface,
    /// which vpsgate never does unless told so explicitly with `0.0.0.0:port`.
    public init(parsing text: String) throws(ConfigurationError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            guard !path.isEmpty else { throw ConfigurationError("VPSGATE_LISTEN", text, "a unix socket needs a path, e.g. unix:/run/vpsgate/vpsgate.sock") }
            self = .unix(path: path)
            return
        }
        if text.hasPrefix("/") || text.hasPrefix("./") {
            self = .unix(path: text)
            return
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw ConfigurationError("VPSGATE_LISTEN", text, "expected host:port or unix:/path")
        }
        let host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw ConfigurationError("VPSGATE_LISTEN", text, "the port must be a number from 1 to 65535")
        }
        guard !host.isEmpty else {
            throw ConfigurationError("VPSGATE_LISTEN", text, "name the host (127.0.0.1:\(port), or a private address); an empty host would listen on every interface")
        }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ UInt8($0) != nil }) else {
            throw ConfigurationError("VPSGATE_LISTEN", text, "the host must be an IPv4 address such as 127.0.0.1")
        }
        self = .tcp(host: host, port: port)
    }

    public var description: String {
        switch self {
        case .unix(let path): "unix:\(path)"
        case .tcp(let host, let port): "\(host):\(port)"
        }
    }
}
