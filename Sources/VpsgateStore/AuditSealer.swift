import Postgres
import VpsgateCore

/// Seals audit rows into the hash chain, and verifies the chain (`vpsgate audit verify`).
///
/// One instance seals at a time (a transaction-scoped advisory lock); the request path
/// never waits for it. Rows are sealed in id order once they are older than the horizon:
/// a transaction that inserted a row with a lower id has committed by then (vpsgate's
/// audit-writing transactions are single statements or a few milliseconds long), so
/// sealing copes with rows committed out of id order.
public struct AuditSealer {
    static let lockKey = 0x0076_7073_6561_6c00
    let database: PostgresConnection
    /// New seals are made with the current key and name it; older ones verify with theirs.
    let keys: SecretKeyRing

    public init(database: PostgresConnection, keys: SecretKeyRing) {
        self.database = database
        self.keys = keys
    }

    /// Seals up to `limit` rows older than `horizonSeconds`; returns how many.
    @discardableResult
    public func sealPending(horizonSeconds: Double, limit: Int = 1000) throws -> Int {
        try database.transaction { database in
            let lock: PostgresQuery = "SELECT pg_try_advisory_xact_lock(\(Self.lockKey)) AS ok"
            guard try database.query(lock.preparedOnce()).first?.decode(Bool.self, "ok") == true else { return 0 }
            let lastQuery: PostgresQuery = "SELECT audit_id, seal FROM audit_seals ORDER BY seq DESC LIMIT 1"
            let last = try database.query(lastQuery.preparedOnce()).first
            var previous = try last?.decode(String.self, "seal") ?? AuditChain.genesis
            let lastID = try last?.decode(Int.self, "audit_id") ?? 0
            let pending: PostgresQuery = """
                SELECT id, audit_canonical(a) AS canonical FROM audit_events a
                WHERE id > \(lastID) AND occurred_at < clock_timestamp() - make_interval(secs => \(horizonSeconds))
                ORDER BY id LIMIT \(limit)
                """
            var ids: [String] = []
            var seals: [String] = []
            for row in try database.query(pending.preparedOnce()) {
                previous = AuditChain.seal(previous: previous, canonical: try row.decode(String.self, "canonical"), key: keys.current)
                ids.append(String(try row.decode(Int.self, "id")))
                seals.append(previous)
            }
            guard !ids.isEmpty else { return 0 }
            let insert: PostgresQuery = """
                INSERT INTO audit_seals (audit_id, seal, key_id)
                SELECT id, seal, \(keys.current.id) FROM unnest(\("{" + ids.joined(separator: ",") + "}")::bigint[], \("{" + seals.joined(separator: ",") + "}")::text[])
                    WITH ORDINALITY AS s(id, seal, position)
                ORDER BY position
                """
            try database.query(insert)
            return ids.count
        }
    }

    /// What `verify` found.
    public struct Report: Sendable {
        public var sealed: Int
        public var unsealed: Int
        /// The first problem, naming the row; nil when the chain holds.
        public var failure: String?
    }

    /// Walks the chain from the first seal; stops at the first row that does not match.
    public func verify(batch: Int = 5000) throws -> Report {
        var previous = AuditChain.genesis
        var keyed = false
        var afterSeq = 0
        var sealed = 0
        var lastAuditID = 0
        while true {
            let query: PostgresQuery = """
                SELECT s.seq, s.audit_id, s.seal, s.key_id, CASE WHEN a.id IS NULL THEN NULL ELSE audit_canonical(a) END AS canonical
                FROM audit_seals s LEFT JOIN audit_events a ON a.id = s.audit_id
                WHERE s.seq > \(afterSeq) ORDER BY s.seq LIMIT \(batch)
                """
            let rows = try database.query(query)
            if rows.isEmpty { break }
            for row in rows {
                let id = try row.decode(Int.self, "audit_id")
                let stored = try row.decode(String.self, "seal")
                guard let canonical = try row.decode(String?.self, "canonical") else {
                    return Report(sealed: sealed, unsealed: try unsealed(after: lastAuditID), failure: "audit row \(id) was deleted (its seal has no row)")
                }
                guard id > lastAuditID else {
                    return Report(sealed: sealed, unsealed: try unsealed(after: lastAuditID), failure: "the seal of audit row \(id) is out of order")
                }
                let expected: String
                let keyID = try row.decode(String?.self, "key_id")
                if keyID == nil && keyed {
                    return Report(sealed: sealed, unsealed: try unsealed(after: lastAuditID),
                                  failure: "the seal of audit row \(id) is unkeyed, after the chain was keyed")
                }
                keyed = keyed || keyID != nil
                if let keyID {
                    guard let key = keys.key(id: keyID) else {
                        return Report(sealed: sealed, unsealed: try unsealed(after: lastAuditID),
                                      failure: "the seal of audit row \(id) names key \(keyID), which VPSGATE_SECRET_KEY_FILE does not hold")
                    }
                    expected = AuditChain.seal(previous: previous, canonical: canonical, key: key)
                } else {
                    expected = AuditChain.legacySeal(previous: previous, canonical: canonical)
                }
                guard expected == stored else {
                    return Report(sealed: sealed, unsealed: try unsealed(after: lastAuditID),
                                  failure: "audit row \(id) does not match its seal (changed, or an earlier seal was altered)")
                }
                previous = stored
                lastAuditID = id
                sealed += 1
                afterSeq = try row.decode(Int.self, "seq")
            }
        }
        let inserted: PostgresQuery = """
            SELECT min(a.id) AS id FROM audit_events a
            WHERE a.id <= \(lastAuditID) AND NOT EXISTS (SELECT 1 FROM audit_seals s WHERE s.audit_id = a.id)
            """
        if let id = try database.query(inserted).first?.decode(Int?.self, "id") {
            return Report(sealed: sealed, unsealed: try unsealed(after: lastAuditID),
                          failure: "audit row \(id) was inserted into the sealed range (it has no seal)")
        }
        return Report(sealed: sealed, unsealed: try unsealed(after: lastAuditID), failure: nil)
    }

    private func unsealed(after id: Int) throws -> Int {
        let query: PostgresQuery = "SELECT count(*) AS n FROM audit_events WHERE id > \(id)"
        return try database.query(query).first?.decode(Int.self, "n") ?? 0
    }
}
