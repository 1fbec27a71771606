import Hostinger
import Logging
import Platform
import Synchronization
import VpsgateCore
import VpsgateStore

/// Settles operations from Hostinger's own records (docs/design.md#operations-follow-hostinger), in every instance.
///
/// Work is shared through PostgreSQL: a batch of operations is leased with
/// `FOR UPDATE SKIP LOCKED` and an expiry, so each is worked by one instance at a time and
/// a dead instance's leases simply run out. `running` operations follow their action;
/// `unknown` ones, and `accepted` ones whose instance went quiet past the grace period, are
/// matched against the VPS's action list: found ⇒ adopted and followed; absent after the
/// settling window ⇒ `failed` with `not_applied`. The reconciler never sends a mutation.
public final class Reconciler: Sendable {
    private let context: ServiceContext
    private let loop = BackgroundLoop()

    static let batchSize = 10
    static let leaseSeconds = 30

    public init(context: ServiceContext) {
        self.context = context
    }

    struct State {
        var worker: Worker<PostgresStore, HostingerClient>
        var lastScan = 0
    }

    /// Starts the loop on a thread of its own; it owns its database connection and curl handle.
    public func start() {
        let context = self.context
        loop.start(setUp: {
            var logger = context.logger
            logger[metadataKey: "component"] = "reconciler"
            let store = context.makeStore(role: "reconciler")
            // Its reads settle commands: they come before clients' reads in the budget; the
            // drift scan's do not.
            let client = context.makeHostingerClient(logger: context.logger, budgetStore: store, readPriority: .command)
            // Background work may wait for a slot as long as the call's deadline allows.
            client.budgetWaitMilliseconds = context.configuration.hostingerDeadlineMilliseconds / 2
            var worker = Worker(context: context, store: store, hostinger: client, logger: logger)
            worker.scanner = context.makeHostingerClient(logger: context.logger, budgetStore: store, readPriority: .read)
            return State(worker: worker)
        }, pass: { state, stopping in
            var worked = 0
            var due: Int?
            do {
                worked = try state.worker.advanceBatches(stopping: stopping)
                worked += try state.worker.dispatchApproved(stopping: stopping)
                worked += try state.worker.tick(stopping: stopping)
                let now = MonotonicClock.milliseconds()
                if now - state.lastScan >= context.configuration.driftScanIntervalMilliseconds {
                    state.lastScan = now
                    try state.worker.scanForUnclaimedActions()
                }
                if worked < Self.batchSize {
                    due = try state.worker.store.nextCheckDue(graceMilliseconds: context.configuration.reconcileGraceMilliseconds)
                }
            } catch {
                state.worker.logger.warning("reconciler: pass failed", metadata: ["error": "\(error)"])
            }
            return Self.pause(worked: worked, due: due, interval: context.configuration.reconcileIntervalMilliseconds)
        })
    }

    /// The shortest pause between passes: an operation due now that another instance holds
    /// (its row locked) does not make the loop spin.
    static let minimumPauseMilliseconds = 20

    /// How long the loop rests after a pass: none after a full batch (more may be due); else
    /// until the earliest open operation is due (`due` milliseconds from now, nil: none
    /// open), at least `minimumPauseMilliseconds` and at most `interval`, which also bounds
    /// how late an operation another request or instance opened meanwhile is first seen.
    static func pause(worked: Int, due: Int?, interval: Int) -> Int {
        if worked >= batchSize { return 0 }
        return min(max(due ?? interval, minimumPauseMilliseconds), interval)
    }

    /// Asks the loop to stop and waits (bounded) for it to finish its current item.
    public func stop(timeoutMilliseconds: Int = 5000) {
        loop.stop(timeoutMilliseconds: timeoutMilliseconds)
    }
}

/// The reconciler's thread-confined state and its steps: it reads Hostinger, asks
/// `ReconcileDecision` what that means, and has the store apply it.
struct Worker<Store: ReconcilerStore, Upstream: HostingerCalling> {
    let context: ServiceContext
    let store: Store
    let hostinger: Upstream
    /// The drift scan's client (its reads are clients' reads in the budget); nil: `hostinger`.
    var scanner: Upstream?
    var logger: Logger
    /// The database's clock, read with each claim, and the monotonic time it was read at:
    /// every time the reconciler compares is the database's (docs/design.md#trust-boundaries).
    private var databaseClock: (microseconds: Int64, readAt: Int64) = (0, Clock.monotonicMicroseconds())
    /// Dispatch rests until then (monotonic milliseconds) after a request went unsent, for
    /// `dispatchRest` milliseconds, doubled while Hostinger stays out of reach.
    private var dispatchRestsUntil = 0
    private var dispatchRest = 0
    /// When the stale operations were last flagged (monotonic milliseconds).
    var staleFlaggedAt = Int.min / 2
    /// How often the busy bound (minutes) is checked: not on every pass, which under load
    /// comes every few milliseconds on each instance.
    static var staleCheckMilliseconds: Int { 1000 }

