import Logging
import Platform
import Postgres
import VpsgateCore

/// The upkeep every instance does, whether or not it runs the reconciler: outcome writes
/// that waited for the database, audit sealing, and the purge of expired idempotency keys.
///
/// Sealing takes an advisory lock (one instance seals at a time) and purging is a single
/// statement, so any number of instances can run it. It owns one database connection.
public final class Housekeeper: Sendable {
    private let context: ServiceContext
    private let loop = BackgroundLoop()

    public init(context: ServiceContext) {
        self.context = context
    }

    struct State {
        var database: PostgresConnection
        var logger: Logger
        var lastSeal = 0
        var lastPurge = 0
    }

    public func start() {
        let context = self.context
        loop.start(setUp: {
            var logger = context.logger
            logger[metadataKey: "component"] = "housekeeper"
            return State(database: PostgresConnection(url: context.configuration.databaseURL,
                                                      applicationName: "vpsgate housekeeper \(context.instance)"),
                         logger: logger)
        }, pass: { state, _ in
            Self.pass(&state, context: context)
            return 250
        })
    }

    public func stop(timeoutMilliseconds: Int = 5000) {
        loop.stop(timeoutMilliseconds: timeoutMilliseconds)
    }

    static func pass(_ state: inout State, context: ServiceContext) {
        let configuration = context.configuration
        context.pendingOutcomes.drain(on: state.database, logger: state.logger)
        let now = MonotonicClock.milliseconds()
        do {
            if now - state.lastSeal >= configuration.sealIntervalMilliseconds || state.lastSeal == 0 {
                state.lastSeal = now
                let sealed = try AuditSealer(database: state.database, keys: context.keys)
                    .sealPending(horizonSeconds: Double(configuration.sealHorizonMilliseconds) / 1000)
                if sealed > 0 { state.logger.debug("audit rows sealed", metadata: ["rows": "\(sealed)"]) }
            }
            if now - state.lastPurge >= min(60_000, max(1000, configuration.idempotencyTTLSeconds * 500)) || state.lastPurge == 0 {
                state.lastPurge = now
                try purgeExpiredKeys(state.database, ttlSeconds: configuration.idempotencyTTLSeconds, logger: state.logger)
            }
        } catch {
            state.logger.warning("housekeeping pass failed", metadata: ["error": "\(error)"])
        }
    }

    /// Idempotency keys completed longer ago than the TTL are removed: the same key then
    /// starts a new command. Audit rows are never purged.
    static func purgeExpiredKeys(_ database: PostgresConnection, ttlSeconds: Int, logger: Logger) throws {
        let query: PostgresQuery = """
            DELETE FROM idempotency_keys
            WHERE state = 'completed' AND completed_at < now() - make_interval(secs => \(ttlSeconds))
            """
        let purged = try database.query(query.preparedOnce()).affectedRows
        if purged > 0 { logger.info("idempotency keys purged", metadata: ["keys": "\(purged)"]) }
    }
}
