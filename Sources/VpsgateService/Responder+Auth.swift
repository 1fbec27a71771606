import FastCGI
import Platform
import VpsgateCore

/// The built-in token check and the grants behind every decision.
extension Responder {
    /// nginx's `auth_request` target: 204 with the principal in `X-Vpsgate-Principal`, or 401.
    /// Reached only through the internal location that sets `VPSGATE_INTERNAL`. A positive
    /// answer is reused by this worker for `VPSGATE_TOKEN_CACHE_MS` (never past the token's
    /// expiry); a negative one never is.
    func tokenCheck(_ request: FastCGIRequest, _ requestContext: RequestContext) -> FastCGIResponse {
        guard let token = APIToken.bearer(request.parameters["HTTP_AUTHORIZATION"]) else {
            return FastCGIResponse(status: 401)
        }
        let hash = APIToken.hash(token)
        if let principal = tokens.principal(hash) {
            return FastCGIResponse(status: 204, headers: [.init("X-Vpsgate-Principal", principal)])
        }
        do {
            guard let (principal, validFor) = try store.principal(tokenHash: hash) else { return FastCGIResponse(status: 401) }
            tokens.keep(hash, principal, for: min(context.configuration.tokenCacheMilliseconds, validFor ?? .max))
            return FastCGIResponse(status: 204, headers: [.init("X-Vpsgate-Principal", principal)])
        } catch {
            requestContext.logger.error("token check failed", metadata: ["error": "\(error)"])
            return FastCGIResponse(status: 503, headers: [.init("Retry-After", "2")])
        }
    }

    /// 404 for a resource outside the caller's grants (its existence is not revealed), 403
    /// for a missing permission (and for the account, which is no secret); returns normally
    /// when allowed.
    func authorize(_ principal: String, _ target: Target, needs permission: Permission,
                   _ requestContext: RequestContext) throws(CommandEnd) {
        let access: Access
        do {
            access = try Tracing.span("authorize") { _ throws(StoreError) in try store.access(principal, to: target, for: permission) }
        } catch {
            throw CommandEnd(unavailable(requestContext, error), .unavailable, .unavailable)
        }
        switch access {
        case .allowed: return
        case .notFound: throw refusal(.notFound, target, blocking: nil, permission: permission, audited: false, requestContext)
        case .forbidden: throw refusal(.forbidden, target, blocking: nil, permission: permission, audited: false, requestContext)
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

/// One worker's recent positive token checks (thread-confined, like the worker's connection).
final class TokenCache {
    private var entries: [String: (principal: String, until: Int)] = [:]
    static let capacity = 10_000

    /// The principal of a token hash checked within its time to keep.
    func principal(_ hash: String) -> String? {
        guard let entry = entries[hash] else { return nil }
        guard MonotonicClock.milliseconds() < entry.until else {
            entries[hash] = nil
            return nil
        }
        return entry.principal
    }

    func keep(_ hash: String, _ principal: String, for milliseconds: Int) {
        guard milliseconds > 0 else { return }
        if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        entries[hash] = (principal, MonotonicClock.milliseconds() + milliseconds)
    }
}