    init(context: ServiceContext, store: Store, hostinger: Upstream, logger: Logger) {
        self.context = context
        self.store = store
        self.hostinger = hostinger
        self.logger = logger
    }

    /// Now, by the database's clock (microseconds since the epoch).
    func databaseNow() -> Int64 { databaseClock.microseconds + (Clock.monotonicMicroseconds() - databaseClock.readAt) }

    // MARK: - One pass

    /// Flags stale operations (at most once a second), then leases and settles a batch;
    /// returns how many it looked at.
    mutating func tick(stopping: borrowing Atomic<Bool>) throws(StoreError) -> Int {
        let now = MonotonicClock.milliseconds()
        if now - staleFlaggedAt >= Self.staleCheckMilliseconds {
            staleFlaggedAt = now
            for operation in try store.flagStale(busyBoundSeconds: context.configuration.busyBoundSeconds) {
                logger.error("reconciler: operation stale, no longer blocks its VPS", metadata: ["operation_id": "\(operation.id)"])
            }
        }
        let claim = try store.claim(owner: context.instance, leaseSeconds: Reconciler.leaseSeconds,
                                    graceMilliseconds: context.configuration.reconcileGraceMilliseconds, limit: Reconciler.batchSize)
        if let now = claim.now { databaseClock = (now, Clock.monotonicMicroseconds()) }
        for (operation, checks) in claim.operations {
            if stopping.load(ordering: .acquiring) { break }
            do {
                // Each look is a trace of its own, linked to the request that made the operation.
                try Tracing.background("reconcile", tracer: context.tracer, linkedTo: operation.traceparent) { span throws(StoreError) in
                    span?.set("vpsgate.operation.id", operation.id)
                    span?.set("vpsgate.command", operation.command)
                    span?.set("vpsgate.operation.state", operation.state.rawValue)
                    try apply(step(operation, checks: checks), to: operation)
                }
            } catch {
                logger.warning("reconciler: could not settle", metadata: ["operation_id": "\(operation.id)", "error": "\(error)"])
            }
        }
        return claim.operations.count
    }

