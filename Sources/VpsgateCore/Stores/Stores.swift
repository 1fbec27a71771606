/// What vpsgate needs from its database, as the core sees it: records and the decisions
/// that must be atomic with them. `VpsgateStore` implements these over PostgreSQL (and owns
/// every SQL statement); the unit tests implement them in memory.
///
/// Each store belongs to one thread (a FastCGI worker, the reconciler, the housekeeper),
/// like the connection behind it.

/// A store failure: the database could not be reached or refused the statement.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// The database is unreachable or restarting: worth a 503 and a retry.
    public var isUnavailable: Bool
    public var description: String

    public init(unavailable: Bool, _ description: String) {
        self.isUnavailable = unavailable
        self.description = description
    }
}

/// The records behind a command request.
public protocol CommandStore {
    /// One durable transaction before Hostinger is called: checks the grant, takes the key
    /// and the VPS's slot and records the operation with its `received` audit row, or
    /// refuses, or answers from what the key holds (and writes that request's final audit
    /// row). The decision is made here.
    func begin(_ request: BeginRequest) throws(StoreError) -> BeginDecision
    /// Records the end of a dispatched command: the operation's transition, the answer kept
    /// under the key (or the key freed), the final audit row. Safe to repeat. A write the
    /// database does not take now is kept and written later: no outcome is lost.
    func finish(_ record: FinishRecord) -> FinishWrite
    /// What the command would meet now (the plan): the same decision `begin` makes, read only.
    func plan(principal: String, target: Target, command: String, permission: Permission, minimumApprovals: Int, busyBoundSeconds: Int,
              emergency: Bool, reach: VPSReach) throws(StoreError) -> PlanVerdict
    /// Whether a freeze window covers some VPS of its own now: only then is it worth asking
    /// Hostinger which VPS a firewall change reaches.
    func anyVPSFrozen() throws(StoreError) -> Bool
}

/// Approvals (docs/design.md#change-control).
public protocol ApprovalStore {
    /// One decision on an operation, with its audit row, atomically (the permission is the
    /// caller's to check).
    /// `mac`: vpsgate's HMAC of the decision (`KeptRequest.approvalParts`), which dispatch verifies.
    func decide(operationID: String, principal: String, action: ApprovalAction, reason: String?, mac: String?,
                audit: AuditEntry) throws(StoreError) -> ApprovalOutcome
    /// The digest of the operation's kept request (`KeptRequest.digest`), which an approval binds.
    func keptRequestDigest(operationID: String) throws(StoreError) -> String
    /// Operations awaiting approval that `principal` may approve: `vps:approve` on their VPS,
    /// requested by someone else. Oldest first.
    func awaitingApproval(approver principal: String, limit: Int) throws(StoreError) -> [OperationRecord]
}

/// Whether `CommandStore.finish` reached the database.
public enum FinishWrite: Sendable, Equatable {
    case recorded
    /// Kept in memory and retried; `reason` for the log.
    case deferred(reason: String)
}

/// Operations as clients read them, and their settling.
public protocol OperationStore {
    func operation(id: String) throws(StoreError) -> OperationRecord?
    /// Newest first, within `filter`.
    func operations(_ filter: OperationFilter) throws(StoreError) -> [OperationRecord]
    /// Claims the right to read Hostinger for an open operation now: true at most once per
    /// `intervalMilliseconds` across every instance.
    func claimRefresh(id: String, intervalMilliseconds: Int) throws(StoreError) -> Bool
    /// Applies `transition` to `operation` if it is still in the state it was read in (and
    /// leased to `leaseOwner`, when given), with its effects and `audit`, in one transaction.
    /// Returns the operation as stored after it, or nil when someone else moved it first.
    func settle(_ operation: OperationRecord, _ transition: OperationTransition, audit: AuditEntry,
                leaseOwner: String?) throws(StoreError) -> OperationRecord?
    /// Records an open operation's action state (no transition, no audit row).
    func recordProgress(_ operation: OperationRecord, actionState: String) throws(StoreError)
}

