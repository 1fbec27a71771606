import ArgumentParser
import FastCGI
import Foundation
import HTTPClient
import Hostinger
import Logging
import Platform
import Postgres
import VpsgateCore
import VpsgateService
import VpsgateStore

#if canImport(Glibc)
import Glibc
#endif

@main
struct VpsgateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpsgate",
        abstract: "The control plane for Hostinger VPS mutations.",
        subcommands: [Serve.self, Migrate.self, Token.self, Grant.self, Policy.self, Freeze.self, Webhook.self, Budget.self, Audit.self,
                      Key.self, OpenAPI.self]
    )
}

/// The configuration from the environment, without starting logging (admin commands).
func readConfiguration() throws -> Configuration {
    do {
        return try Configuration(environment: Environment.current)
    } catch {
        throw ValidationError("configuration: \(error)")
    }
}

/// Reads the environment once; a bad setting ends the program with a message naming it.
func loadConfiguration() throws -> (Configuration, Logger) {
    let configuration = try readConfiguration()
    if let problem = PostgresConnection.validate(url: configuration.databaseURL) {
        throw ValidationError("configuration: VPSGATE_DATABASE_URL is not a valid PostgreSQL connection URI: \(problem)")
    }
    let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
    let json = configuration.logFormat == "json"
    LoggingSystem.bootstrap { label in
        if json { return JSONLogHandler(label: label, level: level) }
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "vpsgate")
    logger.logLevel = level
    return (configuration, logger)
}

/// The secret keys of `VPSGATE_SECRET_KEY_FILE` (SPEC section 17).
func loadSecretKeys(_ configuration: Configuration) throws -> SecretKeyRing {
    guard let path = configuration.secretKeyFile else {
        throw ValidationError("configuration: set VPSGATE_SECRET_KEY_FILE to a file made by `vpsgate key generate` (kept outside the database)")
    }
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
        throw ValidationError("configuration: VPSGATE_SECRET_KEY_FILE=\(path) cannot be read")
    }
    switch SecretKeyRing.parse(text) {
    case .success(let keys): return keys
    case .failure(let problem): throw ValidationError("configuration: VPSGATE_SECRET_KEY_FILE=\(path) \(problem.message)")
    }
}

