/// Everything `vpsgate` reads from its environment, read and checked in one place.
///
/// Each setting has a default that works for `scripts/run`; a value that cannot be used
/// stops start-up with a message naming the variable and what it expects.
public struct Configuration: Sendable, Equatable {
    /// `VPSGATE_LISTEN`: where nginx connects. Default `127.0.0.1:9000`.
    public var listen: ListenAddress
    /// `VPSGATE_SOCKET_MODE`: permissions of a unix socket (octal). Default `0660`.
    public var socketMode: Int
    /// `VPSGATE_SOCKET_GROUP`: group given to a unix socket, typically nginx's. Default none.
    public var socketGroup: String?
    /// `VPSGATE_WORKERS`: worker threads, each with its own FastCGI request and database
    /// connection. Must cover nginx's upstream connections to this instance. Default 16.
    public var workers: Int
    /// `VPSGATE_DATABASE_URL`: a libpq connection URI.
    public var databaseURL: String
    /// `VPSGATE_MAX_BODY_BYTES`: largest request body accepted; larger is 413. Default 65536.
    public var maxBodyBytes: Int
    /// `VPSGATE_SHUTDOWN_TIMEOUT`: seconds in-flight requests get after SIGTERM. Default 25.
    public var shutdownTimeoutSeconds: Int
    /// `VPSGATE_MIGRATIONS_DIR`: where the numbered SQL migrations are. Default `Migrations`.
    public var migrationsDirectory: String
    /// `VPSGATE_INSTANCE`: this instance's name in logs and audit. Default `<host>-<pid>`.
    public var instance: String?
    /// `VPSGATE_LOG_LEVEL`: trace, debug, info, notice, warning, error, critical. Default info.
    public var logLevel: String
    /// `VPSGATE_DEBUG_ROUTES=1`: serve `GET /__debug/sleep?ms=N`, a slow request for the
    /// shutdown tests. Off by default; never enable it in production.
    public var debugRoutes: Bool

    public static let defaultDatabaseURL = "postgresql://vpsgate@127.0.0.1:5432/vpsgate"

    /// Reads and validates the configuration from `environment`.
    public init(environment: [String: String]) throws(ConfigurationError) {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmed, !raw.isEmpty else { return nil }
            return raw
        }
        func integer(_ name: String, default fallback: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
            guard let raw = value(name) else { return fallback }
            guard let number = Int(raw), range.contains(number) else {
                throw ConfigurationError(name, raw, "expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return number
        }

        listen = try ListenAddress(parsing: value("VPSGATE_LISTEN") ?? "127.0.0.1:9000")
        if let raw = value("VPSGATE_SOCKET_MODE") {
            guard let mode = Int(raw, radix: 8), (0...0o777).contains(mode) else {
                throw ConfigurationError("VPSGATE_SOCKET_MODE", raw, "expected octal permissions such as 0660")
            }
            guard mode & 0o007 == 0 else {
                throw ConfigurationError("VPSGATE_SOCKET_MODE", raw, "other users must not reach the socket; use 0660 or 0600")
            }
            socketMode = mode
        } else {
            socketMode = 0o660
        }
        socketGroup = value("VPSGATE_SOCKET_GROUP")
        workers = try integer("VPSGATE_WORKERS", default: 16, in: 1...1024)
        maxBodyBytes = try integer("VPSGATE_MAX_BODY_BYTES", default: 65536, in: 1024...(16 << 20))
        shutdownTimeoutSeconds = try integer("VPSGATE_SHUTDOWN_TIMEOUT", default: 25, in: 1...3600)
        migrationsDirectory = value("VPSGATE_MIGRATIONS_DIR") ?? "Migrations"
        instance = value("VPSGATE_INSTANCE")

        let url = value("VPSGATE_DATABASE_URL") ?? Self.defaultDatabaseURL
        guard url.hasPrefix("postgresql://") || url.hasPrefix("postgres://") else {
            throw ConfigurationError("VPSGATE_DATABASE_URL", nil, "expected a URI such as postgresql://user@host:5432/dbname")
        }
        databaseURL = url

        let level = value("VPSGATE_LOG_LEVEL")?.lowercased() ?? "info"
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
            throw ConfigurationError("VPSGATE_LOG_LEVEL", level, "expected trace, debug, info, notice, warning, error or critical")
        }
        logLevel = level

        switch value("VPSGATE_DEBUG_ROUTES") {
        case nil, "0", "false": debugRoutes = false
        case "1", "true": debugRoutes = true
        case let other?: throw ConfigurationError("VPSGATE_DEBUG_ROUTES", other, "expected 1 or 0")
        }
    }
}

extension String {
    var trimmed: String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