/// Tokens and grants.
public protocol AuthorizationStore {
    /// The principal of an active token, by the token's hash, and how long it stays valid
    /// (nil: no expiry).
    func principal(tokenHash: String) throws(StoreError) -> (principal: String, validForMilliseconds: Int?)?
    /// Whether `principal`'s unexpired grants allow `permission` on `target` (the
    /// database's `vpsgate_resource_decision`, the rule `begin_command` applies).
    func access(_ principal: String, to target: Target, for permission: Permission) throws(StoreError) -> Access
    /// Whether `principal` may see what happens to `target`, its operations and events (the
    /// database's `vpsgate_may_read`, the rule the event feed and operation lists apply).
    func mayRead(_ principal: String, _ target: Target) throws(StoreError) -> Bool
    /// `principal`'s unexpired grants, each with its role's permissions (`GET /v1/me`).
    func grants(of principal: String) throws(StoreError) -> [(resource: Target, role: String, permissions: [String])]
    /// Which resources of `kind` (VPS, firewalls, …) `principal` may read.
    func readableScope(_ principal: String, of kind: ResourceKind) throws(StoreError) -> ReadScope
}

/// The audit trail's rows that are not part of another record's transaction.
public protocol AuditStore {
    func record(_ entry: AuditEntry) throws(StoreError)
}

/// What `/readyz`, `/metrics` and the benchmark read.
public protocol HealthStore {
    /// Whether every migration this build knows is applied.
    func schema() throws(StoreError) -> SchemaState
    func gauges() throws(StoreError) -> DatabaseGauges
    /// The benchmark's floor: one durable single-row insert.
    func insertBenchmarkRow() throws(StoreError)
}

/// The event feed (docs/design.md#completion-push). Events are written by the database itself, in the
/// transaction of the change they report; the store only reads them.
public protocol EventStore {
    /// Up to `limit` events after `cursor` (nil: from the oldest kept) on VPS in `scope`, in
    /// the feed's order, of transactions that can no longer commit anything before them.
    /// `scope`: the VPS whose events `principal` may read; events of other resources are
    /// shown by `principal`'s grants on them.
    func events(after cursor: EventCursor?, principal: String, scope: ReadScope, limit: Int) throws(StoreError) -> EventPage
}

/// The Hostinger budget every instance shares, and batches (docs/design.md#the-shared-budget).
public protocol FleetStore {
    /// A slot for one call under the budget `name`, spaced `intervalMicroseconds` apart (0:
    /// only a pause holds calls): granted (wait that long, then send) or not (ask again after).
    func takeBudget(name: String, intervalMicroseconds: Int, priority: String, maxWaitMilliseconds: Int) throws(StoreError)
        -> (granted: Bool, waitMilliseconds: Int)
    /// Holds every instance's calls under `name` for `milliseconds` (a 429), at most
    /// `maxMilliseconds` (and never past the database's own cap, an hour).
    func pauseBudget(name: String, milliseconds: Int, maxMilliseconds: Int) throws(StoreError)
    /// How far ahead of now the budget's next free slot is, and how long its pause still
    /// holds (seconds; 0 when none).
    func budgetState(name: String) throws(StoreError) -> (aheadSeconds: Double, pausedSeconds: Double)
}