    /// What Hostinger says about `operation`, decided.
    func step(_ operation: OperationRecord, checks: Int) throws(StoreError) -> ReconcileStep {
        let correlation = CorrelationID(validating: operation.correlationID)
        let trace = Tracing.trace ?? TraceContext(continuing: nil)
        guard let vps = operation.vpsID else {
            let deletes = Command.named(operation.command).map { $0.method == "DELETE" && $0.pathSuffix.isEmpty } ?? false
            let read = deletes ? readResource(operation.target, correlation, trace) : .unreadable("no read settles \(operation.command)")
            return ReconcileDecision.resourceAnswerLost(operation, deletes: deletes, read: read, checks: checks)
        }
        if let actionID = operation.actionID {
            let result = hostinger.call(.action(vm: vps, id: actionID), correlationID: correlation, trace: trace)
            let read: ActionRead
            if result.outcome == .rejected && result.status == 404 {
                read = virtualMachineIsGone(operation, correlation, trace) ?? .actionMissing(message: result.message)
            } else if result.outcome == .succeeded, let action = result.body.flatMap(HostingerAction.init(json:)) {
                read = .found(action)
            } else {
                read = .failed(result.outcome.rawValue)
            }
            return ReconcileDecision.following(operation, read: read, checks: checks)
        }

        // No action known: the answer was lost. Read Hostinger's list back over the window.
        let latestDispatch = operation.sentAt + Int64(context.configuration.hostingerDeadlineMilliseconds) * 1000
        let windowStart = operation.sentAt / 1_000_000 - 2
        var actions: [HostingerAction] = []
        var coversWindow = false
        for page in 1...Self.maximumActionPages {
            let result = hostinger.call(.actions(vm: vps, page: page), correlationID: correlation, trace: trace)
            if result.outcome == .rejected && result.status == 404 && page == 1,
                let gone = virtualMachineIsGone(operation, correlation, trace) {
                return ReconcileDecision.following(operation, read: gone, checks: checks)
            }
            guard result.outcome == .succeeded, let list = result.body.flatMap(HostingerActionPage.init(json:)) else {
                return .later(delayMilliseconds: ReconcileDecision.backoffMilliseconds(checks: checks), actionState: nil,
                              reason: "action list read failed: \(result.outcome.rawValue)")
            }
            actions += list.actions
            if list.isLast || list.reachesBack(to: windowStart) {
                coversWindow = true
                break
            }
        }
        let windowClosesAt = latestDispatch + Int64(context.configuration.settleWindowMilliseconds) * 1000
        // Other operations' attempts that may have left an action no operation holds; the
        // margin reaches every attempt whose window, widened by the skew, meets this one.
        let margin: Int64 = 5_000_000
        let strays = try store.strayAttempts(vps: vps, excluding: operation.id, from: operation.sentAt - margin,
                                             through: latestDispatch + margin, actionIDs: actions.map(\.id))
        let verdict = ActionMatcher.verdict(
            command: operation.command, createdAt: operation.sentAt, latestDispatch: latestDispatch, actions: actions,
            adopted: Set(try store.operations(holdingActions: actions.map(\.id)).keys), strays: strays,
            windowClosed: databaseNow() >= windowClosesAt, listCoversWindow: coversWindow)
        var decision = verdict.decision
        if !verdict.attributions.isEmpty {
            let tied = try store.attribute(verdict.attributions)
            for attribution in tied {
                logger.info("reconciler: action tied to a stray attempt", metadata: [
                    "operation_id": "\(attribution.operationID)", "attempt": "\(attribution.attempt)",
                    "hostinger_action_id": "\(attribution.actionID)", "for_operation_id": "\(operation.id)",
                ])
            }
            // Tied elsewhere meanwhile (another instance): that tie explains it as well. One
            // not tied at all no longer rules anything out: look again.
            if case .notApplied = decision, tied.count < verdict.attributions.count {
                let again = try store.strayAttempts(vps: vps, excluding: operation.id, from: operation.sentAt - margin,
                                                    through: latestDispatch + margin, actionIDs: actions.map(\.id))
                let explained = Set(again.compactMap(\.actionID))
                if !verdict.attributions.allSatisfy({ explained.contains($0.actionID) }) { decision = .wait }
            }
        }
        return ReconcileDecision.lostAnswer(operation, decision: decision, listCoversWindow: coversWindow, checks: checks)
    }

    static var maximumActionPages: Int { 5 }

    /// Whether Hostinger still shows a firewall, script or key (keys have no read of their
    /// own: the account's list is searched, five pages at most).
    private func readResource(_ target: Target, _ correlation: CorrelationID, _ trace: TraceContext) -> ResourceRead {
        guard let id = target.id else { return .unreadable("nothing to read") }
        if let request = target.hostingerRead {
            let result = hostinger.call(request, correlationID: correlation, trace: trace)
            if result.outcome == .succeeded { return .present }
            if result.outcome == .rejected && result.status == 404 { return .absent }
            return .unreadable(result.outcome.rawValue)
        }
        guard target.kind == .publicKey else { return .unreadable("nothing to read") }
        for page in 1...Self.maximumActionPages {
            let result = hostinger.call(.listPublicKeys(page: page), correlationID: correlation, trace: trace)
            guard result.outcome == .succeeded, let keys = result.body?["data"]?.arrayValue else { return .unreadable(result.outcome.rawValue) }
            if keys.contains(where: { $0["id"]?.intValue == id }) { return .present }
            if keys.isEmpty || (result.body?["meta"]?["total"]?.intValue).map({ page * max(keys.count, 1) >= $0 }) == true { return .absent }
        }
        return .unreadable("the key list is longer than five pages")
    }

    /// Hostinger is the source of truth: a 404 for the VM itself means it is gone.
    private func virtualMachineIsGone(_ operation: OperationRecord, _ correlation: CorrelationID, _ trace: TraceContext) -> ActionRead? {
        guard let vps = operation.vpsID else { return nil }
        let vm = hostinger.call(.virtualMachine(vps), correlationID: correlation, trace: trace)
        return vm.outcome == .rejected && vm.status == 404 ? .vpsGone(message: vm.message) : nil
    }

