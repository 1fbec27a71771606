import FastCGI
import Hostinger
import Testing
import VpsgateCore
@testable import VpsgateService

/// Reads of operations: the refresh from Hostinger goes through the same lifecycle and the
/// same `settle` as the reconciler's moves.
@Suite struct ResponderReadTests {
    let store = MemoryStore()
    let hostinger = ScriptedHostinger()
    let responder: Responder<MemoryStore, ScriptedHostinger>

    init() throws {
        store.grants = [Fixture.principal: [1001: [.read]]]
        responder = Responder(context: try Fixture.context(), store: store, hostinger: hostinger)
    }

    func get(_ path: String, principal: String? = Fixture.principal) -> FastCGIResponse {
        var responder = self.responder
        return responder.respond(to: Fixture.request("GET", path, key: nil, principal: principal))
    }

    @Test func aRunningOperationWhoseActionSucceededIsSettledWithACompletionRow() throws {
        let operation = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        store.records[operation.id] = operation
        hostinger.answer("get_action", Fixture.accepted(Fixture.action(9001, "ct_restart", "success")))
        let response = get(operation.location)
        #expect(response.status == 200)
        #expect(response.json?["state"]?.stringValue == "succeeded")
        let settled = try #require(store.settled.first)
        #expect(settled.transition.outcome == .succeeded)
        #expect(settled.audit.kind == .completion)
        #expect(settled.audit.identity.principal == Fixture.principal)
        #expect(settled.leaseOwner == nil)
    }

    @Test func anActionStillRunningIsProgressWithoutAuditRow() throws {
        let operation = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        store.records[operation.id] = operation
        hostinger.answer("get_action", Fixture.accepted(Fixture.action(9001, "ct_restart", "delayed")))
        let response = get(operation.location)
        #expect(response.json?["hostinger_action"]?["state"]?.stringValue == "delayed")
        #expect(store.progress.map(\.actionState) == ["delayed"])
        #expect(store.settled.isEmpty)
    }

    @Test func anotherInstanceRefreshedRecentlySoHostingerIsNotAsked() {
        let operation = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        store.records[operation.id] = operation
        store.refreshAllowed = false
        #expect(get(operation.location).status == 200)
        #expect(hostinger.calls.isEmpty)
    }

    @Test func aTerminalOperationIsServedFromTheDatabaseOnly() {
        let operation = Fixture.operation(.succeeded, action: Fixture.action(9001, "ct_restart", "success"))
        store.records[operation.id] = operation
        #expect(get(operation.location).status == 200)
        #expect(hostinger.calls.isEmpty)
    }

    @Test func anOperationOnAVPSOutsideTheGrantsIsNotFound() {
        var operation = Fixture.operation(.running)
        operation.target = .vps(2002)
        store.records[operation.id] = operation
        #expect(get(operation.location).status == 404)
    }

    @Test(arguments: ["/v1/operations/not-a-uuid", "/v1/vps/0", "/v1/vps/01", "/v1/vps/1001/nothing", "/v2/vps"])
    func malformedIdsAndUnknownPathsAreNotFound(path: String) {
        #expect(get(path).status == 404)
        #expect(hostinger.calls.isEmpty)
    }

    @Test(arguments: [("/v1/vps/1001/actions/abc", "", "actionId"), ("/v1/vps/1001/actions/0", "", "actionId"),
                      ("/v1/vps/1001/metrics", "", "date_from"), ("/v1/vps/1001/metrics", "date_from=2025-05-01T00:00:00Z", "date_to"),
                      ("/v1/vps/1001/metrics", "date_from=2025-05-01&date_to=2025-05-02T00:00:00Z", "date_from"),
                      ("/v1/vps/1001/metrics", "date_from=2025-05-02T00:00:00Z&date_to=2025-05-01T00:00:00Z", "date_to")])
    func badPathParametersAndMetricTimesAreRefusedWithTheirNameAndNothingIsSent(path: String, query: String, field: String) {
        var responder = self.responder
        let response = responder.respond(to: Fixture.request("GET", path, key: nil, principal: Fixture.principal, query: query))
        #expect(response.status == 422)
        #expect(response.json?["errors"]?[field] != nil)
        #expect(hostinger.calls.isEmpty)
    }

