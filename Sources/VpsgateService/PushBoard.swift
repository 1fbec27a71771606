import Platform
import Synchronization

/// Where waiting requests and the webhook senders sleep until the listener hears that
/// something changed (docs/design.md#completion-push): `GET /v1/operations/{id}?wait=S` waits for its
/// operation, `GET /v1/events?wait=S` and the senders for any event.
///
/// Counters, not queues: each change bumps a generation; a waiter remembers the generation
/// it last saw and sleeps until a newer one (or its deadline), then reads the database,
/// which alone says what changed. A wake-up lost or doubled costs a read, never a result.
public final class PushBoard: @unchecked Sendable {
    private struct State {
        var generation: UInt64 = 0
        /// The generation of the last change to each operation someone is waiting for.
        var operations: [String: UInt64] = [:]
        var watchers: [String: Int] = [:]
        /// Threads asleep in `wait(for: nil, …)`, waiting for any event.
        var anyWaiters = 0
        /// Wakes of the sleepers so far (for tests).
        var broadcasts = 0
        /// The instance is stopping: waits end now, and new ones do not start.
        var closed = false
    }

    private let condition = Condition()
    private var state = State()
    private let waiting = Atomic<Int>(0)
    /// Requests allowed to wait at once on this instance (`VPSGATE_MAX_WAITERS`).
    public let maxWaiters: Int

    public init(maxWaiters: Int) {
        self.maxWaiters = maxWaiters
    }

    /// Requests waiting now.
    public var waitingRequests: Int { waiting.load(ordering: .relaxed) }

    /// Takes one of the waiting places; false when all are taken (the caller answers at once).
    public func enter() -> Bool {
        if isClosed { return false }
        var current = waiting.load(ordering: .relaxed)
        while current < maxWaiters {
            let (exchanged, original) = waiting.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    public func leave() {
        waiting.subtract(1, ordering: .relaxed)
    }

    /// Starts watching `operation` (nil: any event); returns the generation to wait past.
    /// Watch before reading the database, so a change between the read and the wait wakes it.
    public func watch(_ operation: String?) -> UInt64 {
        condition.withLock {
            guard let operation else { return state.generation }
            state.watchers[operation, default: 0] += 1
            if state.operations[operation] == nil { state.operations[operation] = state.generation }
            return state.operations[operation]!
        }
    }

    public func unwatch(_ operation: String) {
        condition.withLock {
            let left = (state.watchers[operation] ?? 1) - 1
            if left <= 0 {
                state.watchers[operation] = nil
                state.operations[operation] = nil
            } else {
                state.watchers[operation] = left
            }
        }
    }

    /// Sleeps until `operation` (nil: any event) changed after generation `seen`, or until
    /// `deadline` (`MonotonicClock.milliseconds()`). Returns the generation now (equal to
    /// `seen`: nothing changed in time).
    public func wait(for operation: String?, after seen: UInt64, until deadline: Int) -> UInt64 {
        condition.withLock {
            while true {
                let now = operation.flatMap { state.operations[$0] } ?? state.generation
                if now > seen || state.closed { return now }
                if MonotonicClock.milliseconds() >= deadline { return now }
                if operation == nil { state.anyWaiters += 1 }
                _ = condition.wait(untilMilliseconds: deadline)
                if operation == nil { state.anyWaiters -= 1 }
            }
        }
    }

    /// What the webhook senders watch (`watch(PushBoard.deliveries)`): not an operation id.
    public static let deliveries = "deliveries"

    /// The listener heard a change to `operation` (nil: an event of no operation), which owes
    /// webhook `deliveries` or not.
    ///
    /// Sleepers are woken only when one of them waits for this change: someone waiting for
    /// any event, for this operation, or (when deliveries are owed) a webhook sender. A wake
    /// of every sleeper on every change made each command wake the senders for nothing (a
    /// thread switch and a contended lock each). Skipping it is safe: a thread about to wait
    /// checks the generation under this lock first, so it never sleeps past a change.
    public func changed(_ operation: String?, deliveries: Bool = false) {
        condition.withLock {
            state.generation += 1
            var wanted = state.anyWaiters > 0
            if let operation, state.operations[operation] != nil {
                state.operations[operation] = state.generation
                wanted = true
            }
            if deliveries, state.operations[Self.deliveries] != nil {
                state.operations[Self.deliveries] = state.generation
                wanted = true
            }
            if wanted {
                state.broadcasts += 1
                condition.broadcast()
            }
        }
    }

    public var isClosed: Bool { condition.withLock { state.closed } }

    /// How many times a change woke the sleepers.
    var broadcasts: Int { condition.withLock { state.broadcasts } }

    /// The instance is stopping: every waiting request answers with what it has (its state
    /// now), so that the drain at shutdown does not wait out their deadlines.
    public func close() {
        condition.withLock {
            state.closed = true
            condition.broadcast()
        }
    }

    /// Anything may have changed (the listener was not listening for a while): everyone reads again.
    public func changedAll() {
        condition.withLock {
            state.generation += 1
            for operation in state.operations.keys { state.operations[operation] = state.generation }
            condition.broadcast()
        }
    }
}
