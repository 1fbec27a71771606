/// A batch: one command over many VPS, run by the instances' background work (docs/design.md#the-shared-budget).
public struct BatchRequest: Sendable {
    public enum Targets: Sendable, Equatable {
        case ids([Int])
        /// Every VPS the caller holds the command's permission on.
        case all
    }

    public var command: Command
    public var body: JSONValue?
    public var parameters: [String: String]
    public var targets: Targets
    public var maxInFlight: Int
    public var maxFailures: Int
    public var pauseSeconds: Int

    static let fields: Set<String> = ["command", "body", "parameters", "vps", "max_in_flight", "max_failures", "pause_seconds"]
    public static let maximumTargets = 1000

    /// `{"command": "vps.restart", "body": {…}, "parameters": {"firewallId": 4001}, "vps": [ids] or "*",
    /// "max_in_flight": 1, "max_failures": 0, "pause_seconds": 0}`, checked field by field.
    public static func parse(_ json: JSONValue?) -> Result<BatchRequest, FieldErrors> {
        var errors = FieldErrors()
        guard case .object(let members)? = json else {
            errors.add("body", "must be a JSON object")
            return .failure(errors)
        }
        for (key, _) in members where !fields.contains(key) { errors.add(key, "unknown field") }
        let value = { (name: String) in members.first { $0.key == name }?.value }
        var command: Command?
        if let name = value("command")?.stringValue {
            if let found = Command.named(name), found.scope == .vps, !found.destructive {
                command = found
            } else if let found = Command.named(name), found.destructive {
                errors.add("command", "\(name) destroys data: it is not run in batches (each VPS must be confirmed on its own)")
            } else {
                errors.add("command", "must be a command on a VPS (vps.restart, vps.firewall.sync, …)")
            }
        } else {
            errors.add("command", "is required")
        }
        let body = value("body")
        if let body, !body.isNull, body.objectValue == nil { errors.add("body", "must be a JSON object") }
        var parameters: [String: String] = [:]
        let names = command.map { $0.pathSuffix.filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) } } ?? []
        switch value("parameters") {
        case nil, .null?: break
        case .object(let given)?:
            for (key, item) in given {
                guard names.contains(key) else { errors.add("parameters", "\(key) is not a path parameter of the command"); continue }
                let text = item.intValue.map(String.init) ?? item.stringValue ?? ""
                guard PathParameter.accepts(key, Substring(text)) else { errors.add("parameters", "\(key) is not valid"); continue }
                parameters[key] = text
            }
        default: errors.add("parameters", "must be an object")
        }
        for name in names where parameters[name] == nil { errors.add("parameters", "\(name) is required by \(command?.name ?? "the command")") }
        var targets: Targets = .ids([])
        switch value("vps") {
        case .string("*")?: targets = .all
        case .array(let items)?:
            let ids = items.compactMap { $0.intValue }.filter { $0 > 0 }
            if ids.count != items.count || ids.isEmpty {
                errors.add("vps", "must be a non-empty array of VPS ids, or \"*\"")
            } else if Set(ids).count != ids.count {
                errors.add("vps", "must not repeat a VPS")
            } else if ids.count > maximumTargets {
                errors.add("vps", "must hold at most \(maximumTargets) VPS")
            } else {
                targets = .ids(ids)
            }
        default: errors.add("vps", "must be an array of VPS ids, or \"*\"")
        }
        func integer(_ name: String, _ fallback: Int, _ range: ClosedRange<Int>) -> Int {
            guard let raw = value(name), !raw.isNull else { return fallback }
            guard let number = raw.intValue, range.contains(number) else {
                errors.add(name, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
                return fallback
            }
            return number
        }
        let maxInFlight = integer("max_in_flight", 1, 1...50)
        let maxFailures = integer("max_failures", 0, 0...maximumTargets)
        let pauseSeconds = integer("pause_seconds", 0, 0...3600)
        guard errors.isEmpty, let command else { return .failure(errors) }
        return .success(BatchRequest(command: command, body: body?.isNull == true ? nil : body, parameters: parameters, targets: targets,
                                     maxInFlight: maxInFlight, maxFailures: maxFailures, pauseSeconds: pauseSeconds))
    }

    /// The request as the batch shows and audits it: secret body fields redacted.
    public func shown(targets ids: [Int]) -> JSONValue {
        var members: [(key: String, value: JSONValue)] = [("command", .string(command.name))]
        if let body {
            // Undeclared fields by name only, secret ones redacted: what the audit keeps of a command's body.
            members.append(("body", Redaction.auditable(body, declared: Set(command.fields.map(\.name)), secrets: command.secretFields,
                                                        hashed: command.hashedFields)))
        }
        if !parameters.isEmpty { members.append(("parameters", .object(parameters.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))) }
        members.append(("vps", targets == .all ? .string("*") : .array(ids.map { .number(String($0)) })))
        return .object(members)
    }
}

/// One child of a new batch: its VPS and its request, kept in an envelope sealed for the batch and the VPS.
public struct BatchChild: Sendable {
    public var vpsID: Int
    public var request: SealedRequest

    public init(vpsID: Int, request: SealedRequest) {
        self.vpsID = vpsID
        self.request = request
    }
}

/// A batch to record.
public struct NewBatch: Sendable {
    public var principal: String
    public var key: String
    public var fingerprints: [String]
    public var request: BatchRequest
    /// The request as shown (secrets redacted), with the resolved targets.
    public var shown: JSONValue
    public var children: [BatchChild]
    public var audit: AuditEntry
    /// The random id every child's envelope names (`KeptRequest.Origin.batch`).
    public var seal: String

    public init(principal: String, key: String, fingerprints: [String], request: BatchRequest, shown: JSONValue, children: [BatchChild],
                audit: AuditEntry, seal: String = UUIDv4.generate()) {
        self.seal = seal
        self.principal = principal
        self.key = key
        self.fingerprints = fingerprints
        self.request = request
        self.shown = shown
        self.children = children
        self.audit = audit
    }
}

/// What `create_batch` decided.
public enum BatchCreation: Sendable, Equatable {
    case created(StoredAnswer)
    case replay(StoredAnswer)
    case reused
    /// A policy of one of its VPS requires a reason (`Vpsgate-Reason`) and the request gave none: nothing was kept.
    case reasonRequired
}

/// What a principal may do with a batch.
public struct BatchAccess: Sendable, Equatable {
    public var exists: Bool
    public var isRequester: Bool
    /// `vps:read` on every VPS of the batch.
    public var readsAll: Bool
    /// `vps:approve` on every VPS of the batch.
    public var approvesAll: Bool

    public init(exists: Bool, isRequester: Bool, readsAll: Bool, approvesAll: Bool) {
        self.exists = exists
        self.isRequester = isRequester
        self.readsAll = readsAll
        self.approvesAll = approvesAll
    }

    public var maySee: Bool { exists && (isRequester || readsAll || approvesAll) }
}

/// A decision on a batch (`POST /v1/batches/{id}/<action>`).
public enum BatchAction: String, Sendable, CaseIterable {
    case approve, deny, cancel, resume
}