func loadMigrations(_ configuration: Configuration) throws -> [Migration] {
    do {
        return try Migrator.load(directory: configuration.migrationsDirectory)
    } catch let error as MigrationError {
        throw ValidationError(error.message)
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the API over FastCGI until SIGTERM or SIGINT.",
        discussion: "Settings come from VPSGATE_* environment variables; see the README."
    )

    func run() throws {
        // Before any thread exists, so that only the server's sigwait sees SIGTERM/SIGINT.
        FastCGIServer.blockTerminationSignals()
        HTTPClient.initializeLibrary()
        let (configuration, logger) = try loadConfiguration()
        let migrations = try loadMigrations(configuration)
        let keys = try loadSecretKeys(configuration)
        let instance = configuration.instance ?? "\(hostName())-\(getpid())"
        var serviceLogger = logger
        serviceLogger[metadataKey: "instance"] = "\(instance)"
        let token: Secret
        switch configuration.hostingerToken {
        case .inline(let secret): token = secret
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path),
                let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty
            else { throw ValidationError("configuration: HOSTINGER_API_TOKEN_FILE=\(path) cannot be read or is empty") }
            token = Secret(text)
        case nil:
            throw ValidationError("configuration: set HOSTINGER_API_TOKEN or HOSTINGER_API_TOKEN_FILE (the token vpsgate uses to call Hostinger)")
        }
        var hostinger = HostingerSettings(
            baseURL: configuration.hostingerURL, token: token, caFile: configuration.hostingerCAFile,
            connectTimeoutMilliseconds: configuration.hostingerConnectTimeoutMilliseconds,
            attemptTimeoutMilliseconds: configuration.hostingerAttemptTimeoutMilliseconds,
            deadlineMilliseconds: configuration.hostingerDeadlineMilliseconds, userAgent: "vpsgate/0.1")
        hostinger.budgetWaitMilliseconds = configuration.budgetWaitMilliseconds
        func breaker() -> HostingerCircuit {
            HostingerCircuit(failureThreshold: configuration.breakerFailures, coolDownMilliseconds: configuration.breakerCoolDownMilliseconds)
        }
        let context = ServiceContext(configuration: configuration, migrations: migrations, logger: serviceLogger, instance: instance,
                                     hostinger: hostinger, circuit: breaker(), readCircuit: breaker(), keys: keys)
        try refusePrivilegedDatabaseRole(configuration, logger: serviceLogger)

        let address: FastCGIServer.Address =
            switch configuration.listen {
            case .unix(let path): .unix(path: path, mode: configuration.socketMode, group: configuration.socketGroup)
            case .tcp(let host, let port): .tcp(host: host, port: port)
            }
        let server = FastCGIServer(
            configuration: .init(
                address: address, workers: configuration.workers, maxBodyBytes: configuration.maxBodyBytes,
                shutdownTimeoutSeconds: Double(configuration.shutdownTimeoutSeconds),
                allowedPeers: configuration.allowedPeers.map { (network: $0.address, mask: $0.mask) },
                readTimeoutMilliseconds: configuration.readTimeoutMilliseconds
            ),
            logger: serviceLogger
        )
        let reconciler = Reconciler(context: context)
        let housekeeper = Housekeeper(context: context)
        let listener = EventListener(context: context)
        let webhooks = WebhookSender(context: context)
        let report: FastCGIServer.ShutdownReport
        do {
            report = try server.serve(makeResponder: { Responder(context: context) }, onReady: {
                housekeeper.start()
                listener.start()
                webhooks.start()
                if configuration.reconcilerEnabled { reconciler.start() }
            }, onStopping: {
                context.push.close()
            })
        } catch {
            serviceLogger.critical("cannot serve", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        if configuration.reconcilerEnabled { reconciler.stop() }
        webhooks.stop()
        listener.stop()
        housekeeper.stop()
        if report.abandonedRequests > 0 { throw ExitCode(1) }
    }

    private func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (safe to run from several instances at once)."
    )

    func run() throws {
        let (configuration, logger) = try loadConfiguration()
        let migrator = Migrator(migrations: try loadMigrations(configuration))
        let database = PostgresConnection(url: configuration.migrationDatabaseURL, applicationName: "vpsgate migrate")
        do {
            let applied = try migrator.migrate(on: database)
            if applied.isEmpty {
                print("schema is current (\(migrator.migrations.count) migrations)")
            } else {
                for migration in applied { print("applied \(migration.fileName)") }
            }
        } catch let error as MigrationError {
            logger.error("migration refused", metadata: ["reason": "\(error.message)"])
            throw ValidationError(error.message)
        } catch let error as PostgresError {
            logger.error("migration failed", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}

// MARK: - Admin

/// The operator running an admin command, for the audit trail.
func adminActor(_ explicit: String?) -> String {
    if let explicit, !explicit.isEmpty { return explicit }
    for name in ["SUDO_USER", "USER", "LOGNAME"] {
        if let value = getenv(name).map({ String(cString: $0) }), !value.isEmpty { return "cli:" + value }
    }
    return "cli"
}

func adminSession(_ actor: String?) throws -> Admin {
    let configuration = try readConfiguration()
    guard let url = configuration.adminDatabaseURL else {
        throw ValidationError("configuration: set VPSGATE_ADMIN_DATABASE_URL to a connection as the vpsgate_admin role (the only role that may change grants and tokens)")
    }
    if let problem = PostgresConnection.validate(url: url) {
        throw ValidationError("configuration: VPSGATE_ADMIN_DATABASE_URL is not a valid PostgreSQL connection URI: \(problem)")
    }
    return Admin(database: PostgresConnection(url: url, applicationName: "vpsgate admin"), actor: adminActor(actor))
}

/// A serving instance connects as vpsgate_app: refuse a role that could change grants,
/// tokens or the audit trail's protections (a superuser, the schema owner, the admin role).
/// A database that cannot be reached now is no reason not to start (readiness says so).
func refusePrivilegedDatabaseRole(_ configuration: Configuration, logger: Logger) throws {
    let database = PostgresConnection(url: configuration.databaseURL, applicationName: "vpsgate start-up")
    defer { database.close() }
    do {
        guard let problem = try DatabaseRoleCheck.problem(on: database) else { return }
        logger.critical("refusing to serve", metadata: ["reason": "\(problem)"])
        throw ValidationError("configuration: VPSGATE_DATABASE_URL \(problem); serving instances connect as vpsgate_app")
    } catch let error as PostgresError {
        logger.warning("database role not checked at start-up", metadata: ["error": "\(error)"])
    }
}

func parseExpiry(_ text: String?) throws -> Int? {
    guard let text else { return nil }
    guard let seconds = DurationText.seconds(text) else {
        throw ValidationError("--expires takes a duration such as 90m, 12h, 30d or 2w")
    }
    return seconds
}

func printTable(_ header: [String], _ rows: [[String]]) {
    let all = [header] + rows
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}

struct AdminOptions: ParsableArguments {
    @Option(help: "Who is making the change, for the audit trail (default: cli:$USER).")
    var actor: String?
}

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the API tokens nginx checks (only their SHA-256 is stored).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token and print it once.")
        @Option(help: "The principal the token authenticates.") var principal: String
        @Option(help: "Lifetime, e.g. 12h, 30d (default: no expiry).") var expires: String?
        @OptionGroup var admin: AdminOptions

        func run() throws {
            let expiry = try parseExpiry(expires)
            let token = try adminSession(admin.actor).createToken(principal: principal, expiresInSeconds: expiry)
            print(token)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never the tokens themselves).")
        func run() throws {
            printTable(["ID", "PRINCIPAL", "HINT", "CREATED", "EXPIRES", "STATUS"], try adminSession(nil).listTokens())
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by its id.")
        @Argument(help: "The token id (see token list).") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).revokeToken(id: id)
            print("revoked token \(id)")
        }
    }
}

