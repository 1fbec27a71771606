/// Everything `vpsgate` reads from its environment, read and checked in one place.
///
/// Each setting has a default that works for `scripts/run`; a value that cannot be used
/// stops start-up with a message naming the variable and what it expects.
public struct Configuration: Sendable, Equatable {
    /// `VPSGATE_LISTEN`: where nginx connects. Default `unix:/run/vpsgate/vpsgate.sock` (a
    /// TCP listener also needs `VPSGATE_ALLOWED_PEERS`).
    public var listen: ListenAddress
    /// `VPSGATE_SOCKET_MODE`: permissions of a unix socket (octal). Default `0660`.
    public var socketMode: Int
    /// `VPSGATE_SOCKET_GROUP`: group given to a unix socket, typically nginx's. Default none.
    public var socketGroup: String?
    /// `VPSGATE_WORKERS`: worker threads, each with its own FastCGI request and database
    /// connection. Must cover nginx's upstream connections to this instance. Default 16.
    public var workers: Int
    /// `VPSGATE_DATABASE_URL`: a libpq connection URI; several hosts with
    /// `target_session_attrs=read-write` follow a failover.
    public var databaseURL: String
    /// `VPSGATE_DATABASE_POOL_MODE`: `session` (the default: `VPSGATE_DATABASE_URL` reaches
    /// PostgreSQL itself, or a pooler in session mode) or `transaction` (it reaches a pooler
    /// in transaction mode, such as PgBouncer's `pool_mode = transaction`: statements are
    /// sent unnamed and no session state is kept).
    public var databasePoolMode: DatabasePoolMode
    /// `VPSGATE_LISTEN_DATABASE_URL`: the event listener's connection, which holds a
    /// `LISTEN` and so must reach PostgreSQL directly (or a session-mode pooler). Default:
    /// `VPSGATE_DATABASE_URL`; required (set explicitly) in transaction pool mode.
    public var listenDatabaseURL: String
    /// `VPSGATE_MAX_BODY_BYTES`: largest request body accepted; larger is 413. Default 65536.
    public var maxBodyBytes: Int
    /// `VPSGATE_SHUTDOWN_TIMEOUT`: seconds in-flight requests get after SIGTERM. Default 25.
    public var shutdownTimeoutSeconds: Int
    /// `VPSGATE_MIGRATIONS_DIR`: where the numbered SQL migrations are. Default `Migrations`.
    public var migrationsDirectory: String
    /// `VPSGATE_DATABASE_DIR`: where the functions, triggers and views are (`ORDER` and the
    /// files it lists). Default `Database` beside the migrations directory.
    public var databaseDirectory: String
    /// `VPSGATE_INSTANCE`: this instance's name in logs and audit. Default `<host>-<pid>`.
    public var instance: String?
    /// `VPSGATE_LOG_LEVEL`: trace, debug, info, notice, warning, error, critical. Default info.
    public var logLevel: String
    /// `VPSGATE_LOG_FORMAT`: `json` (one object per line, the default) or `text` (for a terminal).
    public var logFormat: String
    /// `VPSGATE_DEBUG_ROUTES=1`: serve `GET /v1/__debug/params` (the parameters nginx sent,
    /// credentials redacted), `GET /__debug/sleep?ms=N` (a slow request for the
    /// shutdown tests) and `GET /__debug/insert` (the benchmark's durable-insert floor, into
    /// a table the benchmark creates). Off by default; never enable it in production.
    public var debugRoutes: Bool

