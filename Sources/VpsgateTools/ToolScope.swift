import VpsgateCore

/// A named group of tools an agent may be narrowed to (`--toolsets`, `?toolsets=`): the
/// catalogue's resource kinds, and `operations` for what follows commands (operations, the
/// event feed, batches and the plan tool).
public enum Toolset: String, Sendable, CaseIterable {
    case vps
    case firewall
    case publicKey = "public_key"
    case postInstallScript = "post_install_script"
    case account
    case operations

    /// The toolset of the tools of a resource kind: its commands and its reads.
    public init(_ kind: ResourceKind) {
        switch kind {
        case .vps: self = .vps
        case .firewall: self = .firewall
        case .publicKey: self = .publicKey
        case .postInstallScript: self = .postInstallScript
        case .account: self = .account
        }
    }

    /// One line for `--help` and docs/clients.md.
    public var summary: String {
        switch self {
        case .vps: "the commands and reads on a VPS: power, hostname, Docker, snapshots, backups, metrics, …"
        case .firewall: "firewalls and their rules"
        case .publicKey: "the account's SSH public keys"
        case .postInstallScript: "the account's post-install scripts"
        case .account: "the account's catalogue of templates and data centers, and purchases"
        case .operations: "operations, the event feed, batches, and plan for the other toolsets' commands"
        }
    }
}

/// Which tools an agent sees and may call: every tool its grants allow, or fewer (read-only,
/// some toolsets). A call to a tool outside the scope is refused before anything is sent.
public struct ToolScope: Sendable, Equatable {
    /// Only tools that change nothing (reads, and plan).
    public var readOnly: Bool
    /// The toolsets; nil: all.
    public var toolsets: Set<Toolset>?

    public init(readOnly: Bool = false, toolsets: Set<Toolset>? = nil) {
        self.readOnly = readOnly
        self.toolsets = toolsets
    }

    /// Everything the grants allow.
    public static let all = ToolScope()

    /// `vps,firewall` ⇒ the two toolsets; an unknown name is an error naming the known ones.
    public static func toolsets(_ text: String) -> Result<Set<Toolset>, ToolScopeError> {
        var sets: Set<Toolset> = []
        for name in text.split(separator: ",") {
            let trimmed = name.trimmingCharacters(in: " ")
            guard let set = Toolset(rawValue: trimmed) else {
                return .failure(ToolScopeError(description: "unknown toolset \(trimmed); the toolsets are "
                    + Toolset.allCases.map(\.rawValue).joined(separator: ", ")))
            }
            sets.insert(set)
        }
        guard !sets.isEmpty else {
            return .failure(ToolScopeError(description: "toolsets is empty; name one or more of "
                + Toolset.allCases.map(\.rawValue).joined(separator: ", ")))
        }
        return .success(sets)
    }

    /// Whether a tool of `toolset` that does (or does not) change anything is in the scope.
    public func allows(_ toolset: Toolset, readOnly toolIsReadOnly: Bool) -> Bool {
        (!readOnly || toolIsReadOnly) && (toolsets?.contains(toolset) ?? true)
    }
}

/// A scope that cannot be: an unknown toolset's name, or none.
public struct ToolScopeError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var text = self
        while text.first == set { text = text.dropFirst() }
        while text.last == set { text = text.dropLast() }
        return String(text)
    }
}
