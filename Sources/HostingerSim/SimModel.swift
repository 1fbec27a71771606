import VpsgateCore

/// The simulator's world: virtual machines, their actions and the account's resources.
struct SimState {
    var vms: [Int: VirtualMachine] = [:]
    var actions: [Int: Action] = [:]
    /// Actions not yet settled: the only ones time can change.
    var unsettled: Set<Int> = []
    /// Action ids per VM, oldest first.
    var actionsByVM: [Int: [Int]] = [:]
    var nextActionID = 8_000_001
    var firewalls: [Int: Firewall] = [:]
    var publicKeys: [Int: PublicKey] = [:]
    var templates: [Int: Template] = [:]
    var faults: [FaultRule] = []
    var nextFaultID = 1
    var log: [LoggedRequest] = []
    var actionDelayMilliseconds: Int

    static let maximumLogEntries = 100_000

    /// The fixtures of SPEC section 10.
    static func fixtures(now: Int64, actionDelayMilliseconds: Int) -> SimState {
        var state = SimState(actionDelayMilliseconds: actionDelayMilliseconds)
        state.templates[1130] = Template(id: 1130, name: "Ubuntu 24.04 LTS", description: "Ubuntu 24.04 LTS 64bit")
        state.firewalls[4001] = Firewall(id: 4001, name: "HTTP and SSH only", createdAt: now)
        state.publicKeys[5001] = PublicKey(id: 5001, name: "deploy", key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeployKeyForTests deploy")
        state.publicKeys[5002] = PublicKey(id: 5002, name: "ops", key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpsKeyForTestsOnly ops")
        for (id, vmState) in [(1001, "running"), (1002, "stopped"), (1003, "running"), (1004, "initial")] {
            state.vms[id] = VirtualMachine.fixture(id: id, state: vmState, now: now)
        }
        return state
    }
}

struct IPAddress {
    var id: Int
    var address: String
    var ptr: String?
}

struct Backup {
    var id: Int
    var createdAt: Int64
}

struct Snapshot {
    var id: Int
    var createdAt: Int64
}

struct VirtualMachine {
    var id: Int
    var hostname: String
    var state: String
    var ns1: String?
    var ns2: String?
    var ns3: String?
    var ipv4: [IPAddress]
    var templateID: Int?
    var firewallID: Int?
    var attachedKeys: [Int] = []
    var monarxInstalled = false
    var snapshot: Snapshot?
    var backups: [Backup]
    var createdAt: Int64
    /// Actions not yet settled on this VM.
    var pendingActions = 0
    /// The state to return to when the pending action fails.
    var stateBeforeAction: String?

    static func fixture(id: Int, state: String, now: Int64) -> VirtualMachine {
        let index = id - 1000
        return VirtualMachine(
            id: id, hostname: "srv\(id).hstgr.cloud", state: state, ns1: "1.1.1.1", ns2: "8.8.8.8", ns3: nil,
            ipv4: [IPAddress(id: 2000 + index, address: "203.0.113.\(index)", ptr: nil)],
            templateID: state == "initial" ? nil : 1130, firewallID: nil,
            backups: [Backup(id: 3000 + index, createdAt: now - 86_400_000_000)], createdAt: now - 30 * 86_400_000_000
        )
    }
}

struct Firewall {
    var id: Int
    var name: String
    var createdAt: Int64
    var syncedVMs: Set<Int> = []
}

struct PublicKey {
    var id: Int
    var name: String
    var key: String
}

struct Template {
    var id: Int
    var name: String
    var description: String
}

/// What an action does to its VM when it succeeds.
enum Effect {
    case power(transitional: String?, final: String)
    case hostname(String)
    case resetHostname
    case nameservers(String, String?, String?)
    case ptr(ipAddressID: Int, domain: String?)
    case rootPassword
    case panelPassword
    case recoveryStart
    case recoveryStop
    case snapshotCreate
    case snapshotDelete
    case snapshotRestore
    case backupRestore
    case recreate(templateID: Int)
    case monarx(installed: Bool)
    case firewallActivate(Int)
    case firewallDeactivate(Int)
    case firewallSync(Int)
    case attachKeys([Int])

    /// The VM state while the action runs, if it changes.
    var transitionalState: String? {
        switch self {
        case .power(let transitional, _): transitional
        case .recreate: "recreating"
        case .snapshotRestore, .backupRestore: "restoring"
        case .recoveryStop: "stopping_recovery"
        default: nil
        }
    }
}

struct Action {
    var id: Int
    var vmID: Int
    var name: String
    var createdAt: Int64
    var completesAt: Int64
    /// `success` or `error`: how it will end.
    var outcome: String
    var settled = false
    var effect: Effect

    func state(now: Int64) -> String {
        if now >= completesAt { return outcome }
        return "sent"
    }

    func json(now: Int64) -> JSONValue {
        let updated = now >= completesAt ? completesAt : createdAt
        return .object([
            ("id", .number(String(id))), ("name", .string(name)), ("state", .string(state(now: now))),
            ("created_at", .string(Timestamp.rfc3339Seconds(microseconds: createdAt))),
            ("updated_at", .string(Timestamp.rfc3339Seconds(microseconds: updated))),
        ])
    }
}

/// A fault injected through `POST /__sim/faults`.
struct FaultRule {
    var id: Int
    var method: String?
    var pathPattern: String
    var status: Int?
    var retryAfter: Int?
    var delayMilliseconds: Int
    var apply: Bool
    /// Remaining matches; -1 for unlimited.
    var times: Int
    /// Answer normally, but the action ends in `error`.
    var actionError: Bool
    /// Answer with an HTML page, as Hostinger's CDN does on 502/403.
    var html: Bool
    /// Perform nothing and answer with the VM's newest existing action, as Hostinger may
    /// answer a repeated request.
    var answerWithLastAction: Bool = false
    /// Name the action this way instead of the usual name.
    var actionName: String? = nil

    func json() -> JSONValue {
        .object([
            ("id", .number(String(id))), ("method", method.map { .string($0) } ?? .null), ("path", .string(pathPattern)),
            ("status", status.map { .number(String($0)) } ?? .null),
            ("retry_after", retryAfter.map { .number(String($0)) } ?? .null),
            ("delay_ms", .number(String(delayMilliseconds))), ("apply", .bool(apply)), ("times", .number(String(times))),
            ("action_error", .bool(actionError)), ("html", .bool(html)), ("answer_with_last_action", .bool(answerWithLastAction)),
            ("action_name", actionName.map { .string($0) } ?? .null),
        ])
    }
}

struct LoggedRequest {
    var method: String
    var path: String
    var query: String
    var headers: [(String, String)]
    var body: JSONValue
    var at: Int64
    /// The status answered (nil while the answer is being computed).
    var status: Int? = nil
    /// Whether the request changed anything (a mutation that was performed).
    var applied = false
}
