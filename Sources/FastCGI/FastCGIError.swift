#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failure of the FastCGI server: what was attempted and the system's reason.
public struct FastCGIError: Error, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        public static let invalidAddress = Code(name: "invalid address")
        public static let addressInUse = Code(name: "address in use")
        public static let socket = Code(name: "socket error")
        public static let library = Code(name: "libfcgi error")
        public static let thread = Code(name: "thread error")
    }

    public var code: Code
    public var message: String
    /// The `errno` value, when a system call failed.
    public var systemError: Int32?

    init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.systemError = errno
    }

    public var description: String {
        if let systemError {
            return "\(code): \(message): \(String(cString: strerror(systemError)))"
        }
        return "\(code): \(message)"
    }
}
