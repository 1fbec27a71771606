import FastCGI
import Platform
import Testing

#if canImport(Glibc)
import Glibc
#endif
import VpsgateCore
@testable import VpsgateService

/// Waiting reads and the event feed against in-memory stores; the board that wakes them.
@Suite struct PushTests {
    let store = MemoryStore()
    let hostinger = ScriptedHostinger()

    init() {
        store.grants = [Fixture.principal: [1001: [.read]]]
    }

    func responder(_ environment: [String: String] = [:]) throws -> Responder<MemoryStore, ScriptedHostinger> {
        Responder(context: try Fixture.context(environment), store: store, hostinger: hostinger)
    }

    func get(_ path: String, query: String, _ environment: [String: String] = [:]) throws -> FastCGIResponse {
        var responder = try self.responder(environment)
        return responder.respond(to: Fixture.request("GET", path, key: nil, query: query))
    }

    func event(_ id: Int64, vps: Int) -> EventRecord {
        EventRecord(id: id, type: "operation.accepted", occurredAt: 1_780_000_000_000_000, vpsID: vps, operationID: nil, data: Array("{}".utf8))
    }

    // MARK: Wait

    @Test func aTerminalOperationIsAnsweredAtOnceWithoutTakingAPlace() throws {
        let operation = Fixture.operation(.succeeded)
        store.records[operation.id] = operation
        let started = MonotonicClock.milliseconds()
        let response = try get(operation.location, query: "wait=30", ["VPSGATE_MAX_WAITERS": "0"])
        #expect(response.status == 200 && response.header("Retry-After") == nil)
        #expect(MonotonicClock.milliseconds() - started < 1000)
    }

    @Test func withNoPlaceLeftAWaitAnswersTheStateAtOnceWithRetryAfter() throws {
        let operation = Fixture.operation(.accepted)
        store.records[operation.id] = operation
        let response = try get(operation.location, query: "wait=30", ["VPSGATE_MAX_WAITERS": "0"])
        #expect(response.status == 200)
        #expect(response.json?["state"]?.stringValue == "accepted")
        #expect(response.header("Retry-After") == "1")
    }

    @Test func aWaitEndsAtItsSecondsWithTheStateThen() throws {
        let operation = Fixture.operation(.accepted)
        store.records[operation.id] = operation
        let started = MonotonicClock.milliseconds()
        let response = try get(operation.location, query: "wait=1")
        let took = MonotonicClock.milliseconds() - started
        #expect(response.status == 200 && response.json?["state"]?.stringValue == "accepted")
        #expect(took >= 950 && took < 3000)
    }

    @Test(arguments: ["51", "-1", "x", "1.5", "007"])
    func aWaitOutsideZeroToFiftyIsRefused(_ wait: String) throws {
        let operation = Fixture.operation(.accepted)
        store.records[operation.id] = operation
        let response = try get(operation.location, query: "wait=\(wait)")
        #expect(response.status == 422)
        #expect(response.json?["errors"]?["wait"] != nil)
    }

    // MARK: Feed

    @Test func theFeedShowsOnlyReadableVPSAndItsNextCursor() throws {
        store.feed = [event(1, vps: 1001), event(2, vps: 1002), event(3, vps: 1001)]
        let response = try get("/v1/events", query: "limit=10")
        #expect(response.status == 200)
        let data = try #require(response.json?["data"]?.arrayValue)
        #expect(data.map { $0["id"]?.stringValue } == ["evt_1", "evt_3"])
        #expect(response.json?["next"]?.stringValue == EventCursor(transaction: 3, id: 3).description)
        let next = try get("/v1/events", query: "after=\(EventCursor(transaction: 3, id: 3))")
        #expect(next.json?["data"]?.arrayValue?.isEmpty == true)
        #expect(next.json?["next"]?.stringValue == EventCursor(transaction: 3, id: 3).description)
    }

    @Test func anExpiredCursorIs410() throws {
        store.feed = [event(5, vps: 1001)]
        store.feedHorizon = 4
        let response = try get("/v1/events", query: "after=\(EventCursor(transaction: 1, id: 1))")
        #expect(response.status == 410)
        #expect(response.json?["type"]?.stringValue == "https://vpsgate.dev/docs/problems#cursor-expired")
    }

