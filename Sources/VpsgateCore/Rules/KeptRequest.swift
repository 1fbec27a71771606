import Crypto

/// A request kept for later (an operation awaiting approval, a child of a batch), sealed so
/// that a database login without the secret key can neither make one nor change one.
///
/// The envelope is AES-GCM under the secret key; it holds the command's input as the
/// client gave it (path parameters and body, secrets included: they never leave it in
/// clear) and authenticates, without encrypting, what the request is for: the operation
/// (or the batch's seal and the VPS), the command, the resource, the requester and the
/// emergency flag. Dispatch opens it with those read from the database as they are then:
/// a row moved, edited or forged does not open. The Hostinger call is derived from the
/// input again through the command catalogue; no stored method or path is trusted.
public struct KeptRequest: Sendable, Equatable {
    /// Whom the request was made for.
    public enum Origin: Sendable, Equatable {
        /// One operation, which needed approval.
        case operation(id: String)
        /// One VPS of a batch, named by the batch's seal (a random id vpsgate gives the batch).
        case batch(seal: String, vps: Int)
    }

    public var origin: Origin
    public var command: String
    public var target: Target
    public var requestedBy: String
    public var emergency: Bool

    public init(origin: Origin, command: String, target: Target, requestedBy: String, emergency: Bool) {
        self.origin = origin
        self.command = command
        self.target = target
        self.requestedBy = requestedBy
        self.emergency = emergency
    }

    /// Marks an envelope of this format: rows kept before it hold none and are refused.
    static let magic: [UInt8] = Array("VGK2".utf8)

    /// The associated data: each member followed by a NUL (no member holds one).
    var associatedData: [UInt8] {
        let origin: [String] = switch self.origin {
        case .operation(let id): ["operation", id, ""]
        case .batch(let seal, let vps): ["batch", seal, String(vps)]
        }
        var bytes: [UInt8] = []
        for part in ["vpsgate kept request v1"] + origin + [command, target.kind.rawValue, target.id.map(String.init) ?? "-", requestedBy,
                                                            emergency ? "emergency" : "ordinary"] {
            bytes += Array(part.utf8)
            bytes.append(0)
        }
        return bytes
    }

