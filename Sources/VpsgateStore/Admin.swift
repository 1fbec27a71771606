import Postgres
import VpsgateCore

/// The admin commands behind `vpsgate token …` and `vpsgate grant …`, connected as the
/// `vpsgate_admin` role. The database itself writes an `admin` audit row for every change
/// (a trigger, whoever makes it), naming the database role that made it and the actor this
/// session claims.
public struct Admin {
    let database: PostgresConnection
    /// Who says they made the change (the operator running the CLI): recorded as claimed.
    let actor: String

    public init(database: PostgresConnection, actor: String) {
        self.database = database
        self.actor = actor
    }

    /// Runs `body` in a transaction whose changes the audit trigger attributes to `actor`.
    func change<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try database.transaction { database in
            try database.query("SELECT set_config('vpsgate.actor', \(actor), true)")
            return try body(database)
        }
    }

    public struct AdminError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates a token for `principal` (creating the principal if new); returns the token, shown once.
    public func createToken(principal: String, expiresInSeconds: Int?) throws -> String {
        let token = APIToken.generate()
        let hint = String(token.prefix(9)) + "…"
        try change { database in
            try ensurePrincipal(principal, on: database)
            try database.query("""
                INSERT INTO api_tokens (principal, token_hash, hint, created_by, expires_at)
                VALUES (\(principal), \(APIToken.hash(token)), \(hint), \(actor),
                        CASE WHEN \(expiresInSeconds)::int IS NULL THEN NULL ELSE now() + make_interval(secs => \(expiresInSeconds)) END)
                """)
        }
        return token
    }

    public func listTokens() throws -> [[String]] {
        try database.query("""
            SELECT id::text, principal, hint, created_at::text, coalesce(expires_at::text, '-') AS expires,
                   CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at < now() THEN 'expired' ELSE 'active' END AS status
            FROM api_tokens ORDER BY id
            """).map { row in try ["id", "principal", "hint", "created_at", "expires", "status"].map { try row.decode(String.self, $0) } }
    }

    public func revokeToken(id: Int) throws {
        try change { database in
            let rows = try database.query("UPDATE api_tokens SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL RETURNING principal")
            guard rows.first != nil else { throw AdminError(description: "no active token with id \(id)") }
        }
    }

    /// Grants `role` on `resource` (an id of nil: every resource of its kind) to `principal`;
    /// replaces the expiry of an identical grant.
    public func addGrant(principal: String, resource: Target, role: String, expiresInSeconds: Int?) throws {
        try change { database in
            guard try !database.query("SELECT 1 FROM roles WHERE name = \(role)").isEmpty else {
                let roles = try database.query("SELECT name FROM roles ORDER BY name").map { try $0.decode(String.self, "name") }
                throw AdminError(description: "unknown role \(role); roles: \(roles.joined(separator: ", "))")
            }
            try ensurePrincipal(principal, on: database)
            try database.query("""
                INSERT INTO grants (principal, resource_type, resource_id, role, expires_at, created_by)
                VALUES (\(principal), \(resource.kind.rawValue), \(resource.id)::bigint, \(role),
                        CASE WHEN \(expiresInSeconds)::int IS NULL THEN NULL ELSE now() + make_interval(secs => \(expiresInSeconds)) END, \(actor))
                ON CONFLICT (principal, resource_type, coalesce(resource_id, 0), role) DO UPDATE SET expires_at = EXCLUDED.expires_at
                """)
        }
    }

    public func revokeGrant(principal: String, resource: Target, role: String?) throws -> Int {
        try change { database in
            let rows = try database.query("""
                DELETE FROM grants WHERE principal = \(principal) AND resource_type = \(resource.kind.rawValue)
                  AND resource_id IS NOT DISTINCT FROM \(resource.id)::bigint
                  AND (\(role)::text IS NULL OR role = \(role)) RETURNING id
                """)
            guard !rows.isEmpty else { throw AdminError(description: "no such grant") }
            return rows.count
        }
    }

    public func listGrants() throws -> [[String]] {
        try database.query("""
            SELECT id::text, principal,
                   CASE WHEN resource_type = 'account' THEN 'account' ELSE resource_type || ':' || coalesce(resource_id::text, '*') END AS resource,
                   role, coalesce(expires_at::text, '-') AS expires,
                   CASE WHEN expires_at < now() THEN 'expired' ELSE 'active' END AS status
            FROM grants ORDER BY principal, id
            """).map { row in try ["id", "principal", "resource", "role", "expires", "status"].map { try row.decode(String.self, $0) } }
    }

    // MARK: - Change control (docs/design.md#change-control)

    /// Sets the approvals `subject` (a permission or a command name) needs on `vps` (nil:
    /// every VPS), replacing the row for the same subject and scope. `requireReason`: a
    /// command it covers without a `Vpsgate-Reason` is refused (`reason-required`).
    public func setPolicy(subject: String, vps: Int?, approvals: Int, ttlSeconds: Int, requireReason: Bool = false) throws {
        guard (0...5).contains(approvals) else { throw AdminError(description: "--approvals takes 0 to 5") }
        guard (60...30 * 86_400).contains(ttlSeconds) else { throw AdminError(description: "--ttl takes 1 minute to 30 days") }
        try change { database in
            let known = try database.query("""
                SELECT 1 FROM permissions WHERE name = \(subject)
                """)
            guard !known.isEmpty || Command.named(subject) != nil else { throw AdminError(description: "unknown subject \(subject): a permission (vps:destroy) or a command (vps.recreate)") }
            try database.query("""
                INSERT INTO approval_policies (subject, vps_id, approvals, ttl, created_by, require_reason)
                VALUES (\(subject), \(vps), \(approvals), make_interval(secs => \(ttlSeconds)), \(actor), \(requireReason))
                ON CONFLICT (subject, coalesce(vps_id, 0)) DO UPDATE SET approvals = EXCLUDED.approvals, ttl = EXCLUDED.ttl,
                    require_reason = EXCLUDED.require_reason, created_by = EXCLUDED.created_by, created_at = now()
                """)
        }
    }

    /// Removes the policy row for `subject` on `vps`.
    public func removePolicy(subject: String, vps: Int?) throws {
        try change { database in
            let rows = try database.query("""
                DELETE FROM approval_policies WHERE subject = \(subject) AND vps_id IS NOT DISTINCT FROM \(vps) RETURNING id
                """)
            guard !rows.isEmpty else { throw AdminError(description: "no such policy") }
        }
    }

    public func listPolicies() throws -> [[String]] {
        try database.query("""
            SELECT id::text, subject, coalesce(vps_id::text, '*') AS vps, approvals::text, ttl::text,
                   CASE WHEN require_reason THEN 'yes' ELSE 'no' END AS reason, created_by
            FROM approval_policies ORDER BY subject, vps_id NULLS FIRST
            """).map { row in try ["id", "subject", "vps", "approvals", "ttl", "reason", "created_by"].map { try row.decode(String.self, $0) } }
    }

    /// Adds a freeze window on `vps` (nil: every VPS) from `startsInSeconds` (0: now) for
    /// `durationSeconds`; returns its id.
    public func addFreeze(vps: Int?, startsInSeconds: Int, durationSeconds: Int, reason: String) throws -> Int {
        guard durationSeconds > 0 else { throw AdminError(description: "--for takes a positive duration") }
        guard (1...500).contains(reason.count) else { throw AdminError(description: "--reason takes 1 to 500 characters") }
        return try change { database in
            try database.query("""
                INSERT INTO freeze_windows (vps_id, starts_at, ends_at, reason, created_by)
                VALUES (\(vps), clock_timestamp() + make_interval(secs => \(startsInSeconds)),
                        clock_timestamp() + make_interval(secs => \(startsInSeconds + durationSeconds)), \(reason), \(actor))
                RETURNING id
                """).first?.decode(Int.self, "id") ?? 0
        }
    }

    public func removeFreeze(id: Int) throws {
        try change { database in
            guard try !database.query("DELETE FROM freeze_windows WHERE id = \(id) RETURNING id").isEmpty else {
                throw AdminError(description: "no freeze with id \(id)")
            }
        }
    }

    public func listFreezes() throws -> [[String]] {
        try database.query("""
            SELECT id::text, coalesce(vps_id::text, '*') AS vps, starts_at::text AS starts, ends_at::text AS ends,
                   CASE WHEN ends_at <= now() THEN 'over' WHEN starts_at > now() THEN 'upcoming' ELSE 'active' END AS status,
                   reason, created_by
            FROM freeze_windows ORDER BY starts_at
            """).map { row in try ["id", "vps", "starts", "ends", "status", "reason", "created_by"].map { try row.decode(String.self, $0) } }
    }

    private func ensurePrincipal(_ name: String, on database: PostgresConnection) throws {
        try database.query("INSERT INTO principals (name) VALUES (\(name)) ON CONFLICT DO NOTHING")
    }
}
