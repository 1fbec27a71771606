import CLibPQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One libpq connection, owned by one thread.
///
/// It connects on first use and again on the first use after the connection broke (the
/// server restarted), re-preparing statements as they are needed. Calls block. Not
/// `Sendable`: a `PGconn` must never be used from two threads.
///
/// Behind a pooler in transaction mode (`pooled`), consecutive statements may run on
/// different server sessions, so the connection keeps no session state there: statements
/// are sent unnamed (`PQexecParams`) instead of prepared once, and no `options` startup
/// parameter is sent (PgBouncer refuses it).
public final class PostgresConnection {
    private let url: String
    private let applicationName: String
    /// Whether a transaction-mode pooler sits between this connection and PostgreSQL.
    public let pooled: Bool
    private var connection: OpaquePointer?
    /// Prepared statement name by SQL text, on the current connection.
    private var preparedStatements: [String: String] = [:]
    /// Told of each statement's SQL text (with `$n` placeholders, never the values) before
    /// it runs; the closure it returns, if any, is called when the statement ended, with its
    /// error (for tracing: one span per statement).
    public var statementObserver: ((_ sql: String) -> ((_ error: PostgresError?) -> Void)?)?

    /// A connection to `url` (a libpq URI), opened lazily; `pooled` when `url` names a
    /// pooler in transaction mode (see the type's notes).
    public init(url: String, applicationName: String = "vpsgate", pooled: Bool = false) {
        self.url = url
        self.applicationName = applicationName
        self.pooled = pooled
    }

    deinit {
        if let connection { PQfinish(connection) }
    }

    /// Whether `url` is a connection string libpq accepts; the parser's message when not.
    public static func validate(url: String) -> String? {
        var message: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(url, &message) else {
            defer { if let message { PQfreemem(message) } }
            return message.map { String(cString: $0).trimmingNewlines() } ?? "cannot parse the connection string"
        }
        PQconninfoFree(options)
        return nil
    }

