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
    private func change<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
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

    /// Grants `role` on `vps` (nil: every VPS) to `principal`; replaces the expiry of an identical grant.
    public func addGrant(principal: String, vps: Int?, role: String, expiresInSeconds: Int?) throws {
        try change { database in
            guard try !database.query("SELECT 1 FROM roles WHERE name = \(role)").isEmpty else {
                let roles = try database.query("SELECT name FROM roles ORDER BY name").map { try $0.decode(String.self, "name") }
                throw AdminError(description: "unknown role \(role); roles: \(roles.joined(separator: ", "))")
            }
            try ensurePrincipal(principal, on: database)
            try database.query("""
                INSERT INTO grants (principal, vps_id, role, expires_at, created_by)
                VALUES (\(principal), \(vps), \(role),
                        CASE WHEN \(expiresInSeconds)::int IS NULL THEN NULL ELSE now() + make_interval(secs => \(expiresInSeconds)) END, \(actor))
                ON CONFLICT (principal, coalesce(vps_id, 0), role) DO UPDATE SET expires_at = EXCLUDED.expires_at
                """)
        }
    }

    public func revokeGrant(principal: String, vps: Int?, role: String?) throws -> Int {
        try change { database in
            let rows = try database.query("""
                DELETE FROM grants WHERE principal = \(principal) AND vps_id IS NOT DISTINCT FROM \(vps)
                  AND (\(role)::text IS NULL OR role = \(role)) RETURNING id
                """)
            guard !rows.isEmpty else { throw AdminError(description: "no such grant") }
            return rows.count
        }
    }

    public func listGrants() throws -> [[String]] {
        try database.query("""
            SELECT id::text, principal, coalesce(vps_id::text, '*') AS vps, role, coalesce(expires_at::text, '-') AS expires,
                   CASE WHEN expires_at < now() THEN 'expired' ELSE 'active' END AS status
            FROM grants ORDER BY principal, id
            """).map { row in try ["id", "principal", "vps", "role", "expires", "status"].map { try row.decode(String.self, $0) } }
    }

    private func ensurePrincipal(_ name: String, on database: PostgresConnection) throws {
        try database.query("INSERT INTO principals (name) VALUES (\(name)) ON CONFLICT DO NOTHING")
    }
}
