import Logging
import Platform
import Postgres
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Outcome writes that could not reach the database yet, kept until they land.
///
/// Hostinger has acted and the client has its answer; only the record is missing. Each
/// entry is a `finish_command` call, which is safe to run again (it records an answer
/// once), so an entry is retried until it commits: by the next command that writes
/// successfully on any worker, and by the reconciler's loop. Bounded in count; an entry
/// dropped at the bound, or one that fails for another reason than an unavailable
/// database, is logged as critical and left to the reconciler, which settles the
/// operation from Hostinger's records.
public final class PendingOutcomes: Sendable {
    struct Entry: Sendable {
        var query: PostgresQuery
        var operationID: String
    }

    private let entries = Mutex<[Entry]>([])
    private let count = Atomic<Int>(0)
    static let capacity = 10_000

    public init() {}

    /// How many writes are waiting.
    public var waiting: Int { count.load(ordering: .relaxed) }

    func add(_ query: PostgresQuery, operationID: String, logger: Logger) {
        let dropped: Entry? = entries.withLock { entries in
            entries.append(Entry(query: query, operationID: operationID))
            count.store(entries.count, ordering: .relaxed)
            return entries.count > Self.capacity ? entries.removeFirst() : nil
        }
        if let dropped {
            logger.critical("outcome write dropped: too many waiting; the reconciler will settle it", metadata: [
                "operation_id": "\(dropped.operationID)",
            ])
        }
    }

    /// Tries every waiting write once on `database`; keeps those that failed because the
    /// database is unavailable. Cheap when nothing waits.
    func drain(on database: PostgresConnection, logger: Logger) {
        guard waiting > 0 else { return }
        let taken = entries.withLock { entries in
            defer {
                entries.removeAll()
                count.store(0, ordering: .relaxed)
            }
            return entries
        }
        var kept: [Entry] = []
        for (index, entry) in taken.enumerated() {
            do {
                try database.query(entry.query.preparedOnce())
                logger.notice("outcome recorded late", metadata: ["operation_id": "\(entry.operationID)"])
            } catch where error.isUnavailable {
                kept.append(contentsOf: taken[index...])
                break
            } catch {
                logger.critical("outcome write refused; the reconciler will settle it", metadata: [
                    "operation_id": "\(entry.operationID)", "error": "\(error)",
                ])
            }
        }
        guard !kept.isEmpty else { return }
        entries.withLock { entries in
            entries.insert(contentsOf: kept, at: 0)
            count.store(entries.count, ordering: .relaxed)
        }
    }
}

extension PostgresConnection {
    /// Runs a statement that is safe to repeat, trying again while the database is
    /// unavailable or the transaction conflicts, with doubling pauses from 50 ms, for at most
    /// `budgetMilliseconds` in all (an attempt that itself waits, for a server that does not
    /// answer, uses the budget up).
    @discardableResult
    func queryRetrying(_ query: PostgresQuery, budgetMilliseconds: Int = 1500) throws(PostgresError) -> PostgresRows {
        let deadline = MonotonicClock.milliseconds() + budgetMilliseconds
        var pause = 50
        while true {
            do {
                return try self.query(query)
            } catch where (error.isUnavailable || (error.sqlState?.isRetryableConflict ?? false))
                && MonotonicClock.milliseconds() + pause < deadline {
                usleep(useconds_t(pause) * 1000)
                pause *= 2
            }
        }
    }
}