/// Batches (docs/design.md#the-shared-budget).
public protocol BatchStore {
    /// Records a batch and its children under the key (every target's grant checked by the
    /// caller), or answers from the key.
    func createBatch(_ batch: NewBatch) throws(StoreError) -> BatchCreation
    /// The batch as `GET /v1/batches/{id}` shows it, children included.
    func batchJSON(id: Int) throws(StoreError) -> [UInt8]?
    /// `principal`'s batches, newest first, before the batch `before`.
    func batchesJSON(principal: String, limit: Int, before: Int?) throws(StoreError) -> [UInt8]
    func batchAccess(id: Int, principal: String) throws(StoreError) -> BatchAccess
    /// Of `vps`, those `principal` may not run a command needing `permission` on.
    func refusedTargets(principal: String, vps: [Int], permission: Permission) throws(StoreError) -> [Int]
    /// One decision, atomically with the batch's row and its audit row: the result
    /// (approved, recorded, denied, cancelled, resumed, self_approval, not_allowed,
    /// not_found) and the state after it.
    /// `mac`: vpsgate's HMAC of an approve or deny (`KeptRequest.approvalParts` over `batchSeal`'s seal and round).
    func decideBatch(id: Int, principal: String, action: BatchAction, reason: String?, mac: String?, audit: AuditEntry) throws(StoreError)
        -> (result: String, state: String?)
    /// The seal a batch's children are kept under and its current approval round.
    func batchSeal(id: Int) throws(StoreError) -> (seal: String?, round: Int)?
    /// Advances one due running batch (its children's ends, the halt, the next children);
    /// returns its id, or nil when none was due.
    func advanceBatch(owner: String, leaseSeconds: Int) throws(StoreError) -> Int?
    /// Batches whose approval time ran out; returns how many children it cancelled.
    func expireBatches() throws(StoreError) -> Int
    /// Batches by state, for `/metrics`.
    func batchCounts() throws(StoreError) -> [(state: String, count: Int)]
}

/// Everything a FastCGI worker uses.
public typealias ResponderStore = CommandStore & OperationStore & AuthorizationStore & AuditStore & HealthStore & ApprovalStore
    & EventStore & FleetStore & BatchStore & ConsoleStore

/// Webhook deliveries, leased by the instances' background work (docs/design.md#completion-push).
public protocol DeliveryStore {
    /// Leases up to `limit` due deliveries of active endpoints to `owner` for `leaseSeconds`,
    /// counting the attempt. No two owners hold the same delivery.
    func leaseDeliveries(owner: String, limit: Int, leaseSeconds: Int) throws(StoreError) -> [LeasedDelivery]
    /// Records an attempt's end; returns the delivery's state after it (`pending`,
    /// `delivered`, `failed`, `dropped`).
    func completeDelivery(_ id: Int64, owner: String, outcome: DeliveryOutcome, status: Int?, error: String?,
                          retryInSeconds: Double, giveUpSeconds: Int) throws(StoreError) -> String
}

/// A delivery leased for one attempt, with what sending it needs.
public struct LeasedDelivery: Sendable, Equatable {
    public var id: Int64
    /// Attempts so far, this one included.
    public var attempts: Int
    public var endpointID: Int64
    public var url: String
    public var principal: String
    /// The endpoint's signing key, sealed under the secret key `keyID`.
    public var sealedSecret: [UInt8]
    public var keyID: String
    public var event: EventRecord
    /// Whether the endpoint's principal may still read the event's VPS.
    public var readable: Bool
    /// The `traceparent` of the request that made the event's operation (nil: none known):
    /// the delivery's trace links to it.
    public var traceparent: String?

    public init(id: Int64, attempts: Int, endpointID: Int64, url: String, principal: String, sealedSecret: [UInt8], keyID: String,
                event: EventRecord, readable: Bool) {
        self.id = id
        self.attempts = attempts
        self.endpointID = endpointID
        self.url = url
        self.principal = principal
        self.sealedSecret = sealedSecret
        self.keyID = keyID
        self.event = event
        self.readable = readable
    }
}

