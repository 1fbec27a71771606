import FastCGI
import Testing
import VpsgateCore
@testable import VpsgateService

#if canImport(Glibc)
import Glibc
#endif

/// nginx's token check: a worker reuses a positive answer for `VPSGATE_TOKEN_CACHE_MS` and
/// never past the token's expiry; a negative answer is asked again every time.
@Suite struct TokenCheckTests {
    let store = MemoryStore()
    let hostinger = ScriptedHostinger()

    func check(_ responder: inout Responder<MemoryStore, ScriptedHostinger>, _ token: String) -> FastCGIResponse {
        responder.respond(to: FastCGIRequest(parameters: ["VPSGATE_INTERNAL": "token-check", "HTTP_AUTHORIZATION": "Bearer \(token)",
                                                          "REQUEST_URI": "/_vpsgate_token_check"]))
    }

    @Test func aPositiveAnswerIsReusedForTheCacheTimeThenAskedAgain() throws {
        let token = "vpsg_" + String(repeating: "a", count: 43)
        store.tokens[APIToken.hash(token)] = ("alice", nil)
        var responder = Responder(context: try Fixture.context(["VPSGATE_TOKEN_CACHE_MS": "150"]), store: store, hostinger: hostinger)
        #expect(check(&responder, token).status == 204)
        store.tokens = [:]  // revoked
        let cached = check(&responder, token)
        #expect(cached.status == 204, "within the revocation delay")
        #expect(cached.header("X-Vpsgate-Principal") == "alice")
        #expect(store.tokenChecks == 1)
        usleep(200_000)
        #expect(check(&responder, token).status == 401, "after the delay the revocation holds")
        #expect(store.tokenChecks == 2)
    }

    @Test func aNegativeAnswerIsNeverReused() throws {
        let token = "vpsg_" + String(repeating: "b", count: 43)
        var responder = Responder(context: try Fixture.context(), store: store, hostinger: hostinger)
        #expect(check(&responder, token).status == 401)
        store.tokens[APIToken.hash(token)] = ("bob", nil)
        #expect(check(&responder, token).status == 204, "a new token works at once")
    }

    @Test func anAnswerIsNotKeptPastTheTokensExpiry() throws {
        let token = "vpsg_" + String(repeating: "c", count: 43)
        store.tokens[APIToken.hash(token)] = ("carol", 0)
        var responder = Responder(context: try Fixture.context(["VPSGATE_TOKEN_CACHE_MS": "60000"]), store: store, hostinger: hostinger)
        #expect(check(&responder, token).status == 204)
        store.tokens = [:]
        #expect(check(&responder, token).status == 401)
    }

    @Test func zeroTurnsTheCacheOff() throws {
        let token = "vpsg_" + String(repeating: "d", count: 43)
        store.tokens[APIToken.hash(token)] = ("dave", nil)
        var responder = Responder(context: try Fixture.context(["VPSGATE_TOKEN_CACHE_MS": "0"]), store: store, hostinger: hostinger)
        #expect(check(&responder, token).status == 204)
        store.tokens = [:]
        #expect(check(&responder, token).status == 401)
    }
}
