import Postgres
import VpsgateCore

/// `vpsgate budget …`: the shared Hostinger budget (migration 0013) as operators see it, and
/// the lift of a 429's pause (an update of `paused_until` the database's trigger audits).
extension Admin {
    /// Each budget (one per Hostinger token, named by a hash of it): its next slot, its
    /// pause and its counters.
    public func listBudgets() throws -> [[String]] {
        try database.query("""
            SELECT name,
                   CASE WHEN next_at > clock_timestamp()
                        THEN to_char(extract(epoch FROM next_at - clock_timestamp()), 'FM999990.0') || 's' ELSE 'now' END AS next_slot,
                   CASE WHEN paused_until > clock_timestamp() THEN paused_until::text ELSE '-' END AS paused_until,
                   granted::text, refused::text, paused::text AS pauses
            FROM upstream_budgets ORDER BY name
            """).map { row in
            try ["name", "next_slot", "paused_until", "granted", "refused", "pauses"].map { try row.decode(String.self, $0) }
        }
    }

    /// Lifts every pause still holding calls (each instance sees it within a second); returns
    /// the budgets it lifted (none: nothing was paused).
    public func resumeBudgets() throws -> [String] {
        try change { database in
            try database.query("""
                UPDATE upstream_budgets SET paused_until = NULL WHERE paused_until > clock_timestamp() RETURNING name
                """).map { try $0.decode(String.self, "name") }
        }
    }
}
