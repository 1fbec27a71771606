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

struct Webhook: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Webhook endpoints (Standard Webhooks): signed POSTs of the events a principal may read.",
        discussion: "URLs must be https:// and resolve to public addresses only (VPSGATE_WEBHOOK_ALLOW_NETWORKS allow-lists others); "
            + "the check runs here and again at every delivery.",
        subcommands: [Add.self, List.self, Disable.self, Enable.self, Remove.self, Deliveries.self, Redeliver.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add an endpoint; prints its signing secret (whsec_…) once.")
        @Option(help: "The principal whose grants decide what the endpoint receives.") var principal: String
        @Option(help: "https:// URL of the receiver.") var url: String
        @Option(help: "Event types, comma-separated (operation.succeeded, operation.*, approval.granted, …; default: every type).")
        var events: String?
        @Option(help: "One VPS id, or '*' for every VPS the principal may read.") var vps: String = "*"
        @OptionGroup var admin: AdminOptions

        func run() throws {
            let configuration = try readConfiguration()
            let keys = try loadSecretKeys(configuration)
            let destination: WebhookURL
            switch WebhookURL.parse(url) {
            case .success(let parsed): destination = parsed
            case .failure(let refusal): throw ValidationError("--url \(refusal)")
            }
            switch WebhookTarget.check(destination, allow: configuration.webhookAllowNetworks) {
            case .success: break
            case .failure(.unresolvable(let message)): throw ValidationError("--url: \(message)")
            case .failure(.refused(let refusal)): throw ValidationError("--url refused: \(refusal)")
            }
            let types = events.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            if let bad = types?.first(where: { !EventType.isSubscribable($0) }) {
                throw ValidationError("--events: unknown event type \(bad); types: \((EventType.all + EventType.wildcards).joined(separator: ", "))")
            }
            let key = WebhookSignature.generateKey()
            let sealed = try keys.seal(key)
            let id = try adminSession(admin.actor).addWebhook(principal: principal, url: url, events: types, vps: try Grant.vps(vps),
                                                              sealedSecret: sealed.sealed, keyID: sealed.keyID)
            print("webhook \(id) for \(principal) -> \(url)")
            print("signing secret (shown once): \(WebhookSignature.secretText(key))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List endpoints (never their secrets).")
        func run() throws {
            printTable(["ID", "PRINCIPAL", "URL", "EVENTS", "VPS", "STATE", "PENDING", "FAILED"], try adminSession(nil).listWebhooks())
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop sending to an endpoint (its pending deliveries wait).")
        @Argument(help: "The endpoint id.") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).setWebhook(id: id, enabled: false)
            print("disabled webhook \(id)")
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send to a disabled endpoint again.")
        @Argument(help: "The endpoint id.") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).setWebhook(id: id, enabled: true)
            print("enabled webhook \(id)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an endpoint and its deliveries.")
        @Argument(help: "The endpoint id.") var id: Int
        @OptionGroup var admin: AdminOptions
        func run() throws {
            try adminSession(admin.actor).removeWebhook(id: id)
            print("removed webhook \(id)")
        }
    }

    struct Deliveries: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List deliveries, newest first.")
        @Option(help: "Only this endpoint.") var endpoint: Int?
        @Option(help: "pending, delivered, failed or dropped.") var state: String?
        @Option(help: "At most this many (default 50).") var limit: Int = 50
        func run() throws {
            if let state, !["pending", "delivered", "failed", "dropped"].contains(state) {
                throw ValidationError("--state takes pending, delivered, failed or dropped")
            }
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit takes 1 to 10000") }
            printTable(["ID", "WEBHOOK-ID", "ENDPOINT", "TYPE", "VPS", "STATE", "ATTEMPTS", "STATUS", "ERROR", "AT"],
                       try adminSession(nil).listDeliveries(endpoint: endpoint, state: state, limit: limit))
        }
    }

    struct Redeliver: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send again (same webhook-id): one delivery by id, or every failed delivery of --endpoint.")
        @Argument(help: "A delivery id (see webhook deliveries).") var delivery: Int?
        @Option(help: "Every failed delivery of this endpoint.") var endpoint: Int?
        @OptionGroup var admin: AdminOptions
        func run() throws {
            guard (delivery == nil) != (endpoint == nil) else { throw ValidationError("give a delivery id or --endpoint, not both") }
            let moved = try adminSession(admin.actor).redeliver(delivery: delivery, endpoint: endpoint)
            print("\(moved) deliver\(moved == 1 ? "y" : "ies") scheduled again")
        }
    }
}
