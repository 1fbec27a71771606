import FastCGI
import Hostinger
import Logging
import VpsgateCore
@testable import VpsgateService

/// The store protocols in memory: scripted answers for the decisions the database makes
/// (`begin_command` decides in SQL; its own tests run against PostgreSQL), and plain
/// records of every write, so that a test sees exactly what the service asked for.
final class MemoryStore: ResponderStore, ReconcilerStore {
    var tokens: [String: (principal: String, validForMilliseconds: Int?)] = [:]
    var tokenChecks = 0
    /// principal ⇒ VPS id (nil: every VPS) ⇒ permissions.
    var grants: [String: [Int?: Set<Permission>]] = [:]
    /// Grants on other resources than a VPS: a target with a nil id stands for every one of its kind.
    var resourceGrants: [String: [Target: Set<Permission>]] = [:]
    /// Every call throws this while it is set.
    var failure: StoreError?

    var beginAnswer: BeginDecision = .proceed(createdAt: 1_780_000_000_000_000)
    var beginFailure: StoreError?
    var begun: [BeginRequest] = []
    var finishWrite: FinishWrite = .recorded
    var finished: [FinishRecord] = []
    var audits: [AuditEntry] = []
    var planAnswer = PlanVerdict(decision: .proceed, policy: nil, approvalsRequired: 0)
    var planned: [(command: String, emergency: Bool)] = []
    var decideAnswer = ApprovalOutcome(result: .approved, state: .approved, approvals: 1, approvalsRequired: 1)
    var decided: [(operationID: String, principal: String, action: ApprovalAction, reason: String?)] = []
    var approvable: [OperationRecord] = []
    var pending: [String: PendingApproval] = [:]
    var timelines: [String: [TimelineEntry]] = [:]
    var freezes: [FreezeWindow] = []
    var approvedQueue: [ApprovedDispatch] = []
    /// What `dispatchFacts` answers (nil: the operation is gone).
    var facts: DispatchFacts? = DispatchFacts(requesterHolds: true, policyApprovals: 1, approvals: [], batch: nil, released: [:])
    var refused: [(operation: OperationRecord, refusal: DispatchRefusal)] = []
    var releasedDispatches: [(claimed: ApprovedDispatch, mac: String)] = []
    var keptDigest = "-"
    var schemaState: SchemaState = .current

    var records: [String: OperationRecord] = [:]
    var refreshAllowed = true
    var settled: [(operation: OperationRecord, transition: OperationTransition, audit: AuditEntry, leaseOwner: String?)] = []
    var progress: [(id: String, actionState: String)] = []
    var claimable: [(operation: OperationRecord, checks: Int)] = []
    var databaseNow: Int64 = 1_780_000_000_000_000
    var rescheduled: [(id: String, delay: Int, actionState: String?)] = []
    var drifts: [(drift: Drift, vps: Int, operationID: String?)] = []
    var staleCandidates: [OperationRecord] = []
    var scanLease: ScanLease?
    var recentVPS: [Int] = []
    var releasedWatermark: [Int64?] = []
    /// Other operations' stray attempts, as `strayAttempts` reads them (any VPS).
    var strays: [StrayWindow] = []
    /// The event feed: each event's transaction is its id here.
    var feed: [EventRecord] = []
    /// Cursors before this event id have expired.
    var feedHorizon: Int64 = 0
    var eventReads = 0

    private func check() throws(StoreError) { if let failure { throw failure } }

    // MARK: EventStore

    func events(after cursor: EventCursor?, principal: String, scope: ReadScope, limit: Int) throws(StoreError) -> EventPage {
        try check()
        eventReads += 1
        if let cursor, cursor.id < feedHorizon { return EventPage(events: [], next: nil, expired: true) }
        let page = feed.filter { $0.id > (cursor?.id ?? feedHorizon) && ($0.vpsID.map(scope.contains) ?? false) }.prefix(limit)
        return EventPage(events: Array(page), next: page.last.map { EventCursor(transaction: UInt64($0.id), id: $0.id) } ?? cursor)
    }

    // MARK: CommandStore

    func begin(_ request: BeginRequest) throws(StoreError) -> BeginDecision {
        try check()
        if let beginFailure { throw beginFailure }
        begun.append(request)
        return beginAnswer
    }

    func finish(_ record: FinishRecord) -> FinishWrite {
        finished.append(record)
        return finishWrite
    }

    func plan(principal: String, target: Target, command: String, permission: Permission, minimumApprovals: Int, busyBoundSeconds: Int,
              emergency: Bool, reach: VPSReach) throws(StoreError) -> PlanVerdict {
        try check()
        planned.append((command, emergency))
        return planAnswer
    }