/// The reconciler's records: leases over open operations, drift, the scan's watermark.
public protocol ReconcilerStore: CommandStore, OperationStore, AuditStore, BatchStore, FleetStore {
    /// Flags open operations older than the busy bound (they stop blocking their VPS) and
    /// writes a `stale` row for each; returns them.
    func flagStale(busyBoundSeconds: Int) throws(StoreError) -> [OperationRecord]
    /// Leases up to `limit` open operations due for a check (accepted ones only after
    /// `graceMilliseconds`), with how often each was checked, and the database's clock.
    func claim(owner: String, leaseSeconds: Int, graceMilliseconds: Int, limit: Int) throws(StoreError) -> Claim
    /// Lets go of a leased operation until `delayMilliseconds` from now, recording its action state.
    func reschedule(_ operation: OperationRecord, owner: String, delayMilliseconds: Int, actionState: String?) throws(StoreError)
    func recordDrift(_ drift: Drift, vps: Int, operationID: String?) throws(StoreError)
    /// The operations that hold any of these Hostinger action ids, by action id.
    func operations(holdingActions ids: [Int]) throws(StoreError) -> [Int: OperationRecord]
    /// The stray attempts of operations on `vps` other than `operationID` whose windows
    /// reach into `from...through` (microseconds, the database's clock), or that are tied
    /// to one of `actionIDs`.
    func strayAttempts(vps: Int, excluding operationID: String, from: Int64, through: Int64,
                       actionIDs: [Int]) throws(StoreError) -> [StrayWindow]
    /// Ties actions to stray attempts; an attempt already tied, or an action already tied
    /// elsewhere, is left as it is. Returns the ties made.
    func attribute(_ attributions: [StrayAttribution]) throws(StoreError) -> [StrayAttribution]
    /// Leases the drift scan (one instance at a time): its watermark and the database's clock.
    func leaseScan(owner: String) throws(StoreError) -> ScanLease?
    /// The VPS with operations in the last hour.
    func recentlyChangedVPS() throws(StoreError) -> [Int]
    /// Ends the scan; moves the watermark to `watermarkSeconds` when given.
    func releaseScan(owner: String, watermarkSeconds: Int64?) throws(StoreError)
    /// Takes approved operations whose turn has come (FIFO per VPS, nothing in flight on it,
    /// no freeze unless an emergency): each moves to `accepted` and is this caller's to
    /// send, exactly once. Their kept request comes with them and is deleted; each claim is
    /// a row of the dispatch ledger.
    func claimApproved(limit: Int, busyBoundSeconds: Int) throws(StoreError) -> [ApprovedDispatch]
    /// What dispatch checks a claimed operation against, as it is now (`permission`: the
    /// command's, from the catalogue).
    func dispatchFacts(operationID: String, permission: Permission, nonce: String?) throws(StoreError) -> DispatchFacts?
    /// Ends a claimed operation without sending it: cancelled with the refusal's reason, an
    /// audit row, and a drift row when a row was forged.
    func refuseDispatch(_ operation: OperationRecord, _ refusal: DispatchRefusal, audit: AuditEntry) throws(StoreError)
    /// Puts back a claimed operation whose request certainly was not sent: approved again,
    /// its request kept again, the claim released (`mac`: `KeptRequest.releaseParts`).
    func releaseDispatch(_ claimed: ApprovedDispatch, mac: String) throws(StoreError)
}

// MARK: - Values

/// The request's identity as the audit trail records it.
public struct RequestIdentity: Sendable, Equatable {
    public var correlationID: String
    public var traceID: String?
    public var principal: String?
    public var authType: String?
    public var clientAddress: String?
    public var userAgent: String?
    public var method: String?
    public var path: String?
    /// The request's span as W3C Trace Context names it: kept with the operation or batch it
    /// makes, for the traces of the background work on it to link to.
    public var traceparent: String?

    public init(correlationID: String, traceID: String? = nil, principal: String? = nil, authType: String? = nil,
                clientAddress: String? = nil, userAgent: String? = nil, method: String? = nil, path: String? = nil) {
        self.correlationID = correlationID
        self.traceID = traceID
        self.principal = principal
        self.authType = authType
        self.clientAddress = clientAddress
        self.userAgent = userAgent
        self.method = method
        self.path = path
    }
}

