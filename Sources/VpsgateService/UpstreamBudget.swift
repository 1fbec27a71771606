import Hostinger
import Logging
import Platform
import Synchronization
import VpsgateCore

#if canImport(Glibc)
import Glibc
#endif

/// The Hostinger budget every instance shares (docs/design.md#the-shared-budget), asked by one thread's
/// Hostinger client through that thread's store. With `HOSTINGER_RATE_LIMIT`, every call
/// takes a slot from the database (`take_budget`: calls spaced evenly, commands first);
/// without, only a 429's pause holds calls, read from the database at most once a second.
final class SharedBudget<Store: FleetStore>: UpstreamBudget {
    private let store: Store
    private let context: ServiceContext
    private let metrics: Metrics.Shard
    private let logger: Logger

    init(store: Store, context: ServiceContext, logger: Logger) {
        self.store = store
        self.context = context
        self.metrics = context.metrics.shard()
        self.logger = logger
    }

    /// The budget's name: a hash of the Hostinger token, never the token.
    static func name(_ context: ServiceContext) -> String { String(Redaction.digest(context.hostinger.token.value).prefix(23)) }

    func admit(_ priority: BudgetPriority, maxWaitMilliseconds: Int) -> Int? {
        let interval = context.configuration.hostingerRateLimit?.intervalMicroseconds ?? 0
        let now = MonotonicClock.milliseconds()
        if interval == 0 {
            // No limit: only a pause holds calls. The database (where every instance records
            // its 429s) is asked at most once a second; in between, what it said last holds.
            // Only the pause is read: taking a slot would wait on other instances' slots, and
            // a slot taken a microsecond ago by another instance is no pause.
            if context.budgetPause.isDue(now: now) {
                do {
                    let paused = try store.budgetState(name: Self.name(context)).pausedSeconds
                    context.budgetPause.checked(now: now, pausedFor: Int((paused * 1000).rounded(.up)))
                } catch {
                    logger.warning("upstream budget unreadable; call not held", metadata: ["error": "\(error)"])
                }
            }
            guard let remaining = context.budgetPause.remaining(now: now) else { return nil }
            return hold(priority, remaining, maxWaitMilliseconds)
        }
        let maxWait = priority == .read ? 0 : max(maxWaitMilliseconds, 0)
        do {
            let (granted, wait) = try store.takeBudget(name: Self.name(context), intervalMicroseconds: interval, priority: priority.rawValue,
                                                       maxWaitMilliseconds: maxWait)
            guard granted else {
                metrics.increment(Metrics.budgetRefusals, [("priority", priority.rawValue)])
                return wait
            }
            sleep(milliseconds: wait)
            return nil
        } catch {
            // The database is what every command needs anyway: without it, the budget does
            // not stop a call (the command path has already failed or will).
            logger.warning("upstream budget unreadable; call not held", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func hold(_ priority: BudgetPriority, _ wait: Int, _ maxWait: Int) -> Int? {
        guard priority == .command, wait <= maxWait else {
            metrics.increment(Metrics.budgetRefusals, [("priority", priority.rawValue)])
            return wait
        }
        sleep(milliseconds: wait)
        return nil
    }

    private func sleep(milliseconds: Int) {
        guard milliseconds > 0 else { return }
        metrics.increment(Metrics.budgetWaitSeconds, by: Double(milliseconds) / 1000)
        usleep(useconds_t(milliseconds) * 1000)
    }

    func pause(forMilliseconds asked: Int) {
        metrics.increment(Metrics.hostinger429s)
        // One answer must not hold the fleet for as long as it likes (a Retry-After of a day):
        // at most VPSGATE_BUDGET_MAX_PAUSE, which the database enforces too.
        let cap = context.configuration.budgetMaxPauseSeconds * 1000
        let milliseconds = min(asked, cap)
        // The database first: a check of it between the two would otherwise undo this one.
        do {
            try store.pauseBudget(name: Self.name(context), milliseconds: milliseconds, maxMilliseconds: cap)
        } catch {
            logger.warning("429 pause not shared with other instances", metadata: ["error": "\(error)"])
        }
        context.budgetPause.paused(until: MonotonicClock.milliseconds() + milliseconds)
        logger.warning("Hostinger answered 429: every instance pauses", metadata: ["pause_ms": "\(milliseconds)", "asked_ms": "\(asked)"])
    }
}

/// This instance's view of a 429 pause, shared by its threads.
final class BudgetPause: Sendable {
    private let state = Mutex<(until: Int, checkedAt: Int)>((0, Int.min / 2))

    func remaining(now: Int) -> Int? { state.withLock { $0.until > now ? $0.until - now : nil } }
    func isDue(now: Int) -> Bool { state.withLock { now - $0.checkedAt >= 1000 } }

    /// What the database said: its pause replaces this instance's (a pause lifted there is
    /// lifted here within a second).
    func checked(now: Int, pausedFor milliseconds: Int) {
        state.withLock { state in
            state.checkedAt = now
            state.until = now + milliseconds
        }
    }

    func paused(until: Int) { state.withLock { $0.until = max($0.until, until) } }
}

/// Reads from Hostinger served again for a few seconds (`VPSGATE_READ_CACHE_MS`), and
/// identical reads at the same moment coalesced into one call (docs/design.md#the-shared-budget): a read
/// storm costs one call per path and period, whatever its size. A read the budget refuses
/// is served from the last good answer, however old (its `Age` says so).
final class ReadCache: @unchecked Sendable {
    private enum Entry {
        case ready(HostingerResult, at: Int)
        case loading(stale: (HostingerResult, at: Int)?)
    }

    private let condition = Condition()
    /// Guarded by `condition`'s mutex.
    private var entries: [String: Entry] = [:]
    static let capacity = 10_000

    /// The answer for `key`, and its age in milliseconds when it was not fetched for this read.
    func read(_ key: String, ttlMilliseconds ttl: Int, fetch: () -> HostingerResult) -> (HostingerResult, ageMilliseconds: Int?) {
        guard ttl > 0 else { return (fetch(), nil) }
        let deadline = MonotonicClock.milliseconds() + 30_000
        var stale: (HostingerResult, at: Int)?
        let cached: (HostingerResult, Int)? = condition.withLock {
            while true {
                let now = MonotonicClock.milliseconds()
                switch entries[key] {
                case .ready(let result, let at)? where now - at < ttl:
                    return (result, now - at)
                case .loading? where now < deadline:
                    _ = condition.wait(untilMilliseconds: deadline)
                    continue
                case .ready(let result, let at)?:
                    stale = (result, at)
                case .loading(let previous)?:
                    stale = previous
                case nil:
                    break
                }
                if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
                entries[key] = .loading(stale: stale)
                return nil
            }
        }
        if let cached { return (cached.0, cached.1) }
        let result = fetch()
        let now = MonotonicClock.milliseconds()
        condition.withLock {
            if result.outcome == .succeeded {
                entries[key] = .ready(result, at: now)
            } else if let stale {
                entries[key] = .ready(stale.0, at: stale.at)
            } else {
                entries[key] = nil
            }
            condition.broadcast()
        }
        if result.budgetExhausted, let stale { return (stale.0, now - stale.at) }
        return (result, nil)
    }
}
