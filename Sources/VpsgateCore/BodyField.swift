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
        /// A Docker Compose project name: 3 to 64 letters, digits, dashes or underscores.
        case projectName
        /// Text of at most `maxBytes` UTF-8 bytes, not empty (compose files, environments).
        case text(maxBytes: Int)
        /// true or false.
        case boolean
        /// One of these strings, exactly.
        case oneOf([String])
        /// A port (1-65535), a range `1024:2048`, or `any`.
        case port
        /// An IPv4 or IPv6 address or CIDR block, an IPv4 range `a-b`, or `any`.
        case networkSource
        /// An OpenSSH public key line: `ssh-ed25519 AAAA… comment` (16 KiB at most).
        case sshPublicKey
        /// A catalogue identifier: 1 to 100 letters, digits, dots, dashes or underscores.
        case identifier
        /// An array of at most 10 distinct identifiers.
        case identifiers
    }

    public var name: String
    public var kind: Kind
    public var required: Bool
    /// Redacted in audit rows, logs and stored answers.
    public var secret: Bool
    /// Kept only as its SHA-256 (`sha256:<hex>`) in audit rows, stored answers and results.
    public var hashed: Bool
    public var summary: String

    public init(_ name: String, _ kind: Kind, required: Bool = true, secret: Bool = false, hashed: Bool = false, _ summary: String) {
        self.name = name
        self.kind = kind
        self.required = required
        self.secret = secret
        self.hashed = hashed
        self.summary = summary
    }

    /// Messages for `value` (nil: absent; `.null` counts as absent for optional fields);
    /// `vps`: the resource id the path names, which a confirmation repeats.
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
        case .projectName:
            guard let text = value.stringValue else { return ["must be a string"] }
            return Validators.isProjectName(text) ? [] : ["must be 3 to 64 letters, digits, dashes or underscores"]
        case .boolean:
            guard case .bool = value else { return ["must be true or false"] }
            return []
        case .text(let maxBytes):
            guard let text = value.stringValue else { return ["must be a string"] }
            guard !text.isEmpty else { return ["must not be empty"] }
            return text.utf8.count <= maxBytes ? [] : ["must be at most \(maxBytes) bytes"]
        case .oneOf(let choices):
            guard let text = value.stringValue, choices.contains(text) else { return ["must be one of: " + choices.joined(separator: ", ")] }
            return []
        case .port:
            guard let text = value.stringValue else { return ["must be a string"] }
            return Validators.isPort(text) ? [] : ["must be a port (1-65535), a range (1024:2048) or any"]
        case .networkSource:
            guard let text = value.stringValue else { return ["must be a string"] }
            return text == "any" || Validators.isNetworkSource(text)
                ? [] : ["must be an IP address, a CIDR block, an IPv4 range (a-b) or any"]
        case .sshPublicKey:
            guard let text = value.stringValue else { return ["must be a string"] }
            return Validators.isSSHPublicKey(text) ? [] : ["must be one OpenSSH public key line (type, base64 key, optional comment; 16 KiB at most)"]
        case .identifier:
            guard let text = value.stringValue else { return ["must be a string"] }
            return Validators.isIdentifier(text) ? [] : ["must be 1 to 100 letters, digits, dots, dashes or underscores"]
        case .identifiers:
            guard let items = value.arrayValue else { return ["must be an array of strings"] }
            guard items.count <= 10 else { return ["must hold at most 10 items"] }
            let texts = items.compactMap(\.stringValue).filter(Validators.isIdentifier)
            guard texts.count == items.count else { return ["must hold 1 to 100 letters, digits, dots, dashes or underscores each"] }
            return Set(texts).count == texts.count ? [] : ["must not repeat an item"]
        }
    }
}

/// A body field with the Swift type of its validated value: the catalogue declares each
/// field once as one of these and reads it through `CommandInput`, so a renamed field is a
/// compile error, not a crash.
public struct Field<Value>: Sendable {
    public let declaration: BodyField
    let decode: @Sendable (JSONValue) -> Value?

    init(_ declaration: BodyField, _ decode: @escaping @Sendable (JSONValue) -> Value?) {
        self.declaration = declaration
        self.decode = decode
    }
}

extension Field where Value == String {
    public static func fqdn(_ name: String, required: Bool = true, _ summary: String) -> Self {
        Field(BodyField(name, .fqdn, required: required, summary)) { $0.stringValue }
    }

    public static func ipAddress(_ name: String, required: Bool = true, _ summary: String) -> Self {
        Field(BodyField(name, .ipAddress, required: required, summary)) { $0.stringValue }
    }
}

extension Field where Value == String {
    public static func projectName(_ name: String, _ summary: String) -> Self {
        Field(BodyField(name, .projectName, summary)) { $0.stringValue }
    }

    public static func text(_ name: String, maxBytes: Int, required: Bool = true, hashed: Bool = false, _ summary: String) -> Self {
        Field(BodyField(name, .text(maxBytes: maxBytes), required: required, hashed: hashed, summary)) { $0.stringValue }
    }

