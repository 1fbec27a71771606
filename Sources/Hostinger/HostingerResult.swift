import VpsgateCore

/// A Hostinger action: the record of asynchronous work on a VM.
public struct HostingerAction: Sendable, Equatable {
    public var id: Int
    public var name: String
    /// `created`, `sent`, `delayed`, `success` or `error`.
    public var state: String
    public var createdAt: String?
    public var updatedAt: String?

    /// `success` and `error` never change again.
    public var isTerminal: Bool { state == "success" || state == "error" }

    /// Reads an ActionResource; unknown members are ignored.
    public init?(json: JSONValue) {
        guard let id = json["id"]?.intValue, let state = json["state"]?.stringValue else { return nil }
        self.id = id
        self.name = json["name"]?.stringValue ?? ""
        self.state = state
        self.createdAt = json["created_at"]?.stringValue
        self.updatedAt = json["updated_at"]?.stringValue
    }
}

/// How one call to Hostinger ended, with everything the pipeline and the audit need.
public struct HostingerResult: Sendable {
    public var outcome: CallOutcome
    /// The last HTTP status, when there was a response.
    public var status: Int?
    /// The last response body when it was JSON.
    public var body: JSONValue?
    /// Hostinger's `message`, for errors.
    public var message: String?
    /// Hostinger's own `correlation_id`, for its support.
    public var hostingerCorrelationID: String?
    /// Laravel-style field errors of a 422.
    public var fieldErrors: [(field: String, messages: [String])]
    /// The action a mutation returned.
    public var action: HostingerAction?
    /// Requests actually sent.
    public var attempts: Int
    /// When it is worth trying again (throttled or breaker open), in milliseconds.
    public var retryAfterMilliseconds: Int?
    /// What went wrong on the wire, for the log (never shown to clients).
    public var transportError: String?

    /// Hostinger refused our credentials (401, or 403 for a token without scope).
    public var isAuthenticationProblem: Bool { outcome == .rejected && (status == 401 || status == 403) }
}
