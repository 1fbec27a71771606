/// What a command acts on and what a grant names (docs/design.md#resources-and-grants): a VPS, an account-level
/// firewall, SSH key or post-install script, or the account itself (which new resources are
/// created in, and VMs bought for).
public enum ResourceKind: String, Sendable, CaseIterable {
    case vps
    case firewall
    case publicKey = "public_key"
    case postInstallScript = "post_install_script"
    case account

    /// The first segment of its routes under `/v1` (none for the account: its commands name
    /// the collection they add to).
    public var collection: String? {
        switch self {
        case .vps: "vps"
        case .firewall: "firewalls"
        case .publicKey: "public-keys"
        case .postInstallScript: "post-install-scripts"
        case .account: nil
        }
    }

    /// The permission that lets a principal read it (the account: any grant on it; the same
    /// rule as the database's `vpsgate_may_read`).
    public var readPermission: Permission? {
        switch self {
        case .vps: .read
        case .firewall: .firewallRead
        case .publicKey: .publicKeyRead
        case .postInstallScript: .scriptRead
        case .account: nil
        }
    }

    /// How messages name one: `firewall 4001`.
    public var noun: String {
        switch self {
        case .vps: "VPS"
        case .firewall: "firewall"
        case .publicKey: "SSH key"
        case .postInstallScript: "post-install script"
        case .account: "the account"
        }
    }
}

/// One resource: a kind and its id (the account has none). A grant's resource may instead
/// name every id of its kind (`firewall:*`).
public struct Target: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var kind: ResourceKind
    public var id: Int?

    public init(_ kind: ResourceKind, _ id: Int?) {
        self.kind = kind
        self.id = kind == .account ? nil : id
    }

    public static func vps(_ id: Int) -> Target { Target(.vps, id) }
    public static let account = Target(.account, nil)

    /// The VPS, for a VPS resource.
    public var vpsID: Int? { kind == .vps ? id : nil }

    /// The id of a firewall, key or script (what `operations.resource_id` keeps).
    public var ownID: Int? { kind == .vps || kind == .account ? nil : id }

    /// `VPS 1001`, `firewall 4001`, `the account`.
    public var description: String {
        guard let id else { return kind.noun }
        return "\(kind.noun) \(id)"
    }

    /// `vps:1001`, `firewall:4001`, `account` (grants with no id print `firewall:*`).
    public var text: String {
        guard kind != .account else { return "account" }
        return "\(kind.rawValue):\(id.map(String.init) ?? "*")"
    }

    /// Parses `vps:1001`, `firewall:*`, `account` (a grant's resource; `*`: every id).
    public static func parse(_ text: String) -> Target? {
        if text == "account" || text == "account:*" { return .account }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let kind = ResourceKind(rawValue: String(parts[0])), kind != .account else { return nil }
        if parts[1] == "*" { return Target(kind, nil) }
        guard let id = PathID.parse(parts[1]) else { return nil }
        return Target(kind, id)
    }

    /// `{"type": "firewall", "id": 4001}`, as operations, events and plans show it.
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.member("type", kind.rawValue)
        writer.member("id", id)
        writer.endObject()
    }
}

extension Target {
    /// Hostinger's read of the resource, shown in a plan (nil: none; an SSH key has no read
    /// of its own, the account none).
    public var hostingerRead: HostingerRequest? {
        guard let id else { return nil }
        switch kind {
        case .vps: return .virtualMachine(id)
        case .firewall: return .firewall(id)
        case .postInstallScript: return .script(id)
        case .publicKey, .account: return nil
        }
    }
}
