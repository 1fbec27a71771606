import Postgres

/// What a serving instance's database role must not be able to do (docs/design.md#trust-boundaries).
public enum DatabaseRoleCheck {
    /// Why the connected role is unfit to serve (a superuser, the schema's owner, or a role
    /// that can change grants or tokens), or nil when it is fit. Throws when the schema is
    /// not there yet or the database cannot be reached.
    public static func problem(on database: PostgresConnection) throws(PostgresError) -> String? {
        let query: PostgresQuery = """
            SELECT r.rolsuper AS superuser,
                   pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = 'audit_events'::regclass), 'MEMBER') AS owner,
                   has_table_privilege('grants', 'INSERT') OR has_table_privilege('grants', 'UPDATE')
                       OR has_table_privilege('api_tokens', 'INSERT') OR has_table_privilege('api_tokens', 'UPDATE') AS grantor,
                   current_user::text AS name
            FROM pg_roles r WHERE r.rolname = current_user
            """
        guard let row = try database.query(query).first else { return nil }
        let name = try row.decode(String.self, "name")
        if try row.decode(Bool.self, "superuser") { return "connects as \(name), a superuser" }
        if try row.decode(Bool.self, "owner") { return "connects as \(name), which owns the schema" }
        if try row.decode(Bool.self, "grantor") { return "connects as \(name), which can change grants or tokens" }
        return nil
    }
}
