/// One explicit command of vpsgate's API, as data: the pipeline is generic over these.
///
/// Adding a command means adding one value to `Command.catalogue`; routing, authorization,
/// validation, idempotency, audit and retries all read it.
public struct Command: Sendable {
    /// The stable name in operations and audit rows: `vps.stop`.
    public var name: String
    public var method: String
    /// Path segments after `/v1/vps/{id}`; `{name}` segments are positive integers.
    public var pathSuffix: [String]
    public var permission: Permission
    /// Requires `"confirm": <VPS id>` in the body.
    public var destructive: Bool
    /// Body fields whose values never reach logs, audit rows or stored responses.
    public var secretFields: Set<String>
    /// Checks the body and path parameters; returns field errors or the Hostinger request.
    public var prepare: @Sendable (_ vps: Int, _ parameters: [String: Int], _ body: JSONValue?) -> Result<HostingerRequest, FieldErrors>

    public init(
        name: String, method: String, pathSuffix: [String], permission: Permission, destructive: Bool = false,
        secretFields: Set<String> = [], prepare: @escaping @Sendable (Int, [String: Int], JSONValue?) -> Result<HostingerRequest, FieldErrors>
    ) {
        self.name = name
        self.method = method
        self.pathSuffix = pathSuffix
        self.permission = permission
        self.destructive = destructive
        self.secretFields = secretFields
        self.prepare = prepare
    }

    /// The path template, for documentation: `/v1/vps/{id}/stop`.
    public var pathTemplate: String { (["/v1/vps/{id}"] + pathSuffix).joined(separator: "/") }
}

/// Per-field validation messages, in field order.
public struct FieldErrors: Error, Sendable, Equatable {
    public var fields: [(field: String, messages: [String])]

    public init(_ fields: [(field: String, messages: [String])] = []) { self.fields = fields }

    public var isEmpty: Bool { fields.isEmpty }

    public mutating func add(_ field: String, _ message: String) {
        if let index = fields.firstIndex(where: { $0.field == field }) {
            fields[index].messages.append(message)
        } else {
            fields.append((field, [message]))
        }
    }

    public static func == (lhs: FieldErrors, rhs: FieldErrors) -> Bool {
        lhs.fields.map(\.field) == rhs.fields.map(\.field) && lhs.fields.map(\.messages) == rhs.fields.map(\.messages)
    }
}

extension Command {
    /// A command with no body: any body other than empty or `{}` is refused.
    static func bodiless(_ name: String, _ method: String, _ suffix: [String], _ permission: Permission,
                         _ request: @escaping @Sendable (Int, [String: Int]) -> HostingerRequest) -> Command {
        Command(name: name, method: method, pathSuffix: suffix, permission: permission) { vps, parameters, body in
            var errors = FieldErrors()
            if let members = body?.objectValue {
                for member in members { errors.add(member.key, "unknown field") }
            } else if let body, !body.isNull {
                errors.add("body", "must be a JSON object")
            }
            return errors.isEmpty ? .success(request(vps, parameters)) : .failure(errors)
        }
    }

    /// Every command vpsgate offers.
    public static let catalogue: [Command] = [
        .bodiless("vps.start", "POST", ["start"], .power) { vps, _ in .start(vm: vps) },
        .bodiless("vps.stop", "POST", ["stop"], .power) { vps, _ in .stop(vm: vps) },
        .bodiless("vps.restart", "POST", ["restart"], .power) { vps, _ in .restart(vm: vps) },
    ]

    /// The command for `method` and the segments after `/v1/vps/{id}`, with its integer path parameters.
    public static func match(method: String, suffix: [Substring]) -> (Command, [String: Int])? {
        for command in catalogue where command.method == method && command.pathSuffix.count == suffix.count {
            var parameters: [String: Int] = [:]
            var matched = true
            for (pattern, segment) in zip(command.pathSuffix, suffix) {
                if pattern.hasPrefix("{") {
                    guard let value = PathID.parse(segment) else { matched = false; break }
                    parameters[String(pattern.dropFirst().dropLast())] = value
                } else if pattern != segment {
                    matched = false
                    break
                }
            }
            if matched { return (command, parameters) }
        }
        return nil
    }
}

/// Path ids: positive decimal integers without sign or leading zeros.
public enum PathID {
    public static func parse(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 18, text.first != "0", text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }
}