    /// Has the store apply a step.
    func apply(_ step: ReconcileStep, to operation: OperationRecord) throws(StoreError) {
        switch step {
        case .later(let delay, let actionState, let reason):
            try store.reschedule(operation, owner: context.instance, delayMilliseconds: delay, actionState: actionState)
            if let reason {
                logger.warning("reconciler: not settled yet", metadata: ["operation_id": "\(operation.id)", "reason": "\(reason)", "retry_ms": "\(delay)"])
            }
        case .apply(let transition):
            if let drift = transition.drift {
                logger.warning("reconciler: drift", metadata: [
                    "kind": "\(drift.kind.rawValue)", "operation_id": "\(operation.id)",
                    "hostinger_action_id": "\(drift.actionID.map(String.init) ?? "-")",
                ])
            }
            let audit = AuditEntry.reconciler(transition.applied(to: operation), outcome: transition.outcome)
            guard let settled = try store.settle(operation, transition, audit: audit, leaseOwner: context.instance) else { return }
            logger.info("reconciler: settled", metadata: [
                "operation_id": "\(operation.id)", "resource": "\(operation.target.text)", "command": "\(operation.command)",
                "from": "\(operation.state.rawValue)", "to": "\(settled.state.rawValue)", "outcome": "\(transition.outcome.rawValue)",
                "hostinger_action_id": "\(settled.actionID.map(String.init) ?? "-")",
                "age_ms": "\((settled.updatedAt - operation.createdAt) / 1000)",
            ])
        }
    }

    // MARK: - Approved operations

    /// Sends approved operations whose turn has come (docs/design.md#change-control), each exactly once:
    /// the store moves each to `accepted` as it hands it over, so no other instance can
    /// take it, and a dispatcher that dies leaves it to the lost-answer rules.
    /// Advances due batches (docs/design.md#the-shared-budget), one at a time under a lease: their children
    /// start as approved operations, which `dispatchApproved` sends.
    mutating func advanceBatches(stopping: borrowing Atomic<Bool>) throws(StoreError) -> Int {
        var advanced = 0
        while advanced < Reconciler.batchSize, !stopping.load(ordering: .acquiring),
              try store.advanceBatch(owner: context.instance, leaseSeconds: Reconciler.leaseSeconds) != nil {
            advanced += 1
        }
        return advanced
    }

    /// Claims approved operations one at a time and sends each at once: a claimed operation
    /// counts as sent from its claim, so it must not wait behind others for the budget
    /// (another instance would take it for a lost answer past the grace period). One that
    /// certainly was not sent (the breaker open, no budget, no connection) is put back to
    /// wait, and dispatch rests a while before it claims again.
    mutating func dispatchApproved(stopping: borrowing Atomic<Bool>) throws(StoreError) -> Int {
        var dispatched = 0
        while dispatched < Reconciler.batchSize, !stopping.load(ordering: .acquiring), MonotonicClock.milliseconds() >= dispatchRestsUntil {
            // Under a limit, claim only when the budget's next slot is near: a claimed
            // operation that waited past the bound would come back unsent.
            if context.configuration.hostingerRateLimit != nil,
               try store.budgetState(name: SharedBudget<Store>.name(context)).aheadSeconds > 1 {
                break
            }
            let claimed = try store.claimApproved(limit: 1, busyBoundSeconds: context.configuration.busyBoundSeconds)
            guard let approved = claimed.first else { break }
            dispatched += 1
            // A trace of its own, linked to the request that asked for the operation (a batch
            // child's: the batch's request).
            let outcome = try Tracing.background("dispatch", tracer: context.tracer, linkedTo: approved.operation.traceparent) {
                span throws(StoreError) in
                span?.set("vpsgate.operation.id", approved.operation.id)
                span?.set("vpsgate.command", approved.operation.command)
                return try dispatch(approved)
            }
            if outcome == .notSent {
                dispatchRest = min(max(dispatchRest * 2, 500), 30_000)
                dispatchRestsUntil = MonotonicClock.milliseconds() + dispatchRest
                break
            }
            dispatchRest = 0
        }
        return dispatched
    }

