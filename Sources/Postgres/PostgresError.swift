/// A failed database call: what kind, the SQLSTATE when the server sent one, and a message.
///
/// `description` is for operators' logs only; responses never include it.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }
        /// No connection could be made (server down, refused, bad credentials).
        public static let connectionFailed = Code(name: "connection failed")
        /// The connection broke during a call; the statement may or may not have run.
        public static let connectionLost = Code(name: "connection lost")
        /// The server rejected the statement; see `sqlState`.
        public static let server = Code(name: "server error")
        /// A row value did not decode into the asked type.
        public static let decoding = Code(name: "decoding error")
        /// A connection string that libpq cannot parse.
        public static let invalidConnectionString = Code(name: "invalid connection string")
    }

    public var code: Code
    public var message: String
    public var sqlState: SQLState?

    public init(_ code: Code, _ message: String, sqlState: SQLState? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    /// The database is not reachable now: the caller may answer 503 and try again later.
    public var isUnavailable: Bool {
        code == .connectionFailed || code == .connectionLost || (sqlState?.meansServerUnavailable ?? false)
    }

    public var description: String {
        if let sqlState { "\(code) [\(sqlState.rawValue)]: \(message)" } else { "\(code): \(message)" }
    }
}

/// A five-character SQLSTATE; the ones vpsgate acts on are named, and mapped to behaviour here only.
public struct SQLState: RawRepresentable, Hashable, Sendable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let uniqueViolation = SQLState(rawValue: "23505")
    public static let foreignKeyViolation = SQLState(rawValue: "23503")
    public static let checkViolation = SQLState(rawValue: "23514")
    public static let serializationFailure = SQLState(rawValue: "40001")
    public static let deadlockDetected = SQLState(rawValue: "40P01")
    public static let lockNotAvailable = SQLState(rawValue: "55P03")
    public static let queryCanceled = SQLState(rawValue: "57014")
    public static let adminShutdown = SQLState(rawValue: "57P01")
    public static let crashShutdown = SQLState(rawValue: "57P02")
    public static let cannotConnectNow = SQLState(rawValue: "57P03")
    /// A write on a server that is (now) a standby: the session outlived a failover or
    /// switchover, or reached a demoted primary.
    public static let readOnlySQLTransaction = SQLState(rawValue: "25006")
    public static let undefinedTable = SQLState(rawValue: "42P01")
    public static let insufficientPrivilege = SQLState(rawValue: "42501")
    public static let raiseException = SQLState(rawValue: "P0001")

    /// Connection exceptions (class 08), server shutdown or start-up, and a write refused by
    /// a read-only server: the session must be dropped (libpq's `target_session_attrs`
    /// finds the primary on the next connect) and the request answered 503.
    public var meansServerUnavailable: Bool {
        rawValue.hasPrefix("08") || self == .adminShutdown || self == .crashShutdown || self == .cannotConnectNow
            || self == .readOnlySQLTransaction
    }

    /// Conflicts that succeed when the whole transaction is tried again.
    public var isRetryableConflict: Bool {
        self == .serializationFailure || self == .deadlockDetected
    }
}
