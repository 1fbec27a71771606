/// A value that must never be printed: its description is always `[REDACTED]`.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself; read it only where it is used.
    public let value: String
    public init(_ value: String) { self.value = value }
    public var description: String { "[REDACTED]" }
    public var debugDescription: String { "[REDACTED]" }
}
