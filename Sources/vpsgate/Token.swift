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

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the API tokens nginx checks (only their SHA-256 is stored).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token and print it once.")
        @Option(help: "The principal the token authenticates.") var principal: String
        @Option(help: "Lifetime, e.g. 12h, 30d (default: no expiry).") var expires: String?
        @OptionGroup var admin: AdminOptions

        func run() throws {
            let expiry = try parseExpiry(expires)
            let token = try adminSession(admin.actor).createToken(principal: principal, expiresInSeconds: expiry)
            print(token)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List tokens (never the tokens themselves).")
        func run() throws {
            printTable(["ID", "PRINCIPAL", "HINT", "CREATED", "EXPIRES", "STATUS"], try adminSession(nil).listTokens())
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by its id.")
        @Argument(help: "The token id (see token list).") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).revokeToken(id: id)
            print("revoked token \(id)")
        }
    }
}
