/// One field of a command's JSON body: its rule, whether it is required or secret.
///
/// The same declaration validates requests and describes the body in vpsgate's OpenAPI
/// document, so the two cannot drift apart.
public struct BodyField: Sendable {
    public enum Kind: Sendable, Equatable {
        /// A fully qualified domain name (hostnames, PTR domains).
        case fqdn
        /// An IPv4 or IPv6 address.
        case ipAddress
        /// A password: 12+ characters with upper, lower and digit, not a leaked one.
        case password
        /// A positive integer.
        case positiveInteger
        /// A non-empty array of distinct positive integers.
        case positiveIntegers
        /// The VPS id itself, repeated to confirm a destructive command.
        case confirmation
    }

    public var name: String
    public var kind: Kind
    public var required: Bool
    /// Redacted in audit rows, logs and stored answers.
    public var secret: Bool
    public var summary: String

    public init(_ name: String, _ kind: Kind, required: Bool = true, secret: Bool = false, _ summary: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.secret = secret
        self.summary = summary
    }

    /// Messages for `value` (nil: absent; `.null` counts as absent for optional fields).
    func problems(_ value: JSONValue?, vps: Int) -> [String] {
        guard let value, !(value.isNull && !required) else {
            if kind == .confirmation { return ["must repeat the VPS id (\(vps)) to confirm this destructive command"] }
            return required ? ["is required"] : []
        }
        switch kind {
        case .fqdn:
            guard let text = value.stringValue else { return ["must be a string"] }
            return Validators.isFQDN(text) ? [] : ["must be a fully qualified domain name (labels of a-z, 0-9 and -, 253 characters at most)"]
        case .ipAddress:
            guard let text = value.stringValue else { return ["must be a string"] }
            return Validators.isIPAddress(text) ? [] : ["must be an IPv4 or IPv6 address"]
        case .password:
            guard let text = value.stringValue else { return ["must be a string"] }
            return Validators.passwordProblems(text)
        case .positiveInteger:
            guard let number = value.intValue, number > 0 else { return ["must be a positive integer"] }
            return []
        case .positiveIntegers:
            guard let items = value.arrayValue else { return ["must be an array of positive integers"] }
            guard !items.isEmpty else { return ["must not be empty"] }
            guard items.count <= 100 else { return ["must hold at most 100 ids"] }
            let numbers = items.compactMap { $0.intValue }.filter { $0 > 0 }
            guard numbers.count == items.count else { return ["must be an array of positive integers"] }
            return Set(numbers).count == numbers.count ? [] : ["must not repeat an id"]
        case .confirmation:
            return value.intValue == vps ? [] : ["must repeat the VPS id (\(vps)) to confirm this destructive command"]
        }
    }
}

/// A validated body: field values by name.
public struct CommandBody: Sendable {
    let members: [String: JSONValue]

    public func string(_ name: String) -> String? { members[name]?.stringValue }
    public func int(_ name: String) -> Int? { members[name]?.intValue }
    public func ints(_ name: String) -> [Int] { members[name]?.arrayValue?.compactMap(\.intValue) ?? [] }
    public func secret(_ name: String) -> Secret? { string(name).map(Secret.init) }

    /// Checks `body` against `fields`: an object, no unknown fields, every rule.
    static func validate(_ body: JSONValue?, fields: [BodyField], vps: Int) -> Result<CommandBody, FieldErrors> {
        var errors = FieldErrors()
        var members: [String: JSONValue] = [:]
        switch body {
        case nil, .null?: break
        case .object(let pairs)?:
            for (key, value) in pairs {
                if fields.contains(where: { $0.name == key }) {
                    members[key] = value
                } else {
                    errors.add(key, "unknown field")
                }
            }
        default:
            errors.add("body", "must be a JSON object")
            return .failure(errors)
        }
        for field in fields {
            for message in field.problems(members[field.name], vps: vps) { errors.add(field.name, message) }
        }
        return errors.isEmpty ? .success(CommandBody(members: members)) : .failure(errors)
    }
}