struct Grant: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage grants: a principal holds a role on a resource: one VPS or every VPS ('*'), a firewall, an SSH key, a post-install script, or the account.",
        subcommands: [Add.self, Revoke.self, List.self])

    /// A `--vps` value: an id, or nil for '*' (every VPS).
    static func vps(_ text: String) throws -> Int? {
        if text == "*" { return nil }
        guard let id = PathID.parse(Substring(text)) else { throw ValidationError("--vps takes a VPS id or '*'") }
        return id
    }

    /// What `--vps` or `--resource` names (exactly one of them).
    static func resource(vps: String?, resource: String?) throws -> Target {
        switch (vps, resource) {
        case (let vps?, nil):
            if vps == "*" { return Target(.vps, nil) }
            guard let id = PathID.parse(Substring(vps)) else { throw ValidationError("--vps takes a VPS id or '*'") }
            return .vps(id)
        case (nil, let text?):
            guard let target = Target.parse(text) else {
                throw ValidationError("--resource takes TYPE:ID or TYPE:* (types: vps, firewall, public_key, post_install_script), or account")
            }
            return target
        default:
            throw ValidationError("name the resource with --vps ID|'*' or --resource TYPE:ID|TYPE:*|account (one of them)")
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grant a role.")
        @Option var principal: String
        @Option(help: "A VPS id, or '*' for every VPS (same as --resource vps:ID).") var vps: String?
        @Option(help: "firewall:4001, public_key:*, post_install_script:6001, vps:1001, or account (what creating firewalls, keys, scripts and buying VMs needs).")
        var resource: String?
        @Option(help: "viewer, operator, approver, admin (or a role added in the database).") var role: String
        @Option(help: "Lifetime, e.g. 12h, 30d (default: no expiry).") var expires: String?
        @OptionGroup var admin: AdminOptions
        func run() throws {
            let target = try Grant.resource(vps: vps, resource: resource)
            try adminSession(admin.actor).addGrant(principal: principal, resource: target, role: role, expiresInSeconds: try parseExpiry(expires))
            print("granted \(role) on \(target.text) to \(principal)")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke grants (one role, or every role on that resource).")
        @Option var principal: String
        @Option(help: "A VPS id, or '*'.") var vps: String?
        @Option(help: "TYPE:ID, TYPE:* or account, as at grant add.") var resource: String?
        @Option var role: String?
        @OptionGroup var admin: AdminOptions
        func run() throws {
            let removed = try adminSession(admin.actor).revokeGrant(principal: principal, resource: try Grant.resource(vps: vps, resource: resource),
                                                                    role: role)
            print("revoked \(removed) grant(s)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List grants.")
        func run() throws {
            printTable(["ID", "PRINCIPAL", "RESOURCE", "ROLE", "EXPIRES", "STATUS"], try adminSession(nil).listGrants())
        }
    }
}

struct Policy: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Approval policies: how many other principals must approve a command (the two-person rule).",
        discussion: "The most specific row applies: a command's own over its permission's, a VPS's own over every VPS's ('*'). "
            + "Shipped default: every vps:destroy command needs 1 approval.",
        subcommands: [Set.self, Remove.self, List.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set the approvals a permission or a command needs.")
        @Option(help: "A permission (vps:destroy) or a command name (vps.recreate).") var subject: String
        @Option(help: "A VPS id, or '*' for every VPS.") var vps: String = "*"
        @Option(help: "Approvals required, 0 to 5 (0: none).") var approvals: Int
        @Option(help: "How long a request may wait for its approvals, e.g. 24h (default 24h).") var ttl: String = "24h"
        @OptionGroup var admin: AdminOptions
        func run() throws {
            guard let seconds = DurationText.seconds(ttl) else { throw ValidationError("--ttl takes a duration such as 90m, 24h or 7d") }
            try adminSession(admin.actor).setPolicy(subject: subject, vps: try Grant.vps(vps), approvals: approvals, ttlSeconds: seconds)
            print("\(subject) on \(vps) needs \(approvals) approval(s)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a policy row (the next most specific applies).")
        @Option var subject: String
        @Option(help: "A VPS id, or '*'.") var vps: String = "*"
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).removePolicy(subject: subject, vps: try Grant.vps(vps))
            print("removed the policy for \(subject) on \(vps)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List approval policies.")
        func run() throws {
            printTable(["ID", "SUBJECT", "VPS", "APPROVALS", "TTL", "CREATED BY"], try adminSession(nil).listPolicies())
        }
    }
}

struct Freeze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Freeze windows: no command runs on a frozen VPS (423), but an emergency override through an approval.",
        subcommands: [Add.self, Remove.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a freeze window.")
        @Option(help: "A VPS id, or '*' for every VPS.") var vps: String
        @Option(help: "When it starts, from now, e.g. 0, 2h (default: now).") var starts: String?
        @Option(name: .customLong("for"), help: "How long it lasts, e.g. 4h, 2d.") var duration: String
        @Option(help: "Why, for the audit trail and the 423 answers.") var reason: String
        @OptionGroup var admin: AdminOptions
        func run() throws {
            let start = try starts.map { text in
                guard text == "0" || text == "now" else {
                    guard let seconds = DurationText.seconds(text) else { throw ValidationError("--starts takes a duration such as 2h") }
                    return seconds
                }
                return 0
            } ?? 0
            guard let length = DurationText.seconds(duration) else { throw ValidationError("--for takes a duration such as 4h or 2d") }
            let id = try adminSession(admin.actor).addFreeze(vps: try Grant.vps(vps), startsInSeconds: start, durationSeconds: length,
                                                             reason: reason)
            print("freeze \(id) on \(vps)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a freeze window by its id.")
        @Argument(help: "The freeze id (see freeze list).") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).removeFreeze(id: id)
            print("removed freeze \(id)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List freeze windows.")
        func run() throws {
            printTable(["ID", "VPS", "STARTS", "ENDS", "STATUS", "REASON", "CREATED BY"], try adminSession(nil).listFreezes())
        }
    }
}