/// One row of `audit_events` (docs/design.md#audit). The database stamps its time, id and instance.
public struct AuditEntry: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// A request's one final row.
        case final
        /// A read saw the operation's action end.
        case completion
        /// The reconciler moved an operation.
        case reconciler
        /// An approval, denial, cancellation or expiry (docs/design.md#change-control).
        case approval
        /// An approved operation sent by the instances' background work.
        case dispatch
    }

    public var kind: Kind
    public var outcome: AuditOutcome
    public var identity: RequestIdentity
    public var command: String?
    public var vpsID: Int?
    /// The body as audited: secrets redacted, undeclared fields named only.
    public var requestParameters: JSONValue?
    public var idempotencyKey: String?
    public var operationID: String?
    public var httpStatus: Int?
    public var problemType: String?
    public var hostingerStatus: Int?
    public var hostingerCorrelationID: String?
    public var hostingerActionID: Int?
    public var durationMilliseconds: Double?
    /// The request's `Vpsgate-Reason` (`CommandReason`): kept on the row, and by
    /// `begin_command` and `create_batch` on the operation or batch it makes.
    public var reason: String?

    public init(_ kind: Kind = .final, outcome: AuditOutcome, identity: RequestIdentity, command: String? = nil, vpsID: Int? = nil) {
        self.kind = kind
        self.outcome = outcome
        self.identity = identity
        self.command = command
        self.vpsID = vpsID
    }

    /// The reconciler's row for `operation`: the request's correlation id and principal.
    public static func reconciler(_ operation: OperationRecord, outcome: AuditOutcome) -> AuditEntry {
        var entry = AuditEntry(.reconciler, outcome: outcome, identity: RequestIdentity(
            correlationID: operation.correlationID, principal: operation.requestedBy, authType: "reconciler"),
            command: operation.command, vpsID: operation.vpsID)
        entry.idempotencyKey = operation.idempotencyKey
        entry.operationID = operation.id
        entry.hostingerActionID = operation.actionID
        return entry
    }
}

/// What `begin_command` needs.
/// The VPS a command changes besides its own target, for the freeze decision: a firewall
/// change reaches every VPS that has the firewall active.
public enum VPSReach: Sendable, Equatable {
    /// None (or only the command's own VPS).
    case none
    /// These VPS (as Hostinger listed them just before the command).
    case vps([Int])
    /// Some, not known (Hostinger's list could not be read): a freeze on any VPS holds it.
    case unknown
}

public struct BeginRequest: Sendable {
    public var principal: String
    public var key: String
    /// Fingerprints under every secret key (the first is stored), and the legacy one.
    public var fingerprints: [String]
    /// What the command acts on.
    public var target: Target
    public var command: String
    /// The permission the command needs on it.
    public var permission: Permission
    /// Approvals needed whatever the policy says.
    public var minimumApprovals: Int
    public var operationID: String
    public var busyBoundSeconds: Int
    /// The audit row's request members (`command`, `vps_id`, `outcome` come from the above).
    public var audit: AuditEntry
    /// An emergency override of a freeze, and why (always through an approval).
    public var emergencyReason: String?
    /// The request kept if the command needs approval: its input in an envelope (`KeptRequest`).
    public var request: SealedRequest?
    /// The VPS the command changes besides its target (a freeze on one of them holds it).
    public var reach: VPSReach = .none

    public init(principal: String, key: String, fingerprints: [String], target: Target, command: String, permission: Permission,
                minimumApprovals: Int = 0, operationID: String, busyBoundSeconds: Int, audit: AuditEntry, emergencyReason: String? = nil,
                request: SealedRequest? = nil) {
        self.minimumApprovals = minimumApprovals
        self.principal = principal
        self.emergencyReason = emergencyReason
        self.request = request
        self.permission = permission
        self.key = key
        self.fingerprints = fingerprints
        self.target = target
        self.command = command
        self.operationID = operationID
        self.busyBoundSeconds = busyBoundSeconds
        self.audit = audit
    }
}

/// The end of a dispatched command, as `finish_command` records it.
public struct FinishRecord: Sendable {
    public var principal: String
    public var key: String
    /// The operation as the command leaves it (state, action, error, times).
    public var operation: OperationRecord
    public var keyEffect: KeyEffect
    /// The answer kept under the key.
    public var answer: StoredAnswer
    public var audit: AuditEntry
    /// The call's stray attempts (`StrayAttempt`), recorded with the outcome.
    public var strayAttempts: [StrayAttempt]

    public init(principal: String, key: String, operation: OperationRecord, keyEffect: KeyEffect, answer: StoredAnswer,
                audit: AuditEntry, strayAttempts: [StrayAttempt] = []) {
        self.principal = principal
        self.key = key
        self.operation = operation
        self.keyEffect = keyEffect
        self.answer = answer
        self.audit = audit
        self.strayAttempts = strayAttempts
    }
}

