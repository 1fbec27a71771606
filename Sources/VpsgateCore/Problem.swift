/// An RFC 9457 problem, the body of every error vpsgate answers with.
///
/// The body is safe by construction: it holds only what the caller may see. Operator-only
/// detail (SQL errors, C library messages) goes to the log under the same correlation id.
public struct Problem: Sendable, Equatable {
    /// A stable, documented problem kind: the last part of the `type` URI.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let notFound = Code(rawValue: "not-found")
        public static let methodNotAllowed = Code(rawValue: "method-not-allowed")
        public static let payloadTooLarge = Code(rawValue: "payload-too-large")
        public static let notReady = Code(rawValue: "not-ready")
    }

    /// The prefix of every `type`: `urn:vpsgate:problem:<code>`.
    public static let typePrefix = "urn:vpsgate:problem:"

    public var code: Code
    public var title: String
    public var status: Int
    public var detail: String?
    /// The request path the problem is about.
    public var instance: String?
    /// Field ⇒ messages, for validation problems.
    public var errors: [(field: String, messages: [String])]

    public init(
        _ code: Code, status: Int, title: String, detail: String? = nil, instance: String? = nil,
        errors: [(field: String, messages: [String])] = []
    ) {
        self.code = code
        self.status = status
        self.title = title
        self.detail = detail
        self.instance = instance
        self.errors = errors
    }

    /// The `type` member: a URN naming `code`.
    public var type: String { Self.typePrefix + code.rawValue }

    /// The `application/problem+json` body, with the request's correlation id.
    public func json(correlationID: CorrelationID) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("type", type)
        writer.member("title", title)
        writer.member("status", status)
        if let detail { writer.member("detail", detail) }
        if let instance { writer.member("instance", instance) }
        writer.member("correlation_id", correlationID.value)
        if !errors.isEmpty {
            writer.key("errors")
            writer.beginObject()
            for (field, messages) in errors {
                writer.key(field)
                writer.beginArray()
                for message in messages { writer.string(message) }
                writer.endArray()
            }
            writer.endObject()
        }
        writer.endObject()
        return writer.bytes
    }

    public static func == (lhs: Problem, rhs: Problem) -> Bool {
        lhs.code == rhs.code && lhs.status == rhs.status && lhs.title == rhs.title
            && lhs.detail == rhs.detail && lhs.instance == rhs.instance
            && lhs.errors.map(\.field) == rhs.errors.map(\.field)
            && lhs.errors.map(\.messages) == rhs.errors.map(\.messages)
    }
}