    /// `VPSGATE_MIGRATION_DATABASE_URL`: the role that owns the schema, for `vpsgate migrate`.
    /// Default: `VPSGATE_DATABASE_URL`.
    public var migrationDatabaseURL: String
    /// `VPSGATE_BUSY_BOUND`: seconds after which a non-terminal operation stops blocking its VPS. Default 900.
    public var busyBoundSeconds: Int
    /// `VPSGATE_TOKEN_CACHE_MS`: how long a worker reuses a token check's positive answer
    /// (0: every request asks the database). The revocation delay: a revoked or expired
    /// token keeps working for at most this long on a worker that checked it just before.
    public var tokenCacheMilliseconds: Int
    /// `VPSGATE_REFRESH_INTERVAL_MS`: a status read refreshes a non-terminal operation from
    /// Hostinger at most this often. Default 3000.
    public var refreshIntervalMilliseconds: Int
    /// `VPSGATE_ALLOWED_PEERS`: the networks a TCP listener accepts FastCGI connections from
    /// (comma-separated `a.b.c.d[/n]`); required with a TCP `VPSGATE_LISTEN`, refused with a
    /// unix socket (whose file mode and group decide who connects).
    public var allowedPeers: [IPv4Network]
    /// `VPSGATE_READ_TIMEOUT_MS` (10000): how long a FastCGI connection may stay silent
    /// while vpsgate reads from it or waits to write to it; then it is closed.
    public var readTimeoutMilliseconds: Int
    /// `VPSGATE_SECRET_KEY_FILE`: vpsgate's secret keys (`SecretKeyRing`), outside the
    /// database. Required by `serve` and `audit`; no default.
    public var secretKeyFile: String?
    /// `VPSGATE_ADMIN_DATABASE_URL`: the admin CLI's connection, as the `vpsgate_admin` role
    /// (the only role that may change grants and tokens). Never set on serving hosts.
    public var adminDatabaseURL: String?
    /// Hostinger: `HOSTINGER_API_URL` (default `https://developers.hostinger.com`).
    public var hostingerURL: String
    /// `HOSTINGER_API_TOKEN`, or the path in `HOSTINGER_API_TOKEN_FILE` (read at start-up).
    public var hostingerToken: TokenSource?
    /// `HOSTINGER_CA_FILE`: PEM bundle for Hostinger's certificate; the system store by default.
    public var hostingerCAFile: String?
    /// `HOSTINGER_CONNECT_TIMEOUT_MS` (2000), `HOSTINGER_ATTEMPT_TIMEOUT_MS` (8000),
    /// `HOSTINGER_DEADLINE_MS` (20000: well inside nginx's 60 s fastcgi_read_timeout).
    public var hostingerConnectTimeoutMilliseconds: Int
    public var hostingerAttemptTimeoutMilliseconds: Int
    public var hostingerDeadlineMilliseconds: Int
    /// `HOSTINGER_BREAKER_FAILURES` (5) and `HOSTINGER_BREAKER_COOLDOWN_MS` (10000).
    public var breakerFailures: Int
    public var breakerCoolDownMilliseconds: Int

    /// The reconciler: `VPSGATE_RECONCILER` (1; 0 turns it off in this instance),
    /// `VPSGATE_RECONCILE_INTERVAL_MS` (500) at most between looks for work (less when an
    /// open operation is due sooner),
    /// `VPSGATE_RECONCILE_GRACE_MS` (the Hostinger deadline + 5 s) before an `accepted`
    /// operation is presumed orphaned by its instance, `VPSGATE_SETTLE_WINDOW_MS` (30000)
    /// after dispatch before an action that is absent from Hostinger's list counts as never
    /// applied, `VPSGATE_DRIFT_SCAN_INTERVAL_MS` (15000) between scans for actions no
    /// operation caused.
    public var reconcilerEnabled: Bool
    public var reconcileIntervalMilliseconds: Int
    public var reconcileGraceMilliseconds: Int
    public var settleWindowMilliseconds: Int
    public var driftScanIntervalMilliseconds: Int

    /// Background upkeep: `VPSGATE_SEAL_INTERVAL_MS` (5000) and `VPSGATE_SEAL_HORIZON_MS`
    /// (15000: rows are sealed once this old), `VPSGATE_IDEMPOTENCY_TTL` (24h after
    /// completion, then the key is purged and may be used afresh).
    public var sealIntervalMilliseconds: Int
    public var sealHorizonMilliseconds: Int
    public var idempotencyTTLSeconds: Int

