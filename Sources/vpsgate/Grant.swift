import ArgumentParser
import FastCGI
import Foundation
import HTTPClient
import Hostinger
import Logging
import Platform
import Postgres
import VpsgateCore
import VpsgateService
import VpsgateStore

#if canImport(Glibc)
import Glibc
#endif

struct Grant: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage grants: a principal holds a role on a resource: one VPS or every VPS ('*'), a firewall, an SSH key, a post-install script, or the account.",
        subcommands: [Add.self, Revoke.self, List.self])

    /// A `--vps` value: an id, or nil for '*' (every VPS).
    static func vps(_ text: String) throws -> Int? {
        if text == "*" { return nil }
        guard let id = PathID.parse(Substring(text)) else { throw ValidationError("--vps takes a VPS id or '*'") }
        return id
    }

    /// What `--vps` or `--resource` names (exactly one of them).
    static func resource(vps: String?, resource: String?) throws -> Target {
        switch (vps, resource) {
        case (let vps?, nil):
            if vps == "*" { return Target(.vps, nil) }
            guard let id = PathID.parse(Substring(vps)) else { throw ValidationError("--vps takes a VPS id or '*'") }
            return .vps(id)
        case (nil, let text?):
            guard let target = Target.parse(text) else {
                throw ValidationError("--resource takes TYPE:ID or TYPE:* (types: vps, firewall, public_key, post_install_script), or account")
            }
            return target
        default:
            throw ValidationError("name the resource with --vps ID|'*' or --resource TYPE:ID|TYPE:*|account (one of them)")
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grant a role.")
        @Option var principal: String
        @Option(help: "A VPS id, or '*' for every VPS (same as --resource vps:ID).") var vps: String?
        @Option(help: "firewall:4001, public_key:*, post_install_script:6001, vps:1001, or account (what creating firewalls, keys, scripts and buying VMs needs).")
        var resource: String?
        @Option(help: "viewer, operator, approver, admin (or a role added in the database).") var role: String
        @Option(help: "Lifetime, e.g. 12h, 30d (default: no expiry).") var expires: String?
        @OptionGroup var admin: AdminOptions
        func run() throws {
            let target = try Grant.resource(vps: vps, resource: resource)
            try adminSession(admin.actor).addGrant(principal: principal, resource: target, role: role, expiresInSeconds: try parseExpiry(expires))
            print("granted \(role) on \(target.text) to \(principal)")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke grants (one role, or every role on that resource).")
        @Option var principal: String
        @Option(help: "A VPS id, or '*'.") var vps: String?
        @Option(help: "TYPE:ID, TYPE:* or account, as at grant add.") var resource: String?
        @Option var role: String?
        @OptionGroup var admin: AdminOptions
        func run() throws {
            let removed = try adminSession(admin.actor).revokeGrant(principal: principal, resource: try Grant.resource(vps: vps, resource: resource),
                                                                    role: role)
            print("revoked \(removed) grant(s)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List grants.")
        func run() throws {
            printTable(["ID", "PRINCIPAL", "RESOURCE", "ROLE", "EXPIRES", "STATUS"], try adminSession(nil).listGrants())
        }
    }
}
