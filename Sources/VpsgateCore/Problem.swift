/// An RFC 9457 problem, the body of every error vpsgate answers with.
///
/// The body is safe by construction: it holds only what the caller may see. Operator-only
/// detail (SQL errors, C library messages) goes to the log under the same correlation id.
public struct Problem: Sendable, Equatable {
    /// A stable, documented problem kind: the fragment of the `type` URL.
    public struct Code: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let notFound = Code(rawValue: "not-found")
        public static let methodNotAllowed = Code(rawValue: "method-not-allowed")
        public static let payloadTooLarge = Code(rawValue: "payload-too-large")
        public static let notReady = Code(rawValue: "not-ready")
        public static let unauthenticated = Code(rawValue: "unauthenticated")
        public static let forbidden = Code(rawValue: "forbidden")
        public static let malformedRequest = Code(rawValue: "malformed-request")
        public static let validationFailed = Code(rawValue: "validation-failed")
        public static let confirmationRequired = Code(rawValue: "confirmation-required")
        public static let idempotencyKeyMissing = Code(rawValue: "idempotency-key-missing")
        public static let idempotencyKeyInvalid = Code(rawValue: "idempotency-key-invalid")
        public static let idempotencyKeyReused = Code(rawValue: "idempotency-key-reused")
        public static let idempotencyKeyInUse = Code(rawValue: "idempotency-key-in-use")
        public static let vpsBusy = Code(rawValue: "vps-busy")
        public static let changeFrozen = Code(rawValue: "change-frozen")
        public static let selfApproval = Code(rawValue: "self-approval")
        public static let notAwaitingApproval = Code(rawValue: "not-awaiting-approval")
        public static let cursorExpired = Code(rawValue: "cursor-expired")
        public static let upstreamRejected = Code(rawValue: "upstream-rejected")
        public static let upstreamAuth = Code(rawValue: "upstream-auth")
        public static let upstreamError = Code(rawValue: "upstream-error")
        public static let unavailable = Code(rawValue: "unavailable")
        /// The shared Hostinger budget had no slot in time (docs/design.md#the-shared-budget); nothing was sent.
        public static let upstreamBudget = Code(rawValue: "upstream-budget")
        /// A batch decision its state does not allow (approve a running batch, resume a finished one).
        public static let batchState = Code(rawValue: "batch-state")
        /// The command's approval policy requires a `Vpsgate-Reason` header and the request had none.
        public static let reasonRequired = Code(rawValue: "reason-required")
        public static let internalError = Code(rawValue: "internal-error")
    }

    /// The prefix of the stable name `urn:vpsgate:problem:<code>`: what audit rows record as
    /// `problem_type` (the same whatever `VPSGATE_PROBLEM_BASE_URL` says, and what the database's
    /// own rows write), and what answers stored before problem types were URLs still carry.
    public static let typePrefix = "urn:vpsgate:problem:"

    public var code: Code
    public var title: String
    public var status: Int
    public var detail: String?
    /// The request path the problem is about.
    public var instance: String?
    /// Field ⇒ messages, for validation problems.
    public var errors: [(field: String, messages: [String])]
    /// Hostinger's own `message` and `correlation_id`, when Hostinger refused.
    public var upstream: (message: String?, correlationID: String?)?
    /// Extra members specific to a problem type (`operation_id` for vps-busy).
    public var extensions: [(key: String, value: String)] = []

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

    /// The `type` member: `<base>/problems#<code>`, the code's section of docs/problems.md as
    /// published at `base` (`VPSGATE_PROBLEM_BASE_URL`, validated without a trailing slash).
    public func type(base: String) -> String { Self.type(of: code, base: base) }

    /// `<base>/problems#<code>`.
    public static func type(of code: Code, base: String) -> String { base + "/problems#" + code.rawValue }

    /// The code a `type` names: the fragment of `<base>/problems#<code>`, or the last part of
    /// the older `urn:vpsgate:problem:<code>` (still in answers stored before, and replayed
    /// as stored). Nil for anything else.
    public static func code(ofType type: String) -> Code? {
        let tail: Substring
        if let hash = type.lastIndex(of: "#") {
            tail = type[type.index(after: hash)...]
        } else if type.hasPrefix(typePrefix) {
            tail = type.dropFirst(typePrefix.count)
        } else {
            return nil
        }
        guard !tail.isEmpty, tail.allSatisfy({ $0.isASCII && ($0.isLowercase || $0 == "-") }) else { return nil }
        return Code(rawValue: String(tail))
    }

    /// The `application/problem+json` body, with the request's correlation id; `type` is
    /// under `base` (`Configuration.problemBaseURL`).
    public func json(correlationID: CorrelationID, base: String) -> [UInt8] {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("type", type(base: base))
        writer.member("title", title)
        writer.member("status", status)
        if let detail { writer.member("detail", detail) }
        if let instance { writer.member("instance", instance) }
        writer.member("correlation_id", correlationID.value)
        for (key, value) in extensions { writer.member(key, value) }
        if let upstream {
            writer.key("upstream")
            writer.beginObject()
            writer.member("message", upstream.message)
            writer.member("correlation_id", upstream.correlationID)
            writer.endObject()
        }
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