    // Completion push (docs/design.md#completion-push).
    /// Requests that may wait at once (`?wait=`) on this instance; past it a wait answers at once.
    public var maxWaiters: Int
    /// How long events are kept for the feed.
    public var eventRetentionSeconds: Int
    /// Threads sending webhooks on this instance (0: this instance sends none).
    public var webhookSenders: Int
    public var webhookTimeoutMilliseconds: Int
    public var webhookRetrySchedule: WebhookRetrySchedule
    /// A delivery still failing this long after its first attempt is `failed`.
    public var webhookGiveUpSeconds: Int
    /// Networks webhooks may reach although they are not public (tests: loopback).
    public var webhookAllowNetworks: [IPNetwork]
    /// CA bundle for receivers' certificates (default: the system's).
    public var webhookCAFile: String?

    // Fleets and the upstream budget (docs/design.md#the-shared-budget).
    /// `HOSTINGER_RATE_LIMIT` (`60/min`, `2/s`, `3600/h`): the spacing between calls to
    /// Hostinger, shared by every instance (nil: no limit; a 429 still pauses every instance).
    public var hostingerRateLimit: RateLimit?
    /// `VPSGATE_BUDGET_WAIT_MS`: how long a command may wait for a slot before 503 upstream-budget.
    public var budgetWaitMilliseconds: Int
    /// `VPSGATE_READ_CACHE_MS`: how long a read from Hostinger is served again (0: never).
    public var readCacheMilliseconds: Int
    /// `VPSGATE_BUDGET_MAX_PAUSE`: the longest a 429 pauses every instance, whatever its
    /// Retry-After says (one answer must not stop the fleet for a day; `vpsgate budget
    /// resume` lifts a pause sooner).
    public var budgetMaxPauseSeconds: Int
    /// The most `VPSGATE_BUDGET_MAX_PAUSE` may be; the database caps every pause at it too.
    public static let budgetMaxPauseCeilingSeconds = 3600
    /// `VPSGATE_PROBLEM_BASE_URL`: where docs/problems.md is published; a problem's `type` is
    /// `<base>/problems#<code>` (default `https://vpsgate.dev/docs`).
    public var problemBaseURL: String
    /// The default of `VPSGATE_PROBLEM_BASE_URL`.
    public static let defaultProblemBaseURL = "https://vpsgate.dev/docs"
    /// `VPSGATE_CONSOLE_URL`: the console's address (`https://gate.example.com/console`);
    /// when set, a webhook about an operation carries `console_url`, its page there.
    public var consoleURL: String?

    /// Where the Hostinger token comes from; never printed.
    public enum TokenSource: Sendable, Equatable {
        case inline(Secret)
        case file(String)
    }

    public static let defaultDatabaseURL = "postgresql://vpsgate@127.0.0.1:5432/vpsgate"

    /// `name` in the directory that holds `directory`: `/usr/share/vpsgate/migrations` gives
    /// `/usr/share/vpsgate/Database`, `Migrations` gives `Database`.
    static func sibling(of directory: String, named name: String) -> String {
        var path = Substring(directory)
        while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
        guard let slash = path.lastIndex(of: "/") else { return name }
        return String(path[...slash]) + name
    }

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

        listen = try ListenAddress(parsing: value("VPSGATE_LISTEN") ?? "unix:/run/vpsgate/vpsgate.sock")
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
        databaseDirectory = value("VPSGATE_DATABASE_DIR") ?? Self.sibling(of: migrationsDirectory, named: "Database")
        instance = value("VPSGATE_INSTANCE")

