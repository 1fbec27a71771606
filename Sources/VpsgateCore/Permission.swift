/// What a role may do (docs/design.md#authorization).
public enum Permission: String, Sendable, CaseIterable {
    case read = "vps:read"
    case power = "vps:power"
    case configure = "vps:configure"
    case credentials = "vps:credentials"
    case snapshot = "vps:snapshot"
    case destroy = "vps:destroy"
    /// Approve or deny another principal's command that needs approval (docs/design.md#change-control).
    case approve = "vps:approve"
    /// Set up a purchased VM still in state `initial` (docs/design.md#resources-and-grants).
    case setup = "vps:setup"
    /// Read a VPS's Docker Manager projects (docs/design.md#resources-and-grants).
    case dockerRead = "docker:read"
    /// Create, start, stop, restart, update and take down Docker Manager projects.
    case dockerWrite = "docker:write"
    /// Read a firewall and its rules (granted on `firewall:<id>` or `firewall:*`).
    case firewallRead = "firewall:read"
    /// Change a firewall's rules or delete it; on `account`: create firewalls.
    case firewallWrite = "firewall:write"
    case publicKeyRead = "public_key:read"
    /// Delete an SSH key; on `account`: add keys.
    case publicKeyWrite = "public_key:write"
    case scriptRead = "script:read"
    /// Change or delete a post-install script; on `account`: create scripts.
    case scriptWrite = "script:write"
    /// Buy a new VM (on `account`); always needs an approval.
    case billingPurchase = "billing:purchase"
}
