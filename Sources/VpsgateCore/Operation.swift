import Crypto

/// The lifecycle of an accepted command (SPEC section 5).
public enum OperationState: String, Sendable, CaseIterable {
    case accepted, dispatched, running, succeeded, failed, unknown

    /// `succeeded` and `failed` never change again.
    public var isTerminal: Bool { self == .succeeded || self == .failed }

    /// The state that follows Hostinger's action state: Hostinger is authoritative.
    public static func following(actionState: String) -> OperationState {
        switch actionState {
        case "success": .succeeded
        case "error": .failed
        default: .running
        }
    }

    /// The state after the Hostinger call ended with `outcome` (and maybe an action).
    public static func after(_ outcome: CallOutcome, actionState: String?) -> OperationState {
        switch outcome {
        case .succeeded: actionState.map(following(actionState:)) ?? .unknown
        case .rejected, .failed, .notSent: .failed
        case .unknown: .unknown
        }
    }
}

/// One operation as stored and as shown to clients.
public struct OperationRecord: Sendable, Equatable {
    public var id: String
    public var vpsID: Int
    public var command: String
    public var state: OperationState
    public var actionID: Int?
    public var actionName: String?
    public var actionState: String?
    /// Why it failed, as JSON (`{"reason": …, "message": …}`), or nil.
    public var error: JSONValue?
    public var requestedBy: String
    public var correlationID: String
    public var idempotencyKey: String
    /// Microseconds since the epoch.
    public var createdAt: Int64
    public var updatedAt: Int64
    public var completedAt: Int64?

    public init(id: String, vpsID: Int, command: String, state: OperationState, actionID: Int? = nil, actionName: String? = nil,
                actionState: String? = nil, error: JSONValue? = nil, requestedBy: String, correlationID: String,
                idempotencyKey: String, createdAt: Int64, updatedAt: Int64, completedAt: Int64? = nil) {
        self.id = id
        self.vpsID = vpsID
        self.command = command
        self.state = state
        self.actionID = actionID
        self.actionName = actionName
        self.actionState = actionState
        self.error = error
        self.requestedBy = requestedBy
        self.correlationID = correlationID
        self.idempotencyKey = idempotencyKey
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.completedAt = completedAt
    }

    public var location: String { "/v1/operations/\(id)" }

    /// The JSON body of SPEC section 5.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.member("id", id)
        writer.member("vps_id", vpsID)
        writer.member("command", command)
        writer.member("state", state.rawValue)
        writer.key("hostinger_action")
        if let actionID {
            writer.beginObject()
            writer.member("id", actionID)
            writer.member("name", actionName)
            writer.member("state", actionState)
            writer.endObject()
        } else {
            writer.null()
        }
        writer.key("error")
        if let error { error.write(to: &writer) } else { writer.null() }
        writer.member("requested_by", requestedBy)
        writer.member("correlation_id", correlationID)
        writer.member("idempotency_key", idempotencyKey)
        writer.member("created_at", Timestamp.rfc3339(microseconds: createdAt))
        writer.member("updated_at", Timestamp.rfc3339(microseconds: updatedAt))
        writer.member("completed_at", completedAt.map { Timestamp.rfc3339(microseconds: $0) })
        writer.endObject()
    }

    public func json() -> [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }
}

/// Random (version 4) UUIDs as lower-case text.
public enum UUIDv4 {
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = bytes[6] & 0x0f | 0x40
        bytes[8] = bytes[8] & 0x3f | 0x80
        let hex = Array(Hex.encode(bytes))
        return String(hex[0..<8]) + "-" + String(hex[8..<12]) + "-" + String(hex[12..<16]) + "-"
            + String(hex[16..<20]) + "-" + String(hex[20..<32])
    }

    public static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        return parts.map(\.count) == [8, 4, 4, 4, 12] && parts.allSatisfy { $0.allSatisfy { $0.isHexDigit && !$0.isUppercase } }
    }
}

/// API tokens: random, shown once, stored as SHA-256.
public enum APIToken {
    /// `vpsg_` and 43 base64url characters (256 random bits).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return "vpsg_" + Base64URL.encode(bytes)
    }

    /// SHA-256: a token carries 256 random bits, so an unkeyed hash cannot be reversed.
    public static func hash(_ token: String) -> String { Hex.encode(Array(SHA256.hash(data: Array(token.utf8)))) }

    /// The bearer token of an `Authorization` header, when it looks like one of ours.
    public static func bearer(_ header: String?) -> String? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        let token = String(header.dropFirst("Bearer ".count))
        guard (8...200).contains(token.utf8.count), token.utf8.allSatisfy({ (0x21...0x7e).contains($0) }) else { return nil }
        return token
    }
}

/// Base64 with the URL-safe alphabet and no padding.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            index += 3
        }
        let rest = bytes.count - index
        if rest == 1 {
            let n = UInt32(bytes[index]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
        } else if rest == 2 {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