        let url = value("VPSGATE_DATABASE_URL") ?? Self.defaultDatabaseURL
        guard url.hasPrefix("postgresql://") || url.hasPrefix("postgres://") else {
            throw ConfigurationError("VPSGATE_DATABASE_URL", nil, "expected a URI such as postgresql://user@host:5432/dbname")
        }
        databaseURL = url
        switch value("VPSGATE_DATABASE_POOL_MODE") {
        case nil, "session": databasePoolMode = .session
        case "transaction": databasePoolMode = .transaction
        case let other?: throw ConfigurationError("VPSGATE_DATABASE_POOL_MODE", other, "expected session or transaction")
        }
        let listenURL = value("VPSGATE_LISTEN_DATABASE_URL") ?? url
        guard listenURL.hasPrefix("postgresql://") || listenURL.hasPrefix("postgres://") else {
            throw ConfigurationError("VPSGATE_LISTEN_DATABASE_URL", nil, "expected a URI such as postgresql://user@host:5432/dbname")
        }
        guard databasePoolMode == .session || value("VPSGATE_LISTEN_DATABASE_URL") != nil else {
            throw ConfigurationError("VPSGATE_LISTEN_DATABASE_URL", nil,
                                     "VPSGATE_DATABASE_POOL_MODE=transaction needs a direct connection for LISTEN (a transaction-mode pooler drops it)")
        }
        listenDatabaseURL = listenURL
        let migrationURL = value("VPSGATE_MIGRATION_DATABASE_URL") ?? url
        guard migrationURL.hasPrefix("postgresql://") || migrationURL.hasPrefix("postgres://") else {
            throw ConfigurationError("VPSGATE_MIGRATION_DATABASE_URL", nil, "expected a URI such as postgresql://owner@host:5432/dbname")
        }
        migrationDatabaseURL = migrationURL
        busyBoundSeconds = try integer("VPSGATE_BUSY_BOUND", default: 900, in: 10...86_400)
        refreshIntervalMilliseconds = try integer("VPSGATE_REFRESH_INTERVAL_MS", default: 3000, in: 0...600_000)
        tokenCacheMilliseconds = try integer("VPSGATE_TOKEN_CACHE_MS", default: 1000, in: 0...60_000)