    @Test func metricTimesArePassedOnAsGiven() {
        var responder = self.responder
        _ = responder.respond(to: Fixture.request("GET", "/v1/vps/1001/metrics", key: nil, principal: Fixture.principal,
                                                  query: "date_from=2025-05-01T00:00:00+02:00&date_to=2025-05-02T00%3A00%3A00.25Z"))
        #expect(hostinger.calls.map(\.path) == ["/api/vps/v1/virtual-machines/1001/metrics?date_from=2025-05-01T00:00:00%2B02:00&date_to=2025-05-02T00:00:00.25Z"])
    }

    @Test func readsNeedAPrincipal() {
        #expect(get("/v1/operations", principal: nil).status == 401)
    }

    @Test func aTimelineFollowsTheOperationsReadRule() {
        var hidden = Fixture.operation(.running)
        hidden.target = .vps(2002)
        store.records[hidden.id] = hidden
        store.timelines[hidden.id] = [TimelineEntry(source: "audit", kind: "received", at: 1)]
        #expect(get(hidden.location + "/timeline").status == 404)
        let shown = Fixture.operation(.succeeded)
        store.records[shown.id] = shown
        store.timelines[shown.id] = [TimelineEntry(source: "audit", kind: "received", at: 1, principal: "<b>x</b>"),
                                     TimelineEntry(source: "event", kind: "operation.succeeded", at: 2)]
        let response = get(shown.location + "/timeline")
        #expect(response.status == 200)
        #expect(response.json?["operation"]?["id"]?.stringValue == shown.id)
        #expect(response.json?["data"]?.arrayValue?.map { $0["kind"]?.stringValue ?? "" } == ["received", "operation.succeeded"])
        #expect(Responder<MemoryStore, ScriptedHostinger>.routeLabel(method: "GET", path: shown.location + "/timeline")
                    == "GET /v1/operations/{operationId}/timeline")
    }

    @Test(arguments: ["since=yesterday", "until=2026-02-30T00:00:00Z", "since=2026-01-01T00:00:00", "command=vps.explode",
                      "resource=planet:1", "requester="])
    func badOperationFiltersAreRefusedWithTheirName(query: String) {
        var responder = self.responder
        let response = responder.respond(to: Fixture.request("GET", "/v1/operations", key: nil, principal: Fixture.principal, query: query))
        #expect(response.status == 422)
        let field = String(query.prefix { $0 != "=" })
        #expect(response.json?["errors"]?[field] != nil)
    }

    @Test func timesAreReadAsInstants() {
        typealias R = Responder<MemoryStore, ScriptedHostinger>
        #expect(R.timestamp("1970-01-01T00:00:00Z") == 0)
        #expect(R.timestamp("2026-12-04T16:07:34.5Z") == 1_796_400_454_500_000)
        #expect(R.timestamp("2026-12-04T18:07:34.5+02:00") == 1_796_400_454_500_000)
        #expect(R.timestamp("2024-02-29T00:00:00Z") != nil)
        #expect(R.timestamp("2026-12-04 16:07:34Z") == nil)
        #expect(R.timestamp("2026-12-04T16:07:34.1234567Z") == nil)
    }

    @Test(arguments: [
        ("GET", "/v1/vps", "GET /v1/vps"), ("GET", "/v1/vps/12", "GET /v1/vps/{id}"), ("GET", "/v1/vps/12/actions", "GET /v1/vps/{id}/actions"),
        ("GET", "/v1/operations", "GET /v1/operations"), ("GET", "/healthz", "/healthz"), ("POST", "/v1/vps/12/restart", "vps.restart"),
        ("POST", "/v1/vps/12/actions", "other"), ("GET", "/nowhere", "other"),
    ])
    func routeLabelsAreBounded(method: String, path: String, label: String) {
        #expect(Responder<MemoryStore, ScriptedHostinger>.routeLabel(method: method, path: path) == label)
    }
}
