/// One explicit command of vpsgate's API, as data: the pipeline is generic over these.
///
/// Adding a command means adding one value to `Command.catalogue`; routing, authorization,
/// validation, redaction, idempotency, audit, retries, the reconciler's action matching, the
/// OpenAPI document, vpsgatectl's commands and flags and the MCP server's tools all read it.
public struct Command: Sendable {
    /// The stable name in operations and audit rows: `vps.stop`.
    public var name: String
    public var method: String
    /// What it acts on: its route starts `/v1/<collection>/{id}` (`/v1/vps/{id}`,
    /// `/v1/firewalls/{id}`, …), or for the account `/v1`.
    public var scope: ResourceKind
    /// Path segments after that start; `{name}` segments are positive integers, or names
    /// (`PathParameter.names`).
    public var pathSuffix: [String]
    public var permission: Permission
    /// The body's fields; an empty list means the command takes no body.
    public var fields: [BodyField]
    public var summary: String
    /// The side effects Hostinger documents for the call, shown in the plan (docs/design.md#change-control).
    public var effects: [String]
    /// Hostinger answers with the resource it made or changed, not an action: the operation
    /// is terminal at once, with the resource in `result` (docs/design.md#resources-and-grants).
    public var answersResource: Bool
    /// Approvals it needs whatever the policy says (a purchase: 1, docs/design.md#resources-and-grants).
    public var minimumApprovals: Int
    /// A firewall rule change: every VM using the firewall is out of sync until synced, and
    /// the answer names them (docs/design.md#resources-and-grants).
    public var unsyncsFirewall: Bool
    /// It changes every VPS that has its firewall active (a rule change leaves them out of
    /// sync, a delete deactivates it there): a freeze on any of them holds it.
    public var changesFirewallVPS: Bool
    /// It cannot be undone: no later command puts back what it took away. That is so when it
    /// - deletes something (a firewall, a rule, a key, a script, a snapshot, a PTR record, a
    ///   Docker project; resetting the hostname deletes the PTR records too): made again, it
    ///   is a new thing;
    /// - overwrites what vpsgate does not keep (a disk: restores, the reinstall, the setup; the
    ///   one snapshot: a new one replaces it; containers recreated from newly pulled images; a
    ///   script's content, kept only as its SHA-256);
    /// - hands out a credential (a password set, recovery with its root password): the old
    ///   password is gone, and whoever had the new one may have used it;
    /// - spends money (the purchase).
    /// Power, settings that can be set back to their previous value (hostname, resolvers,
    /// a PTR record's domain, firewall activation and sync, a rule's fields) and additions
    /// (creating, attaching, installing) are not. The MCP server marks these tools
    /// `destructiveHint`, and vpsgatectl asks before sending them (`--yes` skips).
    /// Every `destructive` command is irreversible.
    public var irreversible: Bool
    /// The names of the actions Hostinger records for its request (`ct_restart`), which the
    /// reconciler looks for when an answer was lost; empty when Hostinger answers with the
    /// resource instead of an action (`answersResource`).
    public var actions: Set<String>
    /// The Hostinger call, from the validated input (read through typed `Field`s and
    /// `PathParameter`s: a value the validation did not provide is a field error, never a crash).
    public var hostinger: @Sendable (_ input: CommandInput) throws(FieldErrors) -> HostingerRequest

    public init(
        _ name: String, _ method: String, on scope: ResourceKind = .vps, _ pathSuffix: [String], _ permission: Permission,
        fields: [BodyField] = [], summary: String, effects: [String] = [], answersResource: Bool = false, minimumApprovals: Int = 0,
        unsyncsFirewall: Bool = false, changesFirewallVPS: Bool = false, irreversible: Bool = false, actions: Set<String> = [],
        hostinger: @escaping @Sendable (CommandInput) throws(FieldErrors) -> HostingerRequest
    ) {
        self.effects = effects
        self.answersResource = answersResource
        self.scope = scope
        self.minimumApprovals = minimumApprovals
        self.unsyncsFirewall = unsyncsFirewall
        self.changesFirewallVPS = changesFirewallVPS || unsyncsFirewall
        self.irreversible = irreversible
        self.actions = actions
        self.name = name
        self.method = method
        self.pathSuffix = pathSuffix
        self.permission = permission
        self.fields = fields
        self.summary = summary
        self.hostinger = hostinger
    }

    /// Requires `"confirm": <VPS id>` (the `vps:destroy` commands).
    public var destructive: Bool { fields.contains { $0.kind == .confirmation } }

    /// Body fields whose values never reach logs, audit rows or stored answers.
    public var secretFields: Set<String> { Set(fields.filter(\.secret).map(\.name)) }

    /// Body fields kept only as their SHA-256 in audit rows, stored answers and results
    /// (a post-install script's content).
    public var hashedFields: Set<String> { Set(fields.filter(\.hashed).map(\.name)) }

    /// Checks the body and builds the Hostinger request, or says what is wrong, field by field.
    public func prepare(_ target: Target, parameters: [String: String], body: JSONValue?) -> Result<HostingerRequest, FieldErrors> {
        do {
            let members = try CommandInput.validate(body, fields: fields, id: target.id ?? 0)
            return .success(try hostinger(CommandInput(target: target, parameters: parameters, members: members)))
        } catch {
            return .failure(error)
        }
    }

    /// The command called `name`.
    public static func named(_ name: String) -> Command? { catalogue.first { $0.name == name } }

    /// The segments of its route after `/v1`: `vps`, `{id}`, `stop`.
    var templateSegments: [String] {
        guard let collection = scope.collection else { return pathSuffix }
        return [collection, "{id}"] + pathSuffix
    }

    /// The path template: `/v1/vps/{id}/stop`, `/v1/firewalls/{id}/rules`, `/v1/public-keys`.
    public var pathTemplate: String { "/v1/" + templateSegments.joined(separator: "/") }
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
    /// The command for `method` and the path's segments after `/v1`, with the resource it
    /// names and its other path parameters (each valid for its kind: an id, or a name).
    public static func match(method: String, segments: [Substring]) -> (Command, Target, [String: String])? {
        for command in catalogue where command.method == method {
            let template = command.templateSegments
            guard template.count == segments.count else { continue }
            var parameters: [String: String] = [:]
            var id: Int?
            var matched = true
            for (pattern, segment) in zip(template, segments) {
                if pattern == "{id}" {
                    guard let parsed = PathID.parse(segment) else { matched = false; break }
                    id = parsed
                } else if pattern.hasPrefix("{") {
                    let name = String(pattern.dropFirst().dropLast())
                    guard PathParameter.accepts(name, segment) else { matched = false; break }
                    parameters[name] = String(segment)
                } else if pattern != segment {
                    matched = false
                    break
                }
            }
            if matched { return (command, Target(command.scope, id), parameters) }
        }
        return nil
    }

    /// The command a request path names, for labels and refusals: `path` as sent (`/v1/…`).
    public static func match(method: String, path: String) -> (Command, Target, [String: String])? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard segments.first == "v1" else { return nil }
        return match(method: method, segments: Array(segments.dropFirst()))
    }
}

/// Path ids: positive decimal integers without sign or leading zeros.
public enum PathID {
    public static func parse(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 18, text.first != "0", text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }
}