    /// Verifies a claimed operation (`DispatchCheck`) and sends the call derived from its kept
    /// input, or refuses it unsent; returns how the call ended (nil: refused).
    private func dispatch(_ approved: ApprovedDispatch) throws(StoreError) -> CallOutcome? {
        let operation = approved.operation
        // The claim stamped `dispatched_at` a moment ago: the anchor of this call's times.
        let claimedAt = (microseconds: operation.sentAt, monotonic: Clock.monotonicMicroseconds())
        var audit = AuditEntry.reconciler(operation, outcome: .refused)
        audit.kind = .dispatch
        let verdict: DispatchVerdict
        if let command = Command.named(operation.command),
           let facts = try store.dispatchFacts(operationID: operation.id, permission: command.permission, nonce: approved.nonce) {
            verdict = DispatchCheck.verify(approved, facts: facts, keys: context.keys)
        } else {
            verdict = .refuse(DispatchRefusal(.integrity, "The operation's command or row is not one vpsgate knows."))
        }
        guard case .send(let request) = verdict else {
            if case .refuse(let refusal) = verdict {
                try store.refuseDispatch(operation, refusal, audit: audit)
                logger.error("approved operation refused; not sent", metadata: [
                    "operation_id": "\(operation.id)", "command": "\(operation.command)", "reason": "\(refusal.reason.rawValue)",
                    "detail": "\(refusal.message)",
                ])
            }
            return nil
        }
        let result = hostinger.call(request, correlationID: CorrelationID(validating: operation.correlationID),
                                    trace: Tracing.trace ?? TraceContext(continuing: nil))
        if result.outcome == .notSent, let nonce = approved.nonce, let claim = approved.claim {
            // Certainly not sent: it waits for Hostinger (until its approval's time ends), and
            // the ledger says this claim sent nothing, under the key.
            try store.releaseDispatch(approved, mac: context.keys.mac(KeptRequest.releaseParts(nonce: nonce, claim: claim)))
            logger.warning("approved operation not sent; waits for Hostinger", metadata: [
                "operation_id": "\(operation.id)", "command": "\(operation.command)", "retry_ms": "\(result.retryAfterMilliseconds ?? 0)",
            ])
            return .notSent
        }
        let answer = DispatchAnswer(result.dispatch(answersResource: Command.named(operation.command)?.answersResource ?? false))
        var settled = answer.transition.applied(to: operation)
        settled.updatedAt = operation.updatedAt
        settled.completedAt = settled.state.isTerminal ? operation.updatedAt : nil
        audit = AuditEntry.reconciler(settled, outcome: answer.transition.outcome)
        audit.kind = .dispatch
        audit.hostingerStatus = result.status
        audit.hostingerCorrelationID = result.hostingerCorrelationID
        let write = store.finish(FinishRecord(principal: operation.requestedBy, key: operation.idempotencyKey, operation: settled,
                                              keyEffect: .store, answer: StoredAnswer(status: 202, location: nil, body: []), audit: audit,
                                              strayAttempts: result.strayAttempts(databaseClock: claimedAt)))
        if case .deferred(let reason) = write {
            logger.error("dispatch outcome not recorded yet; kept to retry", metadata: ["operation_id": "\(operation.id)", "error": "\(reason)"])
        }
        do {
            try store.record(audit)
        } catch {
            logger.error("dispatch audit row not written", metadata: ["operation_id": "\(operation.id)", "error": "\(error)"])
        }
        logger.info("approved operation dispatched", metadata: [
            "operation_id": "\(operation.id)", "resource": "\(operation.target.text)", "command": "\(operation.command)",
            "outcome": "\(answer.transition.outcome.rawValue)", "state": "\(settled.state.rawValue)",
        ])
        return result.outcome
    }

    // MARK: - Drift scan

    /// Reads the action lists of VPS with recent operations and records actions no
    /// operation caused, and terminal states Hostinger contradicts. One instance at a time.
    func scanForUnclaimedActions() throws(StoreError) {
        guard let lease = try store.leaseScan(owner: context.instance) else { return }
        // Actions younger than this may still be recorded by the instance that caused them.
        let youngest = lease.now / 1_000_000
            - Int64(context.configuration.hostingerDeadlineMilliseconds + context.configuration.settleWindowMilliseconds) / 1000
        var complete = true
        for vps in try store.recentlyChangedVPS() {
            let result = (scanner ?? hostinger).call(.actions(vm: vps, page: 1), correlationID: CorrelationID(validating: nil),
                                                     trace: TraceContext(continuing: nil))
            guard result.outcome == .succeeded, let list = result.body?["data"]?.arrayValue else {
                complete = false
                continue
            }
            let actions = list.compactMap(HostingerAction.init(json:))
            let linked = try store.operations(holdingActions: actions.map(\.id))
            for action in actions {
                guard let created = action.createdAtSeconds, created >= lease.watermarkSeconds - 60, created <= youngest else { continue }
                if let drift = DriftScan.drift(action: action, linked: linked[action.id]) {
                    try store.recordDrift(drift, vps: vps, operationID: linked[action.id]?.id)
                    logger.warning("reconciler: drift", metadata: [
                        "kind": "\(drift.kind.rawValue)", "operation_id": "\(linked[action.id]?.id ?? "-")", "hostinger_action_id": "\(action.id)",
                    ])
                }
            }
        }
        try store.releaseScan(owner: context.instance, watermarkSeconds: complete ? youngest : nil)
    }
}
