import FastCGI
import VpsgateCore

/// The built-in token check and the grants behind every decision.
extension Responder {
    /// nginx's `auth_request` target: 204 with the principal in `X-Vpsgate-Principal`, or 401.
    /// Reached only through the internal location that sets `VPSGATE_INTERNAL`.
    func tokenCheck(_ request: FastCGIRequest, _ requestContext: RequestContext) -> FastCGIResponse {
        guard let token = APIToken.bearer(request.parameters["HTTP_AUTHORIZATION"]) else {
            return FastCGIResponse(status: 401)
        }
        do {
            guard let principal = try store.principal(tokenHash: APIToken.hash(token)) else { return FastCGIResponse(status: 401) }
            return FastCGIResponse(status: 204, headers: [.init("X-Vpsgate-Principal", principal)])
        } catch {
            requestContext.logger.error("token check failed", metadata: ["error": "\(error)"])
            return FastCGIResponse(status: 503, headers: [.init("Retry-After", "2")])
        }
    }

    /// 404 for a VPS outside the caller's grants (its existence is not revealed), 403 for a
    /// missing permission; returns normally when allowed.
    func authorize(_ principal: String, vps: Int, needs permission: Permission,
                   _ requestContext: RequestContext) throws(CommandEnd) {
        let held: Set<Permission>
        do {
            held = try store.permissions(principal, vps: vps)
        } catch {
            throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
        }
        // The same answers as begin_command's grant check gives.
        if held.isEmpty { throw refusal(.notFound, vps: vps, blocking: nil, permission: permission, audited: false, requestContext) }
        if !held.contains(permission) {
            throw refusal(.forbidden, vps: vps, blocking: nil, permission: permission, audited: false, requestContext)
        }
    }
}

/// A request that ends before or without Hostinger: its answer, and what its audit row
/// says (`audited`: the row is already written, by `begin_command`).
struct CommandEnd: Error {
    var response: FastCGIResponse
    var outcome: AuditOutcome
    var problem: Problem.Code?
    var audited = false

    init(_ response: FastCGIResponse, _ outcome: AuditOutcome, _ problem: Problem.Code?, audited: Bool = false) {
        self.response = response
        self.outcome = outcome
        self.problem = problem
        self.audited = audited
    }
}