    func anyVPSFrozen() throws(StoreError) -> Bool {
        try check()
        return false
    }

    // MARK: ApprovalStore

    func decide(operationID: String, principal: String, action: ApprovalAction, reason: String?, mac: String?,
                audit: AuditEntry) throws(StoreError) -> ApprovalOutcome {
        try check()
        decided.append((operationID, principal, action, reason))
        if let state = decideAnswer.state, var record = records[operationID] {
            record.state = state
            records[operationID] = record
        }
        return decideAnswer
    }

    func awaitingApproval(approver principal: String, limit: Int) throws(StoreError) -> [OperationRecord] {
        try check()
        return approvable
    }

    func pendingApprovals(operationIDs: [String]) throws(StoreError) -> [String: PendingApproval] {
        try check()
        return pending.filter { operationIDs.contains($0.key) }
    }

    func timeline(operationID: String) throws(StoreError) -> [TimelineEntry] {
        try check()
        return timelines[operationID] ?? []
    }

    func freezeWindows() throws(StoreError) -> [FreezeWindow] {
        try check()
        return freezes
    }

    func claimApproved(limit: Int, busyBoundSeconds: Int) throws(StoreError) -> [ApprovedDispatch] {
        try check()
        defer { approvedQueue = [] }
        return approvedQueue
    }

    func keptRequestDigest(operationID: String) throws(StoreError) -> String {
        try check()
        return keptDigest
    }

    func dispatchFacts(operationID: String, permission: Permission, nonce: String?) throws(StoreError) -> DispatchFacts? {
        try check()
        return facts
    }

    func refuseDispatch(_ operation: OperationRecord, _ refusal: DispatchRefusal, audit: AuditEntry) throws(StoreError) {
        try check()
        refused.append((operation, refusal))
    }

    func releaseDispatch(_ claimed: ApprovedDispatch, mac: String) throws(StoreError) {
        try check()
        releasedDispatches.append((claimed, mac))
    }

    // MARK: AuthorizationStore

    func principal(tokenHash: String) throws(StoreError) -> (principal: String, validForMilliseconds: Int?)? {
        try check()
        tokenChecks += 1
        return tokens[tokenHash]
    }

    /// The permissions `principal` holds on `target` in this model of the grants table.
    private func held(_ principal: String, on target: Target) -> Set<Permission> {
        guard target.kind == .vps, let vps = target.id else {
            let held = resourceGrants[principal] ?? [:]
            return (held[Target(target.kind, nil)] ?? []).union(held[target] ?? [])
        }
        let held = grants[principal] ?? [:]
        return (held[nil] ?? []).union(held[vps] ?? [])
    }

    /// The answers `vpsgate_resource_decision` gives, over the grants above.
    func access(_ principal: String, to target: Target, for permission: Permission) throws(StoreError) -> Access {
        try check()
        let held = held(principal, on: target)
        if held.isEmpty { return target.kind == .account ? .forbidden : .notFound }
        return held.contains(permission) ? .allowed : .forbidden
    }

    func mayRead(_ principal: String, _ target: Target) throws(StoreError) -> Bool {
        try check()
        let held = held(principal, on: target)
        guard let permission = target.kind.readPermission else { return !held.isEmpty }
        return held.contains(permission)
    }

    func grants(of principal: String) throws(StoreError) -> [(resource: Target, role: String, permissions: [String])] {
        try check()
        return (grants[principal] ?? [:]).sorted { ($0.key ?? 0) < ($1.key ?? 0) }.map { id, held in
            (Target(.vps, id), "test", held.map(\.rawValue).sorted())
        }
    }

    func readableScope(_ principal: String, of kind: ResourceKind) throws(StoreError) -> ReadScope {
        try check()
        guard kind == .vps else {
            let held = (resourceGrants[principal] ?? [:]).filter { $0.key.kind == kind && kind.readPermission.map($0.value.contains) == true }
            return ReadScope(all: held.keys.contains { $0.id == nil }, ids: Set(held.keys.compactMap(\.id)))
        }
        let held = (grants[principal] ?? [:]).filter { $0.value.contains(.read) }
        return ReadScope(all: held.keys.contains(nil), ids: Set(held.keys.compactMap { $0 }))
    }

    // MARK: FleetStore, BatchStore (batches are tested against PostgreSQL, end to end)

    /// Slots taken, and the answer to give.
    var budgetTaken: [(priority: String, maxWait: Int)] = []
    var budgetAnswer: (granted: Bool, waitMilliseconds: Int) = (true, 0)
    var pauses: [Int] = []

