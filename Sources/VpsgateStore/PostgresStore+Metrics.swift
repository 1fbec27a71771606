import Postgres
import VpsgateCore

/// The metrics lease and the operation counts it lets one instance keep (Migrations/0020_metrics_lease.sql).
extension PostgresStore {
    /// Takes or renews the metrics lease for `holder` for `ttlSeconds`; true when `holder`
    /// holds it now (it was free, expired, or already `holder`'s).
    public func renewMetricsLease(holder: String, ttlSeconds: Int) throws(StoreError) -> Bool {
        let query: PostgresQuery = """
            INSERT INTO metrics_lease AS l (holder, expires_at) VALUES (\(holder), clock_timestamp() + make_interval(secs => \(ttlSeconds)))
            ON CONFLICT (singleton) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
            WHERE l.holder = excluded.holder OR l.expires_at < clock_timestamp()
            RETURNING holder
            """
        return try run { () throws(PostgresError) in try !database.query(query.preparedOnce(), retryOnStaleConnection: true).isEmpty }
    }

    /// Folds the appended state changes into `operation_state_counts`; the number of changes folded.
    @discardableResult
    public func foldOperationStateCounts() throws(StoreError) -> Int {
        let query: PostgresQuery = """
            WITH moved AS (DELETE FROM operation_state_changes RETURNING state, delta),
                 summed AS (SELECT state, sum(delta)::bigint AS delta, count(*) AS rows FROM moved GROUP BY state),
                 folded AS (INSERT INTO operation_state_counts AS c (state, n) SELECT state, delta FROM summed
                            ON CONFLICT (state) DO UPDATE SET n = c.n + excluded.n RETURNING state)
            SELECT coalesce(sum(rows), 0)::bigint AS folded FROM summed
            """
        return try run { () throws(PostgresError) in
            try database.query(query.preparedOnce()).first?.decode(Int.self, "folded") ?? 0
        }
    }
}