struct Webhook: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Webhook endpoints (Standard Webhooks): signed POSTs of the events a principal may read.",
        discussion: "URLs must be https:// and resolve to public addresses only (VPSGATE_WEBHOOK_ALLOW_NETWORKS allow-lists others); "
            + "the check runs here and again at every delivery.",
        subcommands: [Add.self, List.self, Disable.self, Enable.self, Remove.self, Deliveries.self, Redeliver.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an endpoint; prints its signing secret (whsec_…) once.")
        @Option(help: "The principal whose grants decide what the endpoint receives.") var principal: String
        @Option(help: "https:// URL of the receiver.") var url: String
        @Option(help: "Event types, comma-separated (operation.succeeded, operation.*, approval.granted, …; default: every type).")
        var events: String?
        @Option(help: "One VPS id, or '*' for every VPS the principal may read.") var vps: String = "*"
        @OptionGroup var admin: AdminOptions

        func run() throws {
            let configuration = try readConfiguration()
            let keys = try loadSecretKeys(configuration)
            let destination: WebhookURL
            switch WebhookURL.parse(url) {
            case .success(let parsed): destination = parsed
            case .failure(let refusal): throw ValidationError("--url \(refusal)")
            }
            switch WebhookTarget.check(destination, allow: configuration.webhookAllowNetworks) {
            case .success: break
            case .failure(.unresolvable(let message)): throw ValidationError("--url: \(message)")
            case .failure(.refused(let refusal)): throw ValidationError("--url refused: \(refusal)")
            }
            let types = events.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            if let bad = types?.first(where: { !EventType.isSubscribable($0) }) {
                throw ValidationError("--events: unknown event type \(bad); types: \((EventType.all + EventType.wildcards).joined(separator: ", "))")
            }
            let key = WebhookSignature.generateKey()
            let sealed = try keys.seal(key)
            let id = try adminSession(admin.actor).addWebhook(principal: principal, url: url, events: types, vps: try Grant.vps(vps),
                                                              sealedSecret: sealed.sealed, keyID: sealed.keyID)
            print("webhook \(id) for \(principal) -> \(url)")
            print("signing secret (shown once): \(WebhookSignature.secretText(key))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List endpoints (never their secrets).")
        func run() throws {
            printTable(["ID", "PRINCIPAL", "URL", "EVENTS", "VPS", "STATE", "PENDING", "FAILED"], try adminSession(nil).listWebhooks())
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop sending to an endpoint (its pending deliveries wait).")
        @Argument(help: "The endpoint id.") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).setWebhook(id: id, enabled: false)
            print("disabled webhook \(id)")
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send to a disabled endpoint again.")
        @Argument(help: "The endpoint id.") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).setWebhook(id: id, enabled: true)
            print("enabled webhook \(id)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an endpoint and its deliveries.")
        @Argument(help: "The endpoint id.") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).removeWebhook(id: id)
            print("removed webhook \(id)")
        }
    }

    struct Deliveries: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List deliveries, newest first.")
        @Option(help: "Only this endpoint.") var endpoint: Int?
        @Option(help: "pending, delivered, failed or dropped.") var state: String?
        @Option(help: "At most this many (default 50).") var limit: Int = 50
        func run() throws {
            if let state, !["pending", "delivered", "failed", "dropped"].contains(state) {
                throw ValidationError("--state takes pending, delivered, failed or dropped")
            }
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit takes 1 to 10000") }
            printTable(["ID", "WEBHOOK-ID", "ENDPOINT", "TYPE", "VPS", "STATE", "ATTEMPTS", "STATUS", "ERROR", "AT"],
                       try adminSession(nil).listDeliveries(endpoint: endpoint, state: state, limit: limit))
        }
    }

    struct Redeliver: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send again (same webhook-id): one delivery by id, or every failed delivery of --endpoint.")
        @Argument(help: "A delivery id (see webhook deliveries).") var delivery: Int?
        @Option(help: "Every failed delivery of this endpoint.") var endpoint: Int?
        @OptionGroup var admin: AdminOptions
        func run() throws {
            guard (delivery == nil) != (endpoint == nil) else { throw ValidationError("give a delivery id or --endpoint, not both") }
            let moved = try adminSession(admin.actor).redeliver(delivery: delivery, endpoint: endpoint)
            print("\(moved) deliver\(moved == 1 ? "y" : "ies") scheduled again")
        }
    }
}

