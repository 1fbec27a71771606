import Postgres
import VpsgateCore

/// `vpsgate webhook …`: endpoints (their changes audited by the database's trigger) and
/// the deliveries operators look at and send again.
extension Admin {
    /// Adds an endpoint for `principal` (which must exist) with its sealed signing key;
    /// returns its id.
    public func addWebhook(principal: String, url: String, events: [String]?, vps: Int?, sealedSecret: [UInt8],
                           keyID: String) throws -> Int {
        try change { database in
            guard try !database.query("SELECT 1 FROM principals WHERE name = \(principal)").isEmpty else {
                throw AdminError(description: "no principal \(principal); grant it a role first (vpsgate grant add)")
            }
            let eventsText = events.map { SQLText.array($0) }
            return try database.query("""
                INSERT INTO webhook_endpoints (principal, url, events, vps_id, sealed_secret, key_id, created_by)
                VALUES (\(principal), \(url), \(eventsText)::text[], \(vps), \(SQLText.bytea(sealedSecret))::bytea, \(keyID), \(actor))
                RETURNING id
                """).first?.decode(Int.self, "id") ?? 0
        }
    }

    public func listWebhooks() throws -> [[String]] {
        try database.query("""
            SELECT w.id::text AS id, w.principal, w.url, coalesce(array_to_string(w.events, ','), '*') AS events,
                   coalesce(w.vps_id::text, '*') AS vps, w.state || coalesce(' (' || w.disabled_reason || ')', '') AS state,
                   (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.state = 'pending')::text AS pending,
                   (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.state = 'failed')::text AS failed
            FROM webhook_endpoints w ORDER BY w.id
            """).map { row in try ["id", "principal", "url", "events", "vps", "state", "pending", "failed"].map { try row.decode(String.self, $0) } }
    }

    /// Disables (`enabled` false) or enables an endpoint. A disabled endpoint's pending
    /// deliveries wait; enabling it sends them.
    public func setWebhook(id: Int, enabled: Bool) throws {
        try change { database in
            let rows = try database.query("""
                UPDATE webhook_endpoints SET state = \(enabled ? "active" : "disabled"),
                    disabled_at = CASE WHEN \(enabled) THEN NULL ELSE now() END,
                    disabled_reason = CASE WHEN \(enabled) THEN NULL ELSE 'disabled by ' || \(actor) END
                WHERE id = \(id) RETURNING id
                """)
            guard !rows.isEmpty else { throw AdminError(description: "no webhook endpoint with id \(id)") }
        }
    }

    public func removeWebhook(id: Int) throws {
        try change { database in
            guard try !database.query("DELETE FROM webhook_endpoints WHERE id = \(id) RETURNING id").isEmpty else {
                throw AdminError(description: "no webhook endpoint with id \(id)")
            }
        }
    }

    public func listDeliveries(endpoint: Int?, state: String?, limit: Int) throws -> [[String]] {
        try database.query("""
            SELECT id::text AS id, webhook_id, endpoint_id::text AS endpoint, event_type, coalesce(vps_id::text, '-') AS vps, state,
                   attempts::text AS attempts, coalesce(last_status::text, '-') AS status, coalesce(last_error, '-') AS error,
                   to_char(coalesce(delivered_at, next_attempt_at), 'YYYY-MM-DD HH24:MI:SS') AS at
            FROM webhook_delivery_status
            WHERE (\(endpoint)::bigint IS NULL OR endpoint_id = \(endpoint)) AND (\(state)::text IS NULL OR state = \(state))
            ORDER BY id DESC LIMIT \(limit)
            """).map { row in
            try ["id", "webhook_id", "endpoint", "event_type", "vps", "state", "attempts", "status", "error", "at"].map { try row.decode(String.self, $0) }
        }
    }

    /// Sends again one delivery, or every failed delivery of an endpoint; returns how many.
    public func redeliver(delivery: Int?, endpoint: Int?) throws -> Int {
        try change { database in
            try database.query("SELECT redeliver_webhooks(\(delivery)::bigint, \(endpoint)::bigint) AS moved").first?.decode(Int.self, "moved") ?? 0
        }
    }
}
