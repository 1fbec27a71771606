import Logging
import Platform
import VpsgateCore
import VpsgateStore

/// The upkeep every instance does, whether or not it runs the reconciler: outcome writes
/// that waited for the database, audit sealing, the purge of expired idempotency keys and
/// of events past their retention, the metrics lease (and, while held, the operation counts).
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
        var store: PostgresStore
        var logger: Logger
        var lastSeal = 0
        var lastPurge = 0
        var lastExpiry = 0
        var lastEventPrune = 0
        var lastLease = 0
    }

    public func start() {
        let context = self.context
        loop.start(setUp: {
            var logger = context.logger
            logger[metadataKey: "component"] = "housekeeper"
            return State(store: context.makeStore(role: "housekeeper"), logger: logger)
        }, pass: { state, _ in
            Self.pass(&state, context: context)
            return 250
        })
    }

    public func stop(timeoutMilliseconds: Int = 5000) {
        loop.stop(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// One pass: each task on its own, so that one failing (sealing, say) holds back no
    /// other (expiry above all: deadlines are kept whatever else fails).
    static func pass(_ state: inout State, context: ServiceContext) {
        let configuration = context.configuration
        state.store.drainPendingOutcomes()
        let now = MonotonicClock.milliseconds()
        if now - state.lastExpiry >= 1000 {
            state.lastExpiry = now
            task("expiry", &state) { state in
                let expired = try state.store.expireApprovals()
                if expired > 0 { state.logger.info("approvals expired", metadata: ["operations": "\(expired)"]) }
                let batches = try state.store.expireBatches()
                if batches > 0 { state.logger.info("batch approvals expired", metadata: ["children": "\(batches)"]) }
            }
        }
        if now - state.lastLease >= MetricsLease.renewEveryMilliseconds {
            state.lastLease = now
            task("metrics lease", &state) { state in
                let held = try state.store.renewMetricsLease(holder: context.instance, ttlSeconds: MetricsLease.ttlSeconds)
                context.metricsLease.renewed(held, now: now)
                // The holder alone folds the operation counts' changes: one folder at a time.
                if held { try state.store.foldOperationStateCounts() }
            }
        }
        if now - state.lastSeal >= configuration.sealIntervalMilliseconds || state.lastSeal == 0 {
            state.lastSeal = now
            task("sealing", &state) { state in
                let sealed = try state.store.sealAudit(keys: context.keys, horizonSeconds: Double(configuration.sealHorizonMilliseconds) / 1000)
                if sealed > 0 { state.logger.debug("audit rows sealed", metadata: ["rows": "\(sealed)"]) }
            }
        }
        if now - state.lastEventPrune >= min(60_000, max(1000, configuration.eventRetentionSeconds * 250)) || state.lastEventPrune == 0 {
            state.lastEventPrune = now
            task("event pruning", &state) { state in
                let pruned = try state.store.pruneEvents(keepSeconds: configuration.eventRetentionSeconds)
                if pruned > 0 { state.logger.info("events pruned", metadata: ["events": "\(pruned)"]) }
            }
        }
        if now - state.lastPurge >= min(60_000, max(1000, configuration.idempotencyTTLSeconds * 500)) || state.lastPurge == 0 {
            state.lastPurge = now
            task("key purge", &state) { state in
                let purged = try state.store.purgeExpiredKeys(ttlSeconds: configuration.idempotencyTTLSeconds)
                if purged > 0 { state.logger.info("idempotency keys purged", metadata: ["keys": "\(purged)"]) }
            }
        }
    }

    private static func task(_ name: String, _ state: inout State, _ body: (inout State) throws -> Void) {
        do {
            try body(&state)
        } catch {
            state.logger.warning("housekeeping: \(name) failed", metadata: ["error": "\(error)"])
        }
    }
}