struct Budget: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The Hostinger budget every instance shares (HOSTINGER_RATE_LIMIT and 429 pauses).",
        discussion: "A 429 from Hostinger pauses every instance for its Retry-After, at most VPSGATE_BUDGET_MAX_PAUSE.",
        subcommands: [Show.self, Resume.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show each budget: its next slot, its pause, its counters.")
        func run() throws {
            printTable(["BUDGET", "NEXT-SLOT", "PAUSED-UNTIL", "GRANTED", "REFUSED", "PAUSES"], try adminSession(nil).listBudgets())
        }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift a 429's pause now (audited); every instance calls Hostinger again within a second.")
        @OptionGroup var admin: AdminOptions
        func run() throws {
            let lifted = try adminSession(admin.actor).resumeBudgets()
            print(lifted.isEmpty ? "no budget is paused" : "resumed \(lifted.count) budget\(lifted.count == 1 ? "" : "s"): \(lifted.joined(separator: ", "))")
        }
    }
}

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "vpsgate's secret keys (VPSGATE_SECRET_KEY_FILE).", subcommands: [Generate.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a new key line, `ID HEX`, for the key file.",
            discussion: """
                To rotate: put the new line first in the file and keep the old ones below it \
                (they still verify), then restart the instances.
                """)
        @Option(help: "The key's id (default: k followed by today's date).") var id: String?
        func run() throws {
            var now = time(nil)
            var parts = tm()
            gmtime_r(&now, &parts)
            let date = String(format: "%04d%02d%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
            let line = SecretKeyRing.generateLine(id: id ?? "k\(date)")
            guard case .success = SecretKeyRing.parse(line) else { throw ValidationError("--id takes 1 to 32 letters, digits, - or _") }
            print(line)
        }
    }
}

