import FastCGI
import Postgres
import VpsgateCore

/// The built-in token check and the grants behind every decision.
extension Responder {
    /// nginx's `auth_request` target: 204 with the principal in `X-Vpsgate-Principal`, or 401.
    /// Reached only through the internal location that sets `VPSGATE_INTERNAL`.
    func tokenCheck(_ request: FastCGIRequest, _ requestContext: RequestContext) -> FastCGIResponse {
        guard let token = APIToken.bearer(request.parameters["HTTP_AUTHORIZATION"]) else {
            return FastCGIResponse(status: 401)
        }
        let query: PostgresQuery = """
            SELECT principal FROM api_tokens
            WHERE token_hash = \(APIToken.hash(token)) AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
            """
        do {
            guard let principal = try database.query(query.preparedOnce(), retryOnStaleConnection: true).first?.decode(String.self, "principal")
            else { return FastCGIResponse(status: 401) }
            return FastCGIResponse(status: 204, headers: [.init("X-Vpsgate-Principal", principal)])
        } catch {
            requestContext.logger.error("token check failed", metadata: ["error": "\(error)"])
            return FastCGIResponse(status: 503, headers: [.init("Retry-After", "2")])
        }
    }

    /// The permissions `principal` holds on `vps` through unexpired grants (empty: no grant at all).
    func permissions(_ principal: String, vps: Int) throws(PostgresError) -> Set<Permission> {
        let query: PostgresQuery = """
            SELECT DISTINCT rp.permission FROM grants g JOIN role_permissions rp ON rp.role = g.role
            WHERE g.principal = \(principal) AND (g.vps_id IS NULL OR g.vps_id = \(vps))
              AND (g.expires_at IS NULL OR g.expires_at > now())
            """
        var result = Set<Permission>()
        for row in try database.query(query.preparedOnce(), retryOnStaleConnection: true) {
            if let permission = Permission(rawValue: try row.decode(String.self, "permission")) { result.insert(permission) }
        }
        return result
    }

    /// Which VPS `principal` may read: every one (a `*` grant), or these ids.
    func readableScope(_ principal: String) throws(PostgresError) -> (all: Bool, ids: Set<Int>) {
        let query: PostgresQuery = """
            SELECT DISTINCT g.vps_id FROM grants g JOIN role_permissions rp ON rp.role = g.role
            WHERE g.principal = \(principal) AND rp.permission = 'vps:read'
              AND (g.expires_at IS NULL OR g.expires_at > now())
            """
        var ids = Set<Int>()
        for row in try database.query(query.preparedOnce(), retryOnStaleConnection: true) {
            guard let id = try row.decode(Int?.self, "vps_id") else { return (true, []) }
            ids.insert(id)
        }
        return (false, ids)
    }

    /// 404 for a VPS outside the caller's grants (its existence is not revealed), 403 for a
    /// missing permission, nil when allowed.
    func authorize(_ principal: String, vps: Int, needs permission: Permission, _ requestContext: RequestContext)
        throws(PostgresError) -> (FastCGIResponse, outcome: String)?
    {
        let held = try permissions(principal, vps: vps)
        if held.isEmpty { return (notFound(requestContext), "not_found") }
        if !held.contains(permission) {
            return (problem(Problem(.forbidden, status: 403, title: "Forbidden",
                                    detail: "This needs the \(permission.rawValue) permission on VPS \(vps).",
                                    instance: requestContext.path), requestContext), "denied")
        }
        return nil
    }
}
