#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A system call that failed: which one, and the `errno` it reported.
public struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call, as `pthread_create`.
    public var function: String
    /// The error number: `errno` after the call, or what a pthread call returned.
    public var errno: Int32

    public init(_ function: String, errno: Int32) {
        self.function = function
        self.errno = errno
    }

    public var description: String {
        "\(function): \(String(cString: strerror(self.errno)))"
    }
}
