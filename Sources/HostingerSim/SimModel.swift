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
    /// Ids of the resources requests create; like action ids, never handed out twice.
    var ids = ResourceIDs()
    var firewalls: [Int: Firewall] = [:]
    var publicKeys: [Int: PublicKey] = [:]
    var postInstallScripts: [Int: PostInstallScript] = [:]
    var templates: [Int: Template] = [:]
    var dataCenters: [Int: DataCenter] = [:]
    var faults: [FaultRule] = []
    var nextFaultID = 1
    var log: [LoggedRequest] = []
    var actionDelayMilliseconds: Int
    /// Actions pass through `started`, a state outside the documented enum, as users report.
    var extraStates = false
    var rateLimit = RateLimit(perMinute: 0)

    static let maximumLogEntries = 100_000

    /// The fixtures of docs/simulator.md: the VMs and their ids, a post-install script, two
    /// firewall rules and the data centers.
    static func fixtures(now: Int64, actionDelayMilliseconds: Int) -> SimState {
        var state = SimState(actionDelayMilliseconds: actionDelayMilliseconds)
        state.templates[1130] = Template(id: 1130, name: "Ubuntu 24.04 LTS", description: "Ubuntu 24.04 LTS 64bit")
        for center in DataCenter.fixtures { state.dataCenters[center.id] = center }
        state.firewalls[4001] = Firewall(id: 4001, name: "HTTP and SSH only", createdAt: now, updatedAt: now, rules: [
            FirewallRule(id: 4101, protocol: "SSH", port: "22", source: "any", sourceDetail: "any"),
            FirewallRule(id: 4102, protocol: "HTTP", port: "80", source: "any", sourceDetail: "any"),
        ])
        state.publicKeys[5001] = PublicKey(id: 5001, name: "deploy", key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDeployKeyForTests deploy")
        state.publicKeys[5002] = PublicKey(id: 5002, name: "ops", key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpsKeyForTestsOnly ops")
        state.postInstallScripts[6001] = PostInstallScript(
            id: 6001, name: "nginx", content: "#!/bin/bash\napt-get update\napt-get install -y nginx\n", createdAt: now, updatedAt: now)
        for (id, vmState) in [(1001, "running"), (1002, "stopped"), (1003, "running"), (1004, "initial")] {
            state.vms[id] = VirtualMachine.fixture(id: id, state: vmState, now: now)
        }
        return state
    }
}

/// The next id of each kind of resource a request can create.
struct ResourceIDs {
    var firewall = 4002
    var firewallRule = 4103
    var publicKey = 5003
    var postInstallScript = 6002
    var virtualMachine = 1101
    var order = 9_100_001

    /// Hands out the next id of one kind.
    mutating func next(_ kind: WritableKeyPath<ResourceIDs, Int>) -> Int {
        defer { self[keyPath: kind] += 1 }
        return self[keyPath: kind]
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

/// What a VPS plan gives a VM, and what it costs (cents a month, before VAT).
struct Plan {
    var name: String
    var cpus: Int
    var memory: Int
    var disk: Int
    var bandwidth: Int
    var price: Int

    static let kvm2 = Plan(name: "KVM 2", cpus: 2, memory: 8192, disk: 102_400, bandwidth: 8_388_608, price: 899)

    /// The catalogue price items `POST /virtual-machines` accepts as `item_id`.
    static let catalogue: [String: Plan] = [
        "hostingercom-vps-kvm1-usd-1m": Plan(name: "KVM 1", cpus: 1, memory: 4096, disk: 51_200, bandwidth: 4_194_304, price: 649),
        "hostingercom-vps-kvm2-usd-1m": kvm2,
        "hostingercom-vps-kvm4-usd-1m": Plan(name: "KVM 4", cpus: 4, memory: 16_384, disk: 204_800, bandwidth: 16_777_216, price: 1299),
        "hostingercom-vps-kvm8-usd-1m": Plan(name: "KVM 8", cpus: 8, memory: 32_768, disk: 409_600, bandwidth: 33_554_432, price: 2599),
    ]
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
    /// Copies, not ids: deleting a key from the account leaves it on the VMs that have it.
    var attachedKeys: [PublicKey] = []
    var monarxInstalled = false
    var snapshot: Snapshot?
    var backups: [Backup]
    var createdAt: Int64
    var plan = Plan.kvm2
    var dataCenterID: Int? = 21
    var subscriptionID: String
    /// Whether weekly backups are scheduled (set up by `setup`; no read shows it).
    var backupsEnabled = true
    /// Docker Compose projects by name.
    var dockerProjects: [String: DockerProject] = [:]
    /// Actions not yet settled on this VM.
    var pendingActions = 0
    /// The state to return to when the pending action fails.
    var stateBeforeAction: String?

    static func defaultHostname(_ id: Int) -> String { "srv\(id).hstgr.cloud" }

    static func fixture(id: Int, state: String, now: Int64) -> VirtualMachine {
        let index = id - 1000
        return VirtualMachine(
            id: id, hostname: defaultHostname(id), state: state, ns1: "1.1.1.1", ns2: "8.8.8.8", ns3: nil,
            ipv4: [IPAddress(id: 2000 + index, address: "203.0.113.\(index)", ptr: nil)],
            templateID: state == "initial" ? nil : 1130, firewallID: nil,
            backups: [Backup(id: 3000 + index, createdAt: now - 86_400_000_000)], createdAt: now - 30 * 86_400_000_000,
            subscriptionID: "Azz353Uhl1xC54p\(id)"
        )
    }
}

struct Firewall {
    var id: Int
    var name: String
    var createdAt: Int64
    var updatedAt: Int64
    var rules: [FirewallRule] = []
    /// VMs whose copy of the rules is current. A rule change empties it: Hostinger's
    /// documentation says every VM using the firewall loses sync until synced again.
    var syncedVMs: Set<Int> = []
}

struct FirewallRule {
    var id: Int
    var `protocol`: String
    var port: String
    var source: String
    var sourceDetail: String
    /// Hostinger drops everything by default; the rules the API creates accept.
    var action = "accept"
}

struct PublicKey {
    var id: Int
    var name: String
    var key: String
}

struct PostInstallScript {
    var id: Int
    var name: String
    var content: String
    var createdAt: Int64
    var updatedAt: Int64
}

struct Template {
    var id: Int
    var name: String
    var description: String
}

struct DataCenter {
    var id: Int
    var name: String
    var location: String
    var city: String
    var continent: String

    static let fixtures = [
        DataCenter(id: 19, name: "bos", location: "us", city: "Boston", continent: "North America"),
        DataCenter(id: 21, name: "ams", location: "nl", city: "Amsterdam", continent: "Europe"),
        DataCenter(id: 22, name: "sgp", location: "sg", city: "Singapore", continent: "Asia"),
        DataCenter(id: 29, name: "phx", location: "us", city: "Phoenix", continent: "North America"),
    ]
}

/// What `setup` (or a purchase) makes of a VM in state `initial` when its action succeeds.
struct VMSetup {
    var templateID: Int
    var dataCenterID: Int
    var hostname: String?
    var ns1: String?
    var ns2: String?
    var installMonarx: Bool
    var enableBackups: Bool
    /// A key to add to the account and attach (`public_key` of the request).
    var publicKey: (name: String, key: String)?
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
    case attachKeys([PublicKey])
    case setup(VMSetup)
    case docker(DockerChange)

    /// The VM state while the action runs, if it changes.
    var transitionalState: String? {
        switch self {
        case .power(let transitional, _): transitional
        case .recreate: "recreating"
        case .snapshotRestore, .backupRestore: "restoring"
        case .recoveryStop: "stopping_recovery"
        case .setup: "creating"
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
    /// When the action moves from `sent` to `started` (with `extra_states`), if it does.
    var startedAt: Int64? = nil
    /// A state outside the documented enum reported until the action ends (a fault's `action_state`).
    var pendingState: String? = nil

    func state(now: Int64) -> String {
        if now >= completesAt { return outcome }
        if let pendingState { return pendingState }
        if let startedAt, now >= startedAt { return "started" }
        return "sent"
    }

    func json(now: Int64) -> JSONValue {
        var updated = createdAt
        if now >= completesAt {
            updated = completesAt
        } else if let startedAt, now >= startedAt, pendingState == nil {
            updated = startedAt
        }
        return .object([
            ("id", .number(String(id))), ("name", .string(name)), ("state", .string(state(now: now))),
            ("created_at", .string(Timestamp.rfc3339Seconds(microseconds: createdAt))),
            ("updated_at", .string(Timestamp.rfc3339Seconds(microseconds: updated))),
        ])
    }
}

/// How a fault changes the action a request creates.
struct ActionOverrides {
    /// The action ends in `error`.
    var error = false
    /// The action's name instead of the usual one (Hostinger's names are free text).
    var name: String? = nil
    /// A state reported until the action ends, instead of `sent`.
    var pendingState: String? = nil
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
    /// The action reports this state (e.g. `queued`, not in the document's enum) until it ends.
    var actionState: String? = nil

    var overrides: ActionOverrides { ActionOverrides(error: actionError, name: actionName, pendingState: actionState) }

    func json() -> JSONValue {
        .object([
            ("id", .number(String(id))), ("method", method.map { .string($0) } ?? .null), ("path", .string(pathPattern)),
            ("status", status.map { .number(String($0)) } ?? .null),
            ("retry_after", retryAfter.map { .number(String($0)) } ?? .null),
            ("delay_ms", .number(String(delayMilliseconds))), ("apply", .bool(apply)), ("times", .number(String(times))),
            ("action_error", .bool(actionError)), ("html", .bool(html)), ("answer_with_last_action", .bool(answerWithLastAction)),
            ("action_name", actionName.map { .string($0) } ?? .null),
            ("action_state", actionState.map { .string($0) } ?? .null),
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
    /// Whether the rate limit refused it (a 429 of the limit, not of a fault).
    var rateLimited = false
    /// The actions the request created (with `applied`, whatever was answered).
    var actionIDs: [Int] = []
}
