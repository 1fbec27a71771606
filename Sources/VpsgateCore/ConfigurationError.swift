/// A setting that cannot be used, with what to do about it.
public struct ConfigurationError: Error, Equatable, CustomStringConvertible {
    /// The environment variable at fault.
    public var variable: String
    /// The value it had (never printed for secrets).
    public var value: String?
    /// What is wrong and what would be right.
    public var message: String

    public init(_ variable: String, _ value: String?, _ message: String) {
        self.variable = variable
        self.value = value
        self.message = message
    }

    public var description: String {
        if let value { "\(variable)=\(value): \(message)" } else { "\(variable): \(message)" }
    }
}
