import Testing
import VpsgateCore

@testable import VpsgateClient

/// Clients read a problem's code from its `type`: the URL's fragment now, the URN's last part
/// in answers stored before (a replay is the stored answer, byte for byte).
@Suite struct ProblemCodeTests {
    func answer(_ type: String) -> Answer {
        Answer(status: 409, headers: [], body: .object([("type", .string(type)), ("title", .string("t")), ("status", .number("409"))]))
    }

    @Test func theCodeIsTheFragmentOfTheTypeURL() {
        #expect(answer("https://vpsgate.dev/docs/problems#idempotency-key-in-use").problemCode == "idempotency-key-in-use")
        #expect(answer("https://docs.example.com:8443/v/problems#vps-busy").problemCode == "vps-busy")
    }

    @Test func theOlderURNStillGivesItsCode() {
        #expect(answer("urn:vpsgate:problem:idempotency-key-in-use").problemCode == "idempotency-key-in-use")
    }

    @Test func anythingElseHasNoCode() {
        #expect(answer("about:blank").problemCode == nil)
        #expect(Answer(status: 500, headers: [], body: nil).problemCode == nil)
    }
}