        readTimeoutMilliseconds = try integer("VPSGATE_READ_TIMEOUT_MS", default: 10_000, in: 100...600_000)
        switch (listen, value("VPSGATE_ALLOWED_PEERS")) {
        case (.tcp, nil):
            throw ConfigurationError("VPSGATE_ALLOWED_PEERS", nil,
                                     "a TCP listener needs the addresses of the nginx hosts that may connect (a.b.c.d or a.b.c.d/n, comma-separated)")
        case (.tcp, let text?):
            guard let networks = IPv4Network.list(text) else {
                throw ConfigurationError("VPSGATE_ALLOWED_PEERS", text, "expected a.b.c.d or a.b.c.d/n, comma-separated (no host bits past the prefix)")
            }
            allowedPeers = networks
        case (.unix, nil):
            allowedPeers = []
        case (.unix, let text?):
            throw ConfigurationError("VPSGATE_ALLOWED_PEERS", text, "applies to a TCP listener only; a unix socket's mode and group decide who connects")
        }
        secretKeyFile = value("VPSGATE_SECRET_KEY_FILE")
        adminDatabaseURL = value("VPSGATE_ADMIN_DATABASE_URL")
        let hostingerURLText = value("HOSTINGER_API_URL") ?? "https://developers.hostinger.com"
        switch UpstreamURL.validate(hostingerURLText) {
        case .success(let valid): hostingerURL = valid
        case .failure(let problem): throw ConfigurationError("HOSTINGER_API_URL", hostingerURLText, problem.message)
        }
        switch (environment["HOSTINGER_API_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }, value("HOSTINGER_API_TOKEN_FILE")) {
        case (let token?, nil): hostingerToken = .inline(Secret(token))
        case (nil, let path?): hostingerToken = .file(path)
        case (nil, nil): hostingerToken = nil
        case (_?, _?): throw ConfigurationError("HOSTINGER_API_TOKEN_FILE", nil, "set HOSTINGER_API_TOKEN or HOSTINGER_API_TOKEN_FILE, not both")
        }
        hostingerCAFile = value("HOSTINGER_CA_FILE")
        hostingerConnectTimeoutMilliseconds = try integer("HOSTINGER_CONNECT_TIMEOUT_MS", default: 2000, in: 100...60_000)
        hostingerAttemptTimeoutMilliseconds = try integer("HOSTINGER_ATTEMPT_TIMEOUT_MS", default: 8000, in: 100...120_000)
        hostingerDeadlineMilliseconds = try integer("HOSTINGER_DEADLINE_MS", default: 20_000, in: 100...300_000)
        breakerFailures = try integer("HOSTINGER_BREAKER_FAILURES", default: 5, in: 1...1000)
        breakerCoolDownMilliseconds = try integer("HOSTINGER_BREAKER_COOLDOWN_MS", default: 10_000, in: 100...3_600_000)
        switch value("VPSGATE_RECONCILER") {
        case nil, "1", "true": reconcilerEnabled = true
        case "0", "false": reconcilerEnabled = false
        case let other?: throw ConfigurationError("VPSGATE_RECONCILER", other, "expected 1 or 0")
        }
        reconcileIntervalMilliseconds = try integer("VPSGATE_RECONCILE_INTERVAL_MS", default: 500, in: 50...60_000)
        reconcileGraceMilliseconds = try integer("VPSGATE_RECONCILE_GRACE_MS", default: hostingerDeadlineMilliseconds + 5000,
                                                 in: 1000...3_600_000)
        guard reconcileGraceMilliseconds > hostingerDeadlineMilliseconds else {
            throw ConfigurationError("VPSGATE_RECONCILE_GRACE_MS", String(reconcileGraceMilliseconds),
                                     "must exceed HOSTINGER_DEADLINE_MS (\(hostingerDeadlineMilliseconds)): an instance may still be calling Hostinger until then")
        }
        settleWindowMilliseconds = try integer("VPSGATE_SETTLE_WINDOW_MS", default: 30_000, in: 1000...3_600_000)
        driftScanIntervalMilliseconds = try integer("VPSGATE_DRIFT_SCAN_INTERVAL_MS", default: 15_000, in: 1000...3_600_000)
        sealIntervalMilliseconds = try integer("VPSGATE_SEAL_INTERVAL_MS", default: 5000, in: 100...3_600_000)
        sealHorizonMilliseconds = try integer("VPSGATE_SEAL_HORIZON_MS", default: 15_000, in: 0...3_600_000)
        /// A duration (`90m`, `24h`, `7d`) in seconds.
        func duration(_ name: String, default fallback: Int) throws(ConfigurationError) -> Int {
            guard let raw = value(name) else { return fallback }
            guard let seconds = DurationText.seconds(raw) else {
                throw ConfigurationError(name, raw, "expected a duration such as 90m, 24h or 7d")
            }
            return seconds
        }
        idempotencyTTLSeconds = try duration("VPSGATE_IDEMPOTENCY_TTL", default: 86_400)

        maxWaiters = try integer("VPSGATE_MAX_WAITERS", default: min(max(1, workers / 4), workers - 1), in: 0...1024)
        guard maxWaiters < workers else {
            throw ConfigurationError("VPSGATE_MAX_WAITERS", String(maxWaiters),
                                     "must be below VPSGATE_WORKERS (\(workers)): waiting requests hold workers, and the other routes need some")
        }
        eventRetentionSeconds = try duration("VPSGATE_EVENT_RETENTION", default: 7 * 86_400)
        webhookSenders = try integer("VPSGATE_WEBHOOK_SENDERS", default: 2, in: 0...64)
        webhookTimeoutMilliseconds = try integer("VPSGATE_WEBHOOK_TIMEOUT_MS", default: 10_000, in: 100...60_000)
        if let raw = value("VPSGATE_WEBHOOK_RETRY_SCHEDULE") {
            guard let schedule = WebhookRetrySchedule(parsing: raw) else {
                throw ConfigurationError("VPSGATE_WEBHOOK_RETRY_SCHEDULE", raw, "expected durations separated by commas, such as 5s,30s,2m,10m,30m,1h")
            }
            webhookRetrySchedule = schedule
        } else {
            webhookRetrySchedule = .standard
        }
        webhookGiveUpSeconds = try duration("VPSGATE_WEBHOOK_GIVE_UP", default: 86_400)
        if let raw = value("VPSGATE_WEBHOOK_ALLOW_NETWORKS") {
            guard let networks = IPNetwork.list(raw) else {
                throw ConfigurationError("VPSGATE_WEBHOOK_ALLOW_NETWORKS", raw, "expected networks such as 127.0.0.1/32 or ::1/128, comma-separated")
            }
            webhookAllowNetworks = networks
        } else {
            webhookAllowNetworks = []
        }
        webhookCAFile = value("VPSGATE_WEBHOOK_CA_FILE")

        if let raw = value("HOSTINGER_RATE_LIMIT") {
            guard let limit = RateLimit(parsing: raw) else {
                throw ConfigurationError("HOSTINGER_RATE_LIMIT", raw, "expected requests per unit, such as 60/min, 2/s or 3600/h (1 to 100000)")
            }
            hostingerRateLimit = limit
        } else {
            hostingerRateLimit = nil
        }
        budgetWaitMilliseconds = try integer("VPSGATE_BUDGET_WAIT_MS", default: min(5000, hostingerDeadlineMilliseconds / 2), in: 0...60_000)
        guard budgetWaitMilliseconds < hostingerDeadlineMilliseconds else {
            throw ConfigurationError("VPSGATE_BUDGET_WAIT_MS", String(budgetWaitMilliseconds),
                                     "must be below HOSTINGER_DEADLINE_MS (\(hostingerDeadlineMilliseconds)): the wait counts against the call's deadline")
        }
        readCacheMilliseconds = try integer("VPSGATE_READ_CACHE_MS", default: 2000, in: 0...60_000)
        budgetMaxPauseSeconds = try duration("VPSGATE_BUDGET_MAX_PAUSE", default: 900)
        guard budgetMaxPauseSeconds <= Self.budgetMaxPauseCeilingSeconds else {
            throw ConfigurationError("VPSGATE_BUDGET_MAX_PAUSE", value("VPSGATE_BUDGET_MAX_PAUSE"),
                                     "must be at most 1h (the database caps every pause there); use vpsgate budget resume to lift one sooner")
        }

        let level = value("VPSGATE_LOG_LEVEL")?.lowercased() ?? "info"
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
            throw ConfigurationError("VPSGATE_LOG_LEVEL", level, "expected trace, debug, info, notice, warning, error or critical")
        }
        logLevel = level
        let format = value("VPSGATE_LOG_FORMAT")?.lowercased() ?? "json"
        guard format == "json" || format == "text" else {
            throw ConfigurationError("VPSGATE_LOG_FORMAT", format, "expected json or text")
        }
        logFormat = format

