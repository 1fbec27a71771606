#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Name resolution, wrapped once: the system resolver (getaddrinfo), so `/etc/hosts` and
/// the configured DNS apply as they do for every other program on the host.
public enum AddressResolver {
    /// The distinct addresses `host` resolves to, IPv4 (4 bytes) and IPv6 (16 bytes), in the
    /// resolver's order; the resolver's message when it cannot.
    public static func resolve(_ host: String) -> Result<[[UInt8]], ResolveError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else { return .failure(ResolveError(message: String(cString: gai_strerror(status)))) }
        defer { freeaddrinfo(list) }
        var addresses: [[UInt8]] = []
        var cursor = list
        while let entry = cursor {
            if let address = entry.pointee.ai_addr {
                var bytes: [UInt8]?
                switch Int32(address.pointee.sa_family) {
                case AF_INET:
                    bytes = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin_addr) { Array($0) }
                    }
                case AF_INET6:
                    bytes = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        withUnsafeBytes(of: pointer.pointee.sin6_addr) { Array($0) }
                    }
                default: break
                }
                if let bytes, !addresses.contains(bytes) { addresses.append(bytes) }
            }
            cursor = entry.pointee.ai_next
        }
        return .success(addresses)
    }

    public struct ResolveError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }
}
