import Platform
import Synchronization

/// Whether this instance exports the database-wide gauges now: it holds the metrics lease
/// (Migrations/0020_metrics_lease.sql), which its housekeeper renews.
///
/// The lease lives `ttlMilliseconds` in the database; this instance counts on it for
/// `trustMilliseconds` after each renewal only, less than that, so that an instance cut off
/// from the database stops exporting before another can take the lease over: two
/// instances never export the same rows at once.
public final class MetricsLease: Sendable {
    static let ttlSeconds = 5
    static let trustMilliseconds = 3000
    static let renewEveryMilliseconds = 1000

    private let heldUntil = Atomic<Int>(0)

    public init() {}

    /// Records a renewal's answer, made at `now` (`MonotonicClock.milliseconds()`).
    func renewed(_ held: Bool, now: Int) {
        heldUntil.store(held ? now + Self.trustMilliseconds : 0, ordering: .releasing)
    }

    public var isHeld: Bool { MonotonicClock.milliseconds() < heldUntil.load(ordering: .acquiring) }
}