        let problemBase = value("VPSGATE_PROBLEM_BASE_URL") ?? Self.defaultProblemBaseURL
        switch PublicURL.validate(problemBase) {
        case .success(let valid): problemBaseURL = valid
        case .failure(let problem): throw ConfigurationError("VPSGATE_PROBLEM_BASE_URL", problemBase, problem.message)
        }
        if let console = value("VPSGATE_CONSOLE_URL") {
            switch PublicURL.validate(console) {
            case .success(let valid): consoleURL = valid
            case .failure(let problem): throw ConfigurationError("VPSGATE_CONSOLE_URL", console, problem.message)
            }
        } else {
            consoleURL = nil
        }

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

/// What `VPSGATE_DATABASE_URL` reaches: PostgreSQL (or a session-mode pooler), or a
/// transaction-mode pooler, across which no session state survives between transactions.
public enum DatabasePoolMode: String, Sendable, Equatable {
    case session
    case transaction
}

/// A number of requests per unit of time: `60/min`.
public struct RateLimit: Sendable, Equatable {
    public var requests: Int
    public var perSeconds: Int

    public init?(parsing text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let requests = Int(String(parts[0]).trimmed), (1...100_000).contains(requests) else { return nil }
        let seconds: Int
        switch String(parts[1]).trimmed.lowercased() {
        case "s", "sec", "second": seconds = 1
        case "m", "min", "minute": seconds = 60
        case "h", "hour": seconds = 3600
        default: return nil
        }
        self.requests = requests
        self.perSeconds = seconds
    }

    /// The spacing between two calls, in microseconds: 5 % more than the period over the
    /// limit, so that the network's jitter (a call sent on time that arrives late, its
    /// successor early) cannot put one call more than the limit into any window of the period.
    public var intervalMicroseconds: Int { perSeconds * 1_050_000 / requests }
}