    func takeBudget(name: String, intervalMicroseconds: Int, priority: String, maxWaitMilliseconds: Int) throws(StoreError)
        -> (granted: Bool, waitMilliseconds: Int) {
        try check()
        budgetTaken.append((priority, maxWaitMilliseconds))
        return budgetAnswer
    }

    func pauseBudget(name: String, milliseconds: Int, maxMilliseconds: Int) throws(StoreError) {
        try check()
        pauses.append(min(milliseconds, maxMilliseconds))
    }

    /// How long the database says a 429's pause still holds.
    var budgetPausedSeconds = 0.0

    func budgetState(name: String) throws(StoreError) -> (aheadSeconds: Double, pausedSeconds: Double) {
        try check()
        return (0, budgetPausedSeconds)
    }

    func createBatch(_ batch: NewBatch) throws(StoreError) -> BatchCreation { throw StoreError(unavailable: true, "no batches in memory") }
    func batchJSON(id: Int) throws(StoreError) -> [UInt8]? { nil }
    func batchesJSON(principal: String, limit: Int, before: Int?) throws(StoreError) -> [UInt8] { Array(#"{"data":[],"next_before":null}"#.utf8) }
    func batchAccess(id: Int, principal: String) throws(StoreError) -> BatchAccess {
        BatchAccess(exists: false, isRequester: false, readsAll: false, approvesAll: false)
    }
    func refusedTargets(principal: String, vps: [Int], permission: Permission) throws(StoreError) -> [Int] {
        var refused: [Int] = []
        for id in vps where try access(principal, to: .vps(id), for: permission) != .allowed { refused.append(id) }
        return refused
    }
    func batchSeal(id: Int) throws(StoreError) -> (seal: String?, round: Int)? { nil }
    func decideBatch(id: Int, principal: String, action: BatchAction, reason: String?, mac: String?, audit: AuditEntry) throws(StoreError)
        -> (result: String, state: String?) { ("not_found", nil) }
    func advanceBatch(owner: String, leaseSeconds: Int) throws(StoreError) -> Int? { nil }
    func expireBatches() throws(StoreError) -> Int { 0 }
    func batchCounts() throws(StoreError) -> [(state: String, count: Int)] { [] }

    // MARK: AuditStore, HealthStore

    func record(_ entry: AuditEntry) throws(StoreError) {
        try check()
        audits.append(entry)
    }

    func schema() throws(StoreError) -> SchemaState {
        try check()
        return schemaState
    }

    func gauges() throws(StoreError) -> DatabaseGauges {
        try check()
        return DatabaseGauges(operationsByState: [], oldestOpenSeconds: 0, stale: 0, unsealedAuditRows: 0)
    }

    func insertBenchmarkRow() throws(StoreError) { try check() }

    // MARK: OperationStore

    func operation(id: String) throws(StoreError) -> OperationRecord? {
        try check()
        return records[id]
    }

    func operations(_ filter: OperationFilter) throws(StoreError) -> [OperationRecord] {
        try check()
        return records.values.filter { record in record.vpsID.map { filter.readable?.contains($0) ?? true } ?? false }.sorted { $0.createdAt > $1.createdAt }
    }

    func claimRefresh(id: String, intervalMilliseconds: Int) throws(StoreError) -> Bool {
        try check()
        return refreshAllowed
    }

    func settle(_ operation: OperationRecord, _ transition: OperationTransition, audit: AuditEntry,
                leaseOwner: String?) throws(StoreError) -> OperationRecord? {
        try check()
        guard records[operation.id].map({ $0.state == operation.state }) ?? true else { return nil }
        var updated = transition.applied(to: operation)
        updated.updatedAt = databaseNow
        updated.completedAt = updated.state.isTerminal ? databaseNow : nil
        records[operation.id] = updated
        settled.append((operation, transition, audit, leaseOwner))
        return updated
    }

    func recordProgress(_ operation: OperationRecord, actionState: String) throws(StoreError) {
        try check()
        progress.append((operation.id, actionState))
    }

    // MARK: ReconcilerStore

    func flagStale(busyBoundSeconds: Int) throws(StoreError) -> [OperationRecord] {
        try check()
        defer { staleCandidates = [] }
        return staleCandidates
    }

    func claim(owner: String, leaseSeconds: Int, graceMilliseconds: Int, limit: Int) throws(StoreError) -> Claim {
        try check()
        defer { claimable = [] }
        return Claim(operations: Array(claimable.prefix(limit)), now: claimable.isEmpty ? nil : databaseNow)
    }

    func reschedule(_ operation: OperationRecord, owner: String, delayMilliseconds: Int, actionState: String?) throws(StoreError) {
        try check()
        rescheduled.append((operation.id, delayMilliseconds, actionState))
    }

    func recordDrift(_ drift: Drift, vps: Int, operationID: String?) throws(StoreError) {
        try check()
        drifts.append((drift, vps, operationID))
    }

    func operations(holdingActions ids: [Int]) throws(StoreError) -> [Int: OperationRecord] {
        try check()
        var result: [Int: OperationRecord] = [:]
        for operation in records.values { if let id = operation.actionID, ids.contains(id) { result[id] = operation } }
        return result
    }

    func strayAttempts(vps: Int, excluding operationID: String, from: Int64, through: Int64,
                       actionIDs: [Int]) throws(StoreError) -> [StrayWindow] {
        try check()
        return strays.filter { $0.operationID != operationID }
    }

    func attribute(_ attributions: [StrayAttribution]) throws(StoreError) -> [StrayAttribution] {
        try check()
        var tied: [StrayAttribution] = []
        for attribution in attributions where !strays.contains(where: { $0.actionID == attribution.actionID }) {
            guard let index = strays.firstIndex(where: {
                $0.operationID == attribution.operationID && $0.attempt.number == attribution.attempt && $0.actionID == nil
            }) else { continue }
            strays[index].actionID = attribution.actionID
            tied.append(attribution)
        }
        return tied
    }

    func leaseScan(owner: String) throws(StoreError) -> ScanLease? {
        try check()
        return scanLease
    }

    func recentlyChangedVPS() throws(StoreError) -> [Int] {
        try check()
        return recentVPS
    }

    func releaseScan(owner: String, watermarkSeconds: Int64?) throws(StoreError) {
        try check()
        releasedWatermark.append(watermarkSeconds)
    }
}

/// Hostinger as a script: an answer per request name (and path), and a record of every call.
final class ScriptedHostinger: HostingerCalling {
    var answers: [String: HostingerResult] = [:]
    var calls: [HostingerRequest] = []

    /// Answers `name` (a request's name, or `name path` for one path only).
    func answer(_ name: String, _ result: HostingerResult) { answers[name] = result }

    func call(_ request: HostingerRequest, correlationID: CorrelationID, trace: TraceContext) -> HostingerResult {
        calls.append(request)
        return answers["\(request.name) \(request.path)"] ?? answers[request.name] ?? HostingerResult(outcome: .notSent)
    }
}

/// Builders shared by the tests.
enum Fixture {
    static let principal = "alice"

    static func context(_ environment: [String: String] = [:]) throws -> ServiceContext {
        let keys = try SecretKeyRing.parse(SecretKeyRing.generateLine(id: "k1")).get()
        return ServiceContext(configuration: try Configuration(environment: environment), migrations: [], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                              instance: "test-1", hostinger: HostingerSettings(baseURL: "https://127.0.0.1:1", token: Secret("t")),
                              circuit: HostingerCircuit(), readCircuit: HostingerCircuit(), keys: keys)
    }

    static func request(_ method: String, _ path: String, body: String? = nil, key: String? = "key-0001-abcd",
                        principal: String? = Fixture.principal, query: String = "") -> FastCGIRequest {
        var parameters = ["REQUEST_METHOD": method, "REQUEST_URI": path + (query.isEmpty ? "" : "?" + query), "QUERY_STRING": query,
                          "REQUEST_ID": "0123456789abcdef0123456789abcdef"]
        if let principal { parameters["REMOTE_USER"] = principal }
        if let key { parameters["HTTP_IDEMPOTENCY_KEY"] = key }
        return FastCGIRequest(parameters: parameters, body: body.map { Array($0.utf8) } ?? [])
    }

    static func action(_ id: Int, _ name: String, _ state: String, createdAt: String? = nil) -> HostingerAction {
        HostingerAction(id: id, name: name, state: state, createdAt: createdAt)
    }

    static func accepted(_ action: HostingerAction) -> HostingerResult {
        HostingerResult(outcome: .succeeded, status: 200, body: action.json, action: action, attempts: 1)
    }

    static func operation(_ state: OperationState, action: HostingerAction? = nil, error: JSONValue? = nil,
                          command: String = "vps.restart", createdAt: Int64 = 1_780_000_000_000_000) -> OperationRecord {
        OperationRecord(id: "0b7c1f7e-2f6a-4f7e-9a59-5f1d7c1e2a10", target: .vps(1001), command: command, state: state, actionID: action?.id,
                        actionName: action?.name, actionState: action?.state, error: error, requestedBy: principal,
                        correlationID: "0123456789abcdef0123456789abcdef", idempotencyKey: "key-0001-abcd",
                        createdAt: createdAt, updatedAt: createdAt)
    }
}

extension FastCGIResponse {
    var json: JSONValue? { try? JSONValue.parse(body) }
    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
}