/// `GET /v1/operations` filters.
public struct OperationFilter: Sendable, Equatable {
    /// The VPS the reader may read (nil: all).
    public var readable: Set<Int>?
    /// The reader, whose grants decide which operations on other resources it sees (nil:
    /// only VPS operations).
    public var principal: String?
    public var vpsID: Int?
    public var state: OperationState?
    /// Only operations older than this one (keyset pagination).
    public var before: String?
    public var limit: Int
    /// Only operations requested by this principal.
    public var requester: String?
    /// Only this command (`vps.restart`).
    public var command: String?
    /// Only operations on this resource (an id of nil: every resource of the kind).
    public var resource: Target?
    /// Only operations created at or after `since` and before `until` (microseconds since the epoch).
    public var since: Int64?
    public var until: Int64?

    public init(readable: Set<Int>?, principal: String? = nil, vpsID: Int? = nil, state: OperationState? = nil, before: String? = nil,
                limit: Int = 50) {
        self.readable = readable
        self.principal = principal
        self.vpsID = vpsID
        self.state = state
        self.before = before
        self.limit = limit
    }
}

/// Which resources of one kind a principal may read: every one (a `*` grant), or these.
public struct ReadScope: Sendable, Equatable {
    public var all: Bool
    public var ids: Set<Int>

    public init(all: Bool, ids: Set<Int>) {
        self.all = all
        self.ids = ids
    }

    public func contains(_ vps: Int) -> Bool { all || ids.contains(vps) }
}

/// The reconciler's lease of operations to check.
public struct Claim: Sendable {
    public var operations: [(operation: OperationRecord, checks: Int)]
    /// The database's clock when it leased them (microseconds since the epoch; nil when none).
    public var now: Int64?

    public init(operations: [(operation: OperationRecord, checks: Int)], now: Int64?) {
        self.operations = operations
        self.now = now
    }
}

/// The drift scan's lease.
public struct ScanLease: Sendable, Equatable {
    /// Actions created before this were scanned already (seconds since the epoch).
    public var watermarkSeconds: Int64
    /// The database's clock (microseconds since the epoch).
    public var now: Int64

    public init(watermarkSeconds: Int64, now: Int64) {
        self.watermarkSeconds = watermarkSeconds
        self.now = now
    }
}

/// The database's schema as `/readyz` sees it.
public enum SchemaState: Sendable, Equatable {
    case current
    /// Some migration this build knows is not applied.
    case behind
    /// No schema at all yet.
    case absent
}

/// The database's gauges for `/metrics`.
public struct DatabaseGauges: Sendable, Equatable {
    public var operationsByState: [(state: OperationState, count: Int)]
    public var oldestOpenSeconds: Double
    public var stale: Int
    public var unsealedAuditRows: Int
    /// The event feed's lag: the age of the oldest committed event the feed does not show
    /// yet, because a transaction that started before it was written is still open (0: none).
    public var eventFeedLagSeconds: Double

    public init(operationsByState: [(state: OperationState, count: Int)], oldestOpenSeconds: Double, stale: Int, unsealedAuditRows: Int,
                eventFeedLagSeconds: Double = 0) {
        self.operationsByState = operationsByState
        self.oldestOpenSeconds = oldestOpenSeconds
        self.stale = stale
        self.unsealedAuditRows = unsealedAuditRows
        self.eventFeedLagSeconds = eventFeedLagSeconds
    }

    public static func == (lhs: DatabaseGauges, rhs: DatabaseGauges) -> Bool {
        lhs.operationsByState.map(\.state) == rhs.operationsByState.map(\.state)
            && lhs.operationsByState.map(\.count) == rhs.operationsByState.map(\.count)
            && lhs.oldestOpenSeconds == rhs.oldestOpenSeconds && lhs.stale == rhs.stale && lhs.unsealedAuditRows == rhs.unsealedAuditRows
            && lhs.eventFeedLagSeconds == rhs.eventFeedLagSeconds
    }
}
