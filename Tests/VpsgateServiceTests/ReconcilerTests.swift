import Hostinger
import Logging
import Synchronization
import Testing
import VpsgateCore
@testable import VpsgateService

/// The reconciler's worker against an in-memory store and a scripted Hostinger: every way
/// an open operation is settled, left to wait, or found in drift.
@Suite struct ReconcilerTests {
    let store = MemoryStore()
    let hostinger = ScriptedHostinger()
    var worker: Worker<MemoryStore, ScriptedHostinger>

    init() throws {
        worker = Worker(context: try Fixture.context(), store: store, hostinger: hostinger, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// Claims `operation` (checked `checks` times) and runs one pass.
    mutating func pass(_ operation: OperationRecord, checks: Int = 1, now: Int64? = nil) throws {
        store.records[operation.id] = operation
        store.claimable = [(operation, checks)]
        store.databaseNow = now ?? operation.createdAt + 1_000_000
        let stopping = Atomic<Bool>(false)
        #expect(try worker.tick(stopping: stopping) == 1)
    }

    static func list(_ actions: [HostingerAction], createdAt: String = "2026-05-28T00:00:00Z") -> HostingerResult {
        let data = JSONValue.array(actions.map { action in
            .object([("id", .number(String(action.id))), ("name", .string(action.name)), ("state", .string(action.state)),
                     ("created_at", .string(createdAt))])
        })
        return HostingerResult(outcome: .succeeded, status: 200, body: .object([("data", data)]), attempts: 1)
    }

    static let notFound = HostingerResult(outcome: .rejected, status: 404, message: "Not found", attempts: 1)

    // MARK: - An operation that knows its action

    @Test(arguments: [("success", OperationState.succeeded, AuditOutcome.succeeded), ("error", .failed, .failed)])
    mutating func anActionThatEndedSettlesTheOperation(actionState: String, state: OperationState, outcome: AuditOutcome) throws {
        let operation = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        hostinger.answer("get_action", Fixture.accepted(Fixture.action(9001, "ct_restart", actionState)))
        try pass(operation)
        let settled = try #require(store.settled.first)
        #expect(settled.transition.state == state)
        #expect(settled.transition.outcome == outcome)
        #expect(settled.transition.key == .completeIfInFlight)
        #expect(settled.leaseOwner == "test-1")
        #expect(settled.audit.kind == .reconciler)
        #expect(settled.audit.identity.principal == operation.requestedBy)
        #expect(store.records[operation.id]?.state == state)
        if state == .failed { #expect(settled.transition.error?["reason"]?.stringValue == "action_error") }
    }

    @Test mutating func anActionStillRunningIsLookedAtLaterWithBackoff() throws {
        let operation = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        hostinger.answer("get_action", Fixture.accepted(Fixture.action(9001, "ct_restart", "delayed")))
        try pass(operation, checks: 3)
        #expect(store.settled.isEmpty)
        #expect(store.rescheduled.map(\.delay) == [1000])
        #expect(store.rescheduled.first?.actionState == "delayed")
    }

    @Test func theLoopRestsUntilTheEarliestOperationIsDueWithinItsInterval() {
        #expect(Reconciler.pause(worked: 10, due: 400, interval: 500) == 0, "a full batch: more may be due")
        #expect(Reconciler.pause(worked: 0, due: nil, interval: 500) == 500, "nothing open")
        #expect(Reconciler.pause(worked: 2, due: 180, interval: 500) == 180)
        #expect(Reconciler.pause(worked: 0, due: 9_000, interval: 500) == 500, "what opens meanwhile is seen within the interval")
        #expect(Reconciler.pause(worked: 0, due: -40, interval: 500) == Reconciler.minimumPauseMilliseconds, "due now: no spin")
    }

    @Test mutating func anActionHostingerDoesNotKnowFailsTheOperationWithDrift() throws {
        let operation = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        hostinger.answer("get_action", Self.notFound)
        hostinger.answer("get_vm", Fixture.accepted(Fixture.action(1, "x", "y")))
        try pass(operation)
        let settled = try #require(store.settled.first)
        #expect(settled.transition.state == .failed)
        #expect(settled.transition.outcome == .actionUnknown)
        #expect(settled.transition.drift?.kind == .actionUnknown)
    }

    @Test mutating func aVMHostingerNoLongerKnowsFailsTheOperation() throws {
        let operation = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        hostinger.answer("get_action", Self.notFound)
        hostinger.answer("get_vm", Self.notFound)
        try pass(operation)
        let settled = try #require(store.settled.first)
        #expect(settled.transition.outcome == .vpsNotFound)
        #expect(settled.transition.drift?.kind == .vpsNotFound)
        #expect(settled.transition.error?["reason"]?.stringValue == "vps_not_found")
    }

    @Test mutating func aFailedReadSaysNothingAndIsRetried() throws {
        let operation = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        hostinger.answer("get_action", HostingerResult(outcome: .failed, status: 503))
        try pass(operation)
        #expect(store.settled.isEmpty)
        #expect(store.rescheduled.count == 1)
    }

    @Test mutating func anOperationSomeoneElseMovedFirstIsLeftAlone() throws {
        let operation = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        hostinger.answer("get_action", Fixture.accepted(Fixture.action(9001, "ct_restart", "success")))
        store.records[operation.id] = operation
        store.claimable = [(operation, 1)]
        var moved = operation
        moved.state = .failed
        store.records[operation.id] = moved
        let stopping = Atomic<Bool>(false)
        _ = try worker.tick(stopping: stopping)
        #expect(store.settled.isEmpty)
        #expect(store.records[operation.id]?.state == .failed)
    }

    // MARK: - A lost answer

    /// 2026-05-28T00:00:00Z, when the scripted list's actions were created.
    static let listTime: Int64 = 1_779_926_400 * 1_000_000

    @Test mutating func theActionTheCommandCausedIsAdopted() throws {
        let operation = Fixture.operation(.unknown, createdAt: Self.listTime)
        hostinger.answer("list_actions", Self.list([Fixture.action(9001, "ct_restart", "sent")]))
        try pass(operation)
        let settled = try #require(store.settled.first)
        #expect(settled.transition.outcome == .adopted)
        #expect(settled.transition.state == .running)
        #expect(settled.transition.action?.id == 9001)
    }

    @Test mutating func anActionAnotherOperationHoldsIsNotAdoptedTwice() throws {
        let operation = Fixture.operation(.unknown, createdAt: Self.listTime)
        var holder = Fixture.operation(.running, action: Fixture.action(9001, "ct_restart", "sent"))
        holder.id = "11111111-2222-4333-8444-555566667777"
        store.records[holder.id] = holder
        hostinger.answer("list_actions", Self.list([Fixture.action(9001, "ct_restart", "sent")]))
        try pass(operation)
        #expect(store.settled.allSatisfy { $0.transition.outcome != .adopted })
    }

    @Test mutating func nothingInTheWindowWhileItIsOpenWaits() throws {
        let operation = Fixture.operation(.unknown, createdAt: Self.listTime)
        hostinger.answer("list_actions", Self.list([]))
        try pass(operation, now: Self.listTime + 1_000_000)
        #expect(store.settled.isEmpty)
        #expect(store.rescheduled.count == 1)
    }

    @Test mutating func nothingInTheWholeClosedWindowIsNotApplied() throws {
        let operation = Fixture.operation(.unknown, createdAt: Self.listTime)
        hostinger.answer("list_actions", Self.list([]))
        try pass(operation, now: Self.listTime + 3_600_000_000)
        let settled = try #require(store.settled.first)
        #expect(settled.transition.outcome == .notApplied)
        #expect(settled.transition.state == .failed)
    }

    @Test mutating func anActionItCannotTieToTheOperationLeavesItInDoubt() throws {
        let operation = Fixture.operation(.accepted, createdAt: Self.listTime)
        hostinger.answer("list_actions", Self.list([Fixture.action(9002, "something_else", "success")]))
        try pass(operation, now: Self.listTime + 3_600_000_000)
        let settled = try #require(store.settled.first)
        #expect(settled.transition.outcome == .ambiguous)
        #expect(settled.transition.state == .unknown)
        #expect(settled.transition.nextCheckMilliseconds == OperationLifecycle.ambiguousRecheckMilliseconds)
        #expect(settled.transition.error?["candidates"]?.arrayValue?.count == 1)
    }

    /// Another operation's restart attempt answered 503, a second before the list's actions.
    static func strayRestart(tied: Int? = nil) -> StrayWindow {
        StrayWindow(operationID: "11111111-2222-4333-8444-555566667777",
                    attempt: StrayAttempt(number: 1, startedAt: listTime - 1_000_000, endedAt: listTime - 800_000),
                    names: ["ct_restart", "restart"], actionID: tied)
    }

    @Test mutating func anActionAnotherOperationsStrayAttemptLeftIsTiedToItAndRulesNothingOut() throws {
        let operation = Fixture.operation(.unknown, command: "vps.snapshot.create", createdAt: Self.listTime)
        store.strays = [Self.strayRestart()]
        hostinger.answer("list_actions", Self.list([Fixture.action(9003, "ct_restart", "success")]))
        try pass(operation, now: Self.listTime + 3_600_000_000)
        let settled = try #require(store.settled.first)
        #expect(settled.transition.outcome == .notApplied)
        #expect(settled.transition.state == .failed)
        #expect(store.strays.map(\.actionID) == [9003])
    }

    @Test mutating func anOperationInDoubtIsSettledOnceTheCandidateIsTiedToAStrayAttempt() throws {
        let operation = Fixture.operation(.unknown, error: .object([("reason", .string("ambiguous"))]), command: "vps.snapshot.create",
                                          createdAt: Self.listTime)
        store.strays = [Self.strayRestart(tied: 9003)]
        hostinger.answer("list_actions", Self.list([Fixture.action(9003, "ct_restart", "success")]))
        try pass(operation, now: Self.listTime + 3_600_000_000)
        #expect(store.settled.first?.transition.outcome == .notApplied)
    }

    @Test mutating func aRestartInDoubtIsNeverSettledByAnotherRestartsStrayAttempt() throws {
        // Its own command produces ct_restart: the action may be its own, and it is adopted.
        let operation = Fixture.operation(.unknown, createdAt: Self.listTime)
        store.strays = [Self.strayRestart()]
        hostinger.answer("list_actions", Self.list([Fixture.action(9003, "ct_restart", "success")]))
        try pass(operation, now: Self.listTime + 3_600_000_000)
        #expect(store.settled.first?.transition.outcome == .adopted)
        #expect(store.strays.map(\.actionID) == [nil])
    }

    @Test mutating func anOperationAlreadyInDoubtStaysSoAndIsLookedAtNowAndThen() throws {
        let operation = Fixture.operation(.unknown, error: .object([("reason", .string("ambiguous"))]), createdAt: Self.listTime)
        hostinger.answer("list_actions", Self.list([Fixture.action(9002, "something_else", "success")]))
        try pass(operation, now: Self.listTime + 3_600_000_000)
        #expect(store.settled.isEmpty)
        #expect(store.rescheduled.map(\.delay) == [OperationLifecycle.ambiguousRecheckMilliseconds])
    }

    @Test mutating func aListThatCannotBeReadIsRetried() throws {
        let operation = Fixture.operation(.unknown, createdAt: Self.listTime)
        hostinger.answer("list_actions", HostingerResult(outcome: .failed, status: 500))
        try pass(operation)
        #expect(store.settled.isEmpty)
        #expect(store.rescheduled.count == 1)
    }

    @Test mutating func aLostAnswerOnAVMThatIsGoneFailsTheOperation() throws {
        let operation = Fixture.operation(.unknown, createdAt: Self.listTime)
        hostinger.answer("list_actions", Self.notFound)
        hostinger.answer("get_vm", Self.notFound)
        try pass(operation)
        #expect(try #require(store.settled.first).transition.outcome == .vpsNotFound)
    }

    // MARK: - Stale operations and the drift scan

    @Test mutating func staleOperationsAreFlaggedAtMostOnceASecond() throws {
        store.staleCandidates = [Fixture.operation(.running)]
        let stopping = Atomic<Bool>(false)
        #expect(try worker.tick(stopping: stopping) == 0)
        #expect(store.staleCandidates.isEmpty)
        // The next pass within the second does not look; one after it does.
        store.staleCandidates = [Fixture.operation(.running)]
        #expect(try worker.tick(stopping: stopping) == 0)
        #expect(store.staleCandidates.count == 1)
        worker.staleFlaggedAt -= Worker<MemoryStore, ScriptedHostinger>.staleCheckMilliseconds
        #expect(try worker.tick(stopping: stopping) == 0)
        #expect(store.staleCandidates.isEmpty)
    }

    @Test func theScanRecordsUnclaimedActionsAndStateMismatches() throws {
        store.scanLease = ScanLease(watermarkSeconds: Self.listTime / 1_000_000 - 10, now: Self.listTime + 3_600_000_000)
        store.recentVPS = [1001]
        var failed = Fixture.operation(.failed, action: Fixture.action(9001, "ct_restart", "sent"))
        failed.actionState = "error"
        store.records[failed.id] = failed
        hostinger.answer("list_actions", Self.list([Fixture.action(9001, "ct_restart", "success"), Fixture.action(9002, "ct_stop", "success")]))
        try worker.scanForUnclaimedActions()
        #expect(Set(store.drifts.map(\.drift.kind)) == [.stateMismatch, .unclaimedAction])
        #expect(store.drifts.first { $0.drift.kind == .stateMismatch }?.operationID == failed.id)
        #expect(store.releasedWatermark.count == 1 && store.releasedWatermark[0] != nil)
    }

    @Test func aScanThatCouldNotReadEveryListKeepsItsWatermark() throws {
        store.scanLease = ScanLease(watermarkSeconds: 0, now: Self.listTime)
        store.recentVPS = [1001]
        hostinger.answer("list_actions", HostingerResult(outcome: .failed, status: 500))
        try worker.scanForUnclaimedActions()
        #expect(store.releasedWatermark.count == 1 && store.releasedWatermark[0] == nil)
    }

    @Test func anotherInstanceScanningMeansNoScan() throws {
        store.scanLease = nil
        try worker.scanForUnclaimedActions()
        #expect(hostinger.calls.isEmpty)
    }
}
