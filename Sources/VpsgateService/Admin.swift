import Postgres
import VpsgateCore

/// The admin commands behind `vpsgate token …` and `vpsgate grant …`. Every change writes
/// an `admin` audit row in the same transaction.
public struct Admin {
    let database: PostgresConnection
    /// Who made the change (the operator running the CLI).
    let actor: String
    let instance: String

    public init(database: PostgresConnection, actor: String, instance: String) {
        self.database = database
        self.actor = actor
        self.instance = instance
    }

    public struct AdminError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates a token for `principal` (creating the principal if new); returns the token, shown once.
    public func createToken(principal: String, expiresInSeconds: Int?) throws -> String {
        let token = APIToken.generate()
        let hint = String(token.prefix(9)) + "…"
        try database.transaction { database in
            try ensurePrincipal(principal, on: database)
            try database.query("""
                INSERT INTO api_tokens (principal, token_hash, hint, created_by, expires_at)
                VALUES (\(principal), \(APIToken.hash(token)), \(hint), \(actor),
                        CASE WHEN \(expiresInSeconds)::int IS NULL THEN NULL ELSE now() + make_interval(secs => \(expiresInSeconds)) END)
                """)
            try audit("admin.token.create", .object([("principal", .string(principal)), ("hint", .string(hint)),
                                                     ("expires_in_seconds", expiresInSeconds.map { .number(String($0)) } ?? .null)]), on: database)
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
        try database.transaction { database in
            let rows = try database.query("UPDATE api_tokens SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL RETURNING principal")
            guard let principal = try rows.first?.decode(String.self, "principal") else {
                throw AdminError(description: "no active token with id \(id)")
            }
            try audit("admin.token.revoke", .object([("token_id", .number(String(id))), ("principal", .string(principal))]), on: database)
        }
    }

    /// Grants `role` on `vps` (nil: every VPS) to `principal`; replaces the expiry of an identical grant.
    public func addGrant(principal: String, vps: Int?, role: String, expiresInSeconds: Int?) throws {
        try database.transaction { database in
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
            try audit("admin.grant.add", .object([
                ("principal", .string(principal)), ("vps", vps.map { .number(String($0)) } ?? .string("*")), ("role", .string(role)),
                ("expires_in_seconds", expiresInSeconds.map { .number(String($0)) } ?? .null),
            ]), vps: vps, on: database)
        }
    }

    public func revokeGrant(principal: String, vps: Int?, role: String?) throws -> Int {
        try database.transaction { database in
            let rows = try database.query("""
                DELETE FROM grants WHERE principal = \(principal) AND vps_id IS NOT DISTINCT FROM \(vps)
                  AND (\(role)::text IS NULL OR role = \(role)) RETURNING id
                """)
            guard !rows.isEmpty else { throw AdminError(description: "no such grant") }
            try audit("admin.grant.revoke", .object([
                ("principal", .string(principal)), ("vps", vps.map { .number(String($0)) } ?? .string("*")),
                ("role", role.map { .string($0) } ?? .null), ("removed", .number(String(rows.count))),
            ]), vps: vps, on: database)
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

    private func audit(_ command: String, _ parameters: JSONValue, vps: Int? = nil, on database: PostgresConnection) throws {
        try database.query("""
            INSERT INTO audit_events (kind, instance, principal, auth_type, command, vps_id, request_params, outcome)
            VALUES ('admin', \(instance), \(actor), 'cli', \(command), \(vps), \(parameters.text())::jsonb, 'applied')
            """)
    }
}