    public static func choice(_ name: String, _ choices: [String], required: Bool = true, _ summary: String) -> Self {
        Field(BodyField(name, .oneOf(choices), required: required, summary)) { $0.stringValue }
    }

    public static func string(_ name: String, _ kind: BodyField.Kind, required: Bool = true, _ summary: String) -> Self {
        Field(BodyField(name, kind, required: required, summary)) { $0.stringValue }
    }
}

extension Field where Value == [String] {
    public static func identifiers(_ name: String, _ summary: String) -> Self {
        Field(BodyField(name, .identifiers, required: false, summary)) { value in value.arrayValue.map { $0.compactMap(\.stringValue) } }
    }
}

extension Field where Value == Secret {
    /// Text that may hold secrets (a compose project's environment): redacted like a password.
    public static func secretText(_ name: String, maxBytes: Int, required: Bool = true, _ summary: String) -> Self {
        Field(BodyField(name, .text(maxBytes: maxBytes), required: required, secret: true, summary)) { $0.stringValue.map(Secret.init) }
    }

    /// Always secret: redacted in audit rows, logs and stored answers.
    public static func password(_ name: String, required: Bool = true, _ summary: String) -> Self {
        Field(BodyField(name, .password, required: required, secret: true, summary)) { $0.stringValue.map(Secret.init) }
    }
}

extension Field where Value == Int {
    public static func positiveInteger(_ name: String, required: Bool = true, _ summary: String) -> Self {
        Field(BodyField(name, .positiveInteger, required: required, summary)) { $0.intValue }
    }

    /// The VPS id repeated, to confirm a destructive command.
    public static func confirmation(_ summary: String) -> Self {
        Field(BodyField("confirm", .confirmation, summary)) { $0.intValue }
    }
}

extension Field where Value == Bool {
    public static func boolean(_ name: String, _ summary: String) -> Self {
        Field(BodyField(name, .boolean, required: false, summary)) { value in
            if case .bool(let flag) = value { flag } else { nil }
        }
    }
}

extension Field where Value == [Int] {
    public static func positiveIntegers(_ name: String, _ summary: String) -> Self {
        Field(BodyField(name, .positiveIntegers, summary)) { value in
            value.arrayValue.map { $0.compactMap(\.intValue) }
        }
    }
}

/// A `{name}` path segment: a positive integer (a Hostinger id), or a name.
public struct PathParameter: Sendable {
    public let name: String

    public init(_ name: String) { self.name = name }

    /// The segment as a path template writes it: `{backupId}`.
    public var segment: String { "{\(name)}" }

    /// The parameters that are names, not ids: a Docker Compose project's.
    public static let names: Set<String> = ["projectName"]

    /// Whether `text` is a valid value of the parameter called `name`.
    public static func accepts(_ name: String, _ text: Substring) -> Bool {
        names.contains(name) ? Validators.isProjectName(String(text)) : PathID.parse(text) != nil
    }
}

/// A command's validated input: the resource the path names, the other path parameters,
/// the body's fields.
public struct CommandInput: Sendable {
    public let target: Target
    /// The id the path names (the VPS's, the firewall's, …; 0 for the account).
    public var id: Int { target.id ?? 0 }
    /// The VPS id, for a VPS command.
    public var vps: Int { id }
    /// Path parameters, validated (`PathParameter.accepts`), as text.
    let parameters: [String: String]
    let members: [String: JSONValue]

    /// A field's value; absent or of the wrong shape (which validation rules out) is a field error.
    public func value<Value>(_ field: Field<Value>) throws(FieldErrors) -> Value {
        guard let value = optional(field) else {
            throw FieldErrors([(field.declaration.name, ["is required"])])
        }
        return value
    }

    /// An optional field's value, nil when absent or null.
    public func optional<Value>(_ field: Field<Value>) -> Value? {
        members[field.declaration.name].flatMap { $0.isNull ? nil : field.decode($0) }
    }

    public func value(_ parameter: PathParameter) throws(FieldErrors) -> Int {
        guard let text = parameters[parameter.name], let value = PathID.parse(Substring(text)) else {
            throw FieldErrors([(parameter.name, ["must be a positive integer"])])
        }
        return value
    }

    /// A name parameter's value (a Docker Compose project's).
    public func name(_ parameter: PathParameter) throws(FieldErrors) -> String {
        guard let text = parameters[parameter.name], PathParameter.accepts(parameter.name, Substring(text)) else {
            throw FieldErrors([(parameter.name, ["is not a valid name"])])
        }
        return text
    }

    /// Checks `body` against `fields`: an object, no unknown fields, every rule; the members by name.
    static func validate(_ body: JSONValue?, fields: [BodyField], id: Int) throws(FieldErrors) -> [String: JSONValue] {
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
            throw errors
        }
        for field in fields {
            for message in field.problems(members[field.name], vps: id) { errors.add(field.name, message) }
        }
        guard errors.isEmpty else { throw errors }
        return members
    }
}