    /// Connects now if not connected; throws `.connectionFailed` when the server cannot be reached.
    public func connect() throws(PostgresError) {
        if let connection, PQstatus(connection) == CONNECTION_OK, !Self.closedByServer(connection) { return }
        close()
        // Defaults first, so that the URL's own settings win; dbname holds the whole URL.
        // READ COMMITTED is pinned whatever the role's default: vpsgate's statements rely
        // on a fresh snapshot per statement (the busy check after its lock). A pooler takes
        // no `options`: there the server's default applies (READ COMMITTED unless changed),
        // and begin_command refuses any other level rather than run under it.
        let keywords = pooled ? ["connect_timeout", "application_name", "dbname"]
                              : ["connect_timeout", "application_name", "options", "dbname"]
        let values = pooled ? ["5", applicationName, url]
                            : ["5", applicationName, "-c default_transaction_isolation=read\\ committed", url]
        let opened = withCStrings(keywords) { keywordPointers in
            withCStrings(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let opened else { throw PostgresError(.connectionFailed, "out of memory") }
        guard PQstatus(opened) == CONNECTION_OK else {
            let message = Self.errorMessage(opened)
            PQfinish(opened)
            throw PostgresError(.connectionFailed, message)
        }
        PQsetNoticeProcessor(opened, { _, _ in }, nil)
        connection = opened
    }

    /// Closes the connection; the next call opens a new one.
    public func close() {
        if let connection { PQfinish(connection) }
        connection = nil
        preparedStatements.removeAll()
    }

    /// Runs one statement with bound parameters and returns its rows.
    ///
    /// With `retryOnStaleConnection`, a connection found broken by this call (the server
    /// restarted since the last one) is reopened and the statement sent once more: only
    /// for statements that are safe to repeat.
    @discardableResult
    public func query(_ query: PostgresQuery, retryOnStaleConnection: Bool = false) throws(PostgresError) -> PostgresRows {
        let ended = statementObserver?(query.sql)
        let wasConnected = connection != nil
        do {
            let rows: PostgresRows
            do {
                rows = try run(query)
            } catch where error.code == .connectionLost && wasConnected && retryOnStaleConnection {
                rows = try run(query)
            }
            ended?(nil)
            return rows
        } catch {
            ended?(error)
            throw error
        }
    }

    /// Runs SQL text that may hold several statements and no parameters (migrations).
    public func execute(script: String) throws(PostgresError) {
        try connect()
        let result = PQexec(connection, script)
        defer { PQclear(result) }
        _ = try check(result)
    }

    /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try query("BEGIN")
        do {
            let value = try body(self)
            try query("COMMIT")
            return value
        } catch {
            if connection != nil, PQtransactionStatus(connection) != PQTRANS_UNKNOWN {
                _ = try? query("ROLLBACK")
            }
            throw error
        }
    }

    // MARK: - Notifications (LISTEN/NOTIFY)

    /// One `NOTIFY` received.
    public struct Notification: Sendable, Equatable {
        public var channel: String
        public var payload: String
    }

    /// Waits up to `timeoutMilliseconds` for notifications on a connection that ran `LISTEN`,
    /// and returns those that arrived (none when the time ran out). Throws `.connectionLost`
    /// when the server went away: the caller connects again and runs `LISTEN` again.
    ///
    /// Only for a connection kept for listening: on it, a readable socket means
    /// notifications, not the server's goodbye.
    public func notifications(timeoutMilliseconds: Int) throws(PostgresError) -> [Notification] {
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            close()
            throw PostgresError(.connectionLost, "not connected")
        }
        var received = Self.drainNotifications(connection)
        if !received.isEmpty { return received }
        var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(clamping: timeoutMilliseconds))
        if ready < 0 && errno == EINTR { return [] }
        guard ready > 0 else { return [] }
        guard PQconsumeInput(connection) == 1, PQstatus(connection) == CONNECTION_OK else {
            let message = Self.errorMessage(connection)
            close()
            throw PostgresError(.connectionLost, message)
        }
        received = Self.drainNotifications(connection)
        return received
    }

    private static func drainNotifications(_ connection: OpaquePointer) -> [Notification] {
        var received: [Notification] = []
        while let notice = PQnotifies(connection) {
            received.append(Notification(channel: String(cString: notice.pointee.relname),
                                         payload: String(cString: notice.pointee.extra)))
            PQfreemem(notice)
        }
        return received
    }

    // MARK: - Internals

    private func run(_ query: PostgresQuery) throws(PostgresError) -> PostgresRows {
        try connect()
        let result: OpaquePointer? = withOptionalCStrings(query.binds) { values in
            // A named statement lives in one server session; behind a transaction-mode
            // pooler the next call may land on another, so every statement goes unnamed.
            if query.prepared && !pooled {
                let name: String
                if let existing = preparedStatements[query.sql] {
                    name = existing
                } else {
                    name = "vpsgate_\(preparedStatements.count + 1)"
                    let prepared = PQprepare(connection, name, query.sql, Int32(query.binds.count), nil)
                    // A failed PREPARE is returned as the result, to be checked (and cleared) by the caller.
                    guard PQresultStatus(prepared) == PGRES_COMMAND_OK else { return prepared }
                    PQclear(prepared)
                    preparedStatements[query.sql] = name
                }
                return PQexecPrepared(connection, name, Int32(query.binds.count), values, nil, nil, 0)
            }
            return PQexecParams(connection, query.sql, Int32(query.binds.count), nil, values, nil, nil, 0)
        }
        defer { PQclear(result) }
        return try check(result)
    }

    /// The one place libpq's result status is turned into rows or an error.
    private func check(_ result: OpaquePointer?) throws(PostgresError) -> PostgresRows {
        let status = result.map(PQresultStatus) ?? PGRES_FATAL_ERROR
        switch status {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.rows(of: result!)
        default:
            if connection == nil || PQstatus(connection) != CONNECTION_OK {
                let message = connection.map(Self.errorMessage) ?? "no connection"
                close()
                throw PostgresError(.connectionLost, message)
            }
            let sqlState = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { SQLState(rawValue: String(cString: $0)) }
            let message = result.flatMap { PQresultErrorMessage($0) }.map { String(cString: $0).trimmingNewlines() } ?? "unknown error"
            if sqlState?.meansServerUnavailable == true { close() }
            throw PostgresError(.server, message.isEmpty ? Self.errorMessage(connection!) : message, sqlState: sqlState)
        }
    }

    private static func rows(of result: OpaquePointer) -> PostgresRows {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var values: [[String?]] = []
        values.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var fields: [String?] = []
            fields.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    fields.append(nil)
                } else {
                    fields.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            values.append(fields)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, values: values, affectedRows: affected)
    }

    /// Whether an idle connection was closed by the server (a restart, or
    /// `pg_terminate_backend`): its socket is readable although no query is pending. Checked
    /// before each statement, so that nothing is sent on a dead connection and a restart of
    /// PostgreSQL costs no failed request.
    private static func closedByServer(_ connection: OpaquePointer) -> Bool {
        var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        // An idle session receives nothing unasked (vpsgate uses no LISTEN): anything readable
        // is the server's goodbye (a FATAL notice, then end of file), so the session is done.
        return poll(&descriptor, 1, 0) > 0
    }

    private static func errorMessage(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection)).trimmingNewlines()
    }
}

// MARK: - C string helpers

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

private func withOptionalCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    if strings.isEmpty { return body(nil) }
    let copies = strings.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { $0.map { UnsafePointer($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension String {
    func trimmingNewlines() -> String {
        var text = Substring(self)
        while let last = text.last, last.isNewline || last == " " { text.removeLast() }
        return String(text)
    }
}