    @Test func aCursorTheFeedDidNotGiveIs422() throws {
        let response = try get("/v1/events", query: "after=12")
        #expect(response.status == 422)
        #expect(response.json?["errors"]?["after"] != nil)
        #expect(store.eventReads == 0)
    }

    @Test func anEmptyPageWaitsItsSecondsAndReadsAgain() throws {
        let started = MonotonicClock.milliseconds()
        let response = try get("/v1/events", query: "wait=1")
        #expect(response.status == 200)
        #expect(MonotonicClock.milliseconds() - started >= 950)
        #expect(store.eventReads >= 2)
    }

    @Test func theFeedNeedsAPrincipal() throws {
        var responder = try self.responder()
        let response = responder.respond(to: Fixture.request("GET", "/v1/events", key: nil, principal: nil))
        #expect(response.status == 401)
    }

    // MARK: Board

    @Test func theBoardBoundsItsPlaces() {
        let board = PushBoard(maxWaiters: 2)
        #expect(board.enter() && board.enter())
        #expect(!board.enter())
        #expect(board.waitingRequests == 2)
        board.leave()
        #expect(board.enter())
    }

    @Test func aChangeToTheWatchedOperationWakesItsWaiter() throws {
        let board = PushBoard(maxWaiters: 4)
        let seen = board.watch("op-1")
        let other = try OSThread.spawn(name: "test-notify") {
            usleep(100_000)
            board.changed("op-2")
            usleep(100_000)
            board.changed("op-1")
        }
        let started = MonotonicClock.milliseconds()
        let now = board.wait(for: "op-1", after: seen, until: started + 5000)
        let took = MonotonicClock.milliseconds() - started
        other.join()
        #expect(now > seen)
        #expect(took >= 150 && took < 2000)
        board.unwatch("op-1")
    }

    @Test func aWaiterForAnyEventIsWokenByAnyChange() throws {
        let board = PushBoard(maxWaiters: 4)
        let seen = board.watch(nil)
        let other = try OSThread.spawn(name: "test-notify") {
            usleep(100_000)
            board.changed("op-9")
        }
        let started = MonotonicClock.milliseconds()
        let now = board.wait(for: nil, after: seen, until: started + 5000)
        other.join()
        #expect(now > seen)
        #expect(MonotonicClock.milliseconds() - started < 2000)
        #expect(board.broadcasts == 1)
    }

    /// The webhook senders sleep on `deliveries`: a change that owes none, to an operation
    /// nobody waits for, wakes nobody; one that owes deliveries wakes them.
    @Test func onlyAChangeSomeoneWaitsForWakesTheSleepers() throws {
        let board = PushBoard(maxWaiters: 4)
        let seen = board.watch(PushBoard.deliveries)
        let other = try OSThread.spawn(name: "test-notify") {
            usleep(50_000)
            for _ in 0..<100 { board.changed("op-\(Int.random(in: 0..<1000))") }
            board.changed("op-1", deliveries: true)
        }
        let now = board.wait(for: PushBoard.deliveries, after: seen, until: MonotonicClock.milliseconds() + 5000)
        other.join()
        #expect(now > seen)
        #expect(board.broadcasts == 1)
        board.unwatch(PushBoard.deliveries)
    }

    @Test func aWaitWithNoChangeEndsAtItsDeadline() {
        let board = PushBoard(maxWaiters: 4)
        let seen = board.watch("op-1")
        let started = MonotonicClock.milliseconds()
        #expect(board.wait(for: "op-1", after: seen, until: started + 200) == seen)
        #expect(MonotonicClock.milliseconds() - started >= 190)
    }

    @Test func aChangeBeforeTheWaitIsNotLost() {
        let board = PushBoard(maxWaiters: 4)
        let seen = board.watch("op-1")
        board.changed("op-1")
        let started = MonotonicClock.milliseconds()
        #expect(board.wait(for: "op-1", after: seen, until: started + 5000) > seen)
        #expect(MonotonicClock.milliseconds() - started < 100)
    }

    @Test func listeningAgainWakesEveryone() {
        let board = PushBoard(maxWaiters: 4)
        let seen = board.watch("op-1")
        board.changedAll()
        #expect(board.wait(for: "op-1", after: seen, until: MonotonicClock.milliseconds() + 1000) > seen)
    }
}