struct OpenAPI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Print vpsgate's OpenAPI document (as served at /openapi.json).")
    func run() throws {
        print(OpenAPIDocument.generate().text())
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the audit trail.", subcommands: [Verify.self, Seal.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the seal chain; exit 1 naming the first row that does not match.")
        func run() throws {
            let (configuration, _) = try loadConfiguration()
            let report = try AuditSealer(database: PostgresConnection(url: configuration.databaseURL, applicationName: "vpsgate audit"),
                                         keys: try loadSecretKeys(configuration)).verify()
            print("sealed rows: \(report.sealed)")
            print("rows not sealed yet: \(report.unsealed)")
            if let failure = report.failure {
                print("FAILED: \(failure)")
                throw ExitCode(1)
            }
            print("chain intact")
        }
    }

    struct Seal: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seal rows older than the horizon now (instances also do it in the background).")
        @Option(help: "Seconds a row must be old to be sealed.") var horizon: Double = 15
        func run() throws {
            let (configuration, _) = try loadConfiguration()
            let sealer = AuditSealer(database: PostgresConnection(url: configuration.databaseURL, applicationName: "vpsgate audit"),
                                     keys: try loadSecretKeys(configuration))
            var total = 0
            while case let sealed = try sealer.sealPending(horizonSeconds: horizon), sealed > 0 { total += sealed }
            print("sealed \(total) rows")
        }
    }
}