    /// The sealed envelope of the command's input, and the id of the key that sealed it.
    public func seal(parameters: [String: String], body: JSONValue?, keys: SecretKeyRing) throws -> (keyID: String, envelope: [UInt8]) {
        let input: JSONValue = .object([
            ("parameters", .object(parameters.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
            ("body", body ?? .null),
        ])
        let sealed = try keys.seal(input.serialized(), authenticating: associatedData)
        return (sealed.keyID, Self.magic + sealed.sealed)
    }

    /// The input an envelope holds, or nil when it is not one sealed for this request.
    public func open(_ envelope: [UInt8], keyID: String, keys: SecretKeyRing) -> (parameters: [String: String], body: JSONValue?)? {
        guard envelope.starts(with: Self.magic),
            let opened = keys.open(Array(envelope.dropFirst(Self.magic.count)), keyID: keyID, authenticating: associatedData),
            let input = try? JSONValue.parse(opened), let members = input["parameters"]?.objectValue, let body = input["body"]
        else { return nil }
        var parameters: [String: String] = [:]
        for (name, value) in members {
            guard let text = value.stringValue else { return nil }
            parameters[name] = text
        }
        return (parameters, body.isNull ? nil : body)
    }

    /// The digest an approval binds: lower-case hex SHA-256 of the envelope, `-` for none
    /// (the database's `vpsgate_request_digest` computes the same).
    public static func digest(_ envelope: [UInt8]?) -> String {
        guard let envelope else { return "-" }
        return Hex.encode(Array(SHA256.hash(data: envelope)))
    }

    // MARK: - What the key authenticates beside the envelope

    /// The parts of an approval's HMAC: the operation (or the batch's seal and round), the
    /// principal, the decision and the digest of the request it approves.
    public static func approvalParts(origin: String, principal: String, decision: String, digest: String) -> [[UInt8]] {
        ["vpsgate approval v1", origin, principal, decision, digest].map { Array($0.utf8) }
    }

    /// An approval's origin: the operation id, or `batch:<seal>:<round>`.
    public static func batchOrigin(seal: String, round: Int) -> String { "batch:\(seal):\(round)" }

    /// The parts of a release's HMAC: the ledger's nonce and the claim released.
    public static func releaseParts(nonce: String, claim: Int) -> [[UInt8]] {
        ["vpsgate release v1", nonce, String(claim)].map { Array($0.utf8) }
    }
}

/// A kept request as the store holds it: the envelope, and (to show, never to send) the
/// Hostinger call it was made into when kept.
public struct SealedRequest: Sendable, Equatable {
    public var name: String
    public var method: String
    public var path: String
    public var repeatSafe: Bool
    /// The envelope (`KeptRequest`); nil for a row kept before envelopes, or a forged one.
    public var sealedBody: [UInt8]?
    public var keyID: String?
    /// What the approvals were bound to when kept (the idempotency fingerprint).
    public var fingerprint: String

    public init(name: String, method: String, path: String, repeatSafe: Bool, sealedBody: [UInt8]?, keyID: String?,
                fingerprint: String = "-") {
        self.name = name
        self.method = method
        self.path = path
        self.repeatSafe = repeatSafe
        self.sealedBody = sealedBody
        self.keyID = keyID
        self.fingerprint = fingerprint
    }
}

/// An approved operation taken for dispatch (moved to `accepted`), with its kept request
/// and its claim in the dispatch ledger.
public struct ApprovedDispatch: Sendable {
    public var operation: OperationRecord
    public var emergency: Bool
    public var request: SealedRequest
    /// The ledger's nonce for the envelope (nil without one) and this claim's number.
    public var nonce: String?
    public var claim: Int?

    public init(operation: OperationRecord, emergency: Bool = false, request: SealedRequest, nonce: String? = nil, claim: Int? = nil) {
        self.operation = operation
        self.emergency = emergency
        self.request = request
        self.nonce = nonce
        self.claim = claim
    }
}

/// What dispatch checks a claimed operation against, read from the database at dispatch.
public struct DispatchFacts: Sendable, Equatable {
    public struct Approval: Sendable, Equatable {
        public var principal: String
        public var decision: String
        public var mac: String?
        /// Whether the principal holds `vps:approve` on the operation's resource now.
        public var holds: Bool

        public init(principal: String, decision: String, mac: String?, holds: Bool) {
            self.principal = principal
            self.decision = decision
            self.mac = mac
            self.holds = holds
        }
    }

    public struct Batch: Sendable, Equatable {
        public var id: Int
        public var seal: String?
        public var round: Int
        public var state: String
        /// The child's attempt (0 for the first).
        public var attempt: Int

        public init(id: Int, seal: String?, round: Int, state: String, attempt: Int) {
            self.id = id
            self.seal = seal
            self.round = round
            self.state = state
            self.attempt = attempt
        }
    }

    /// Whether the requester holds the command's permission on the resource now.
    public var requesterHolds: Bool
    /// The approvals the policy asks for now.
    public var policyApprovals: Int
    /// The operation's approvals, or its batch's of the current round.
    public var approvals: [Approval]
    public var batch: Batch?
    /// The ledger's releases of earlier claims of the same nonce: claim ⇒ HMAC.
    public var released: [Int: String]

    public init(requesterHolds: Bool, policyApprovals: Int, approvals: [Approval], batch: Batch?, released: [Int: String]) {
        self.requesterHolds = requesterHolds
        self.policyApprovals = policyApprovals
        self.approvals = approvals
        self.batch = batch
        self.released = released
    }
}

/// Why dispatch refused a claimed operation without sending it.
public struct DispatchRefusal: Sendable, Equatable {
    public enum Reason: String, Sendable {
        /// No envelope: kept before envelopes, or written by someone without the key.
        case unsealed
        /// A row that does not verify: forged, altered, moved or replayed.
        case integrity
        /// The requester, or enough approvers, no longer hold the permission.
        case grantRevoked = "grant_revoked"
        /// Its batch was cancelled or halted.
        case batchStopped = "batch_stopped"
    }

    public var reason: Reason
    public var message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    /// A row was forged or altered (or predates envelopes): a drift row says so.
    public var isDrift: Bool { reason == .unsealed || reason == .integrity }
}

/// The verdict on a claimed operation: send the call derived from its kept input, or refuse.
public enum DispatchVerdict: Sendable, Equatable {
    case send(HostingerRequest)
    case refuse(DispatchRefusal)
}

/// Dispatch's check of an approved operation before anything is sent. Pure: the store
/// supplies the rows as they are, the key ring verifies them.
public enum DispatchCheck {
    /// The attempts a batch child gets in all (its first and the retries of one that never
    /// reached Hostinger). Declared here once: `advance_batch` gets it with every call.
    public static let maximumBatchAttempts = 4
    /// The reasons of a failed operation that say it never reached Hostinger, so that its batch
    /// child may start again with a new key (`advance_batch` gets them with every call).
    public static let batchRetryReasons = ["not_applied", "upstream_budget", "not_sent"]

    public static func verify(_ claimed: ApprovedDispatch, facts: DispatchFacts, keys: SecretKeyRing) -> DispatchVerdict {
        let operation = claimed.operation
        guard let command = Command.named(operation.command) else {
            return .refuse(.init(.integrity, "No command is named \(operation.command)."))
        }
        guard let envelope = claimed.request.sealedBody, let keyID = claimed.request.keyID, let nonce = claimed.nonce,
            let claim = claimed.claim
        else {
            return .refuse(.init(.unsealed, "The kept request holds no envelope sealed under the secret key."))
        }
        let origin: KeptRequest.Origin
        if let batch = facts.batch {
            guard let seal = batch.seal, let vps = operation.vpsID else {
                return .refuse(.init(.integrity, "The batch has no seal."))
            }
            origin = .batch(seal: seal, vps: vps)
        } else {
            origin = .operation(id: operation.id)
        }
        let kept = KeptRequest(origin: origin, command: command.name, target: operation.target, requestedBy: operation.requestedBy,
                               emergency: claimed.emergency)
        guard let input = kept.open(envelope, keyID: keyID, keys: keys) else {
            return .refuse(.init(.integrity, "The kept request does not open under the secret key for this operation."))
        }
        let call: HostingerRequest
        switch command.prepare(operation.target, parameters: input.parameters, body: input.body) {
        case .success(let prepared): call = prepared
        case .failure: return .refuse(.init(.integrity, "The kept input does not validate for \(command.name)."))
        }
        // Sent at most once: every earlier claim of the same request was released by an
        // instance that knew it had sent nothing.
        for earlier in 1..<max(claim, 1) {
            guard let mac = facts.released[earlier], keys.verify(mac: mac, KeptRequest.releaseParts(nonce: nonce, claim: earlier)) else {
                return .refuse(.init(.integrity, "The kept request was claimed before (claim \(earlier)) and not released: not sent again."))
            }
        }
        var required = max(facts.policyApprovals, command.minimumApprovals)
        let approvalOrigin: String
        let digest: String
        if let batch = facts.batch {
            guard batch.attempt < maximumBatchAttempts else {
                return .refuse(.init(.integrity, "The batch child's attempt \(batch.attempt) is past the retry bound."))
            }
            guard batch.state == "running" else {
                return .refuse(.init(.batchStopped, "Its batch is \(batch.state): it sends nothing more."))
            }
            approvalOrigin = KeptRequest.batchOrigin(seal: batch.seal ?? "", round: batch.round)
            digest = "-"
        } else {
            // Kept for later only because it needed approval (an emergency override included).
            required = max(required, 1)
            approvalOrigin = operation.id
            digest = KeptRequest.digest(envelope)
        }
        var valid = 0
        var held = 0
        for approval in facts.approvals where approval.decision == "approve" {
            let parts = KeptRequest.approvalParts(origin: approvalOrigin, principal: approval.principal, decision: approval.decision,
                                                  digest: digest)
            guard approval.principal != operation.requestedBy, let mac = approval.mac, keys.verify(mac: mac, parts) else {
                return .refuse(.init(.integrity, "An approval of \(approval.principal) is not one vpsgate recorded."))
            }
            valid += 1
            if approval.holds { held += 1 }
        }
        guard valid >= required else {
            return .refuse(.init(.integrity, "\(valid) of \(required) approvals: approved without them."))
        }
        guard facts.requesterHolds else {
            return .refuse(.init(.grantRevoked, "\(operation.requestedBy) no longer holds \(command.permission.rawValue) on \(operation.target)."))
        }
        guard held >= required else {
            return .refuse(.init(.grantRevoked, "\(held) of \(required) approvers still hold vps:approve on \(operation.target)."))
        }
        return .send(call)
    }
}
