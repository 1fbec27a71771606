import HTTPClient
import Logging
import Platform
import VpsgateCore
import VpsgateStore

/// Listens for the outbox's notifications on a connection of its own and wakes the
/// `PushBoard`. Whenever it (re)starts listening it wakes everyone: a notification sent
/// while it was not listening is lost, so everyone reads the database again.
public final class EventListener: Sendable {
    private let context: ServiceContext
    private let loop = BackgroundLoop()

    public init(context: ServiceContext) {
        self.context = context
    }

    struct State {
        var notifications: EventNotifications
        var listening = false
        var logger: Logger
    }

    public func start() {
        let context = self.context
        loop.start(setUp: {
            var logger = context.logger
            logger[metadataKey: "component"] = "listener"
            // LISTEN is session state: a connection of its own, never through a transaction-mode pooler.
            return State(notifications: EventNotifications(url: context.configuration.listenDatabaseURL,
                                                           applicationName: "vpsgate listener \(context.instance)"),
                         logger: logger)
        }, pass: { state, _ in
            if !state.listening {
                do {
                    try state.notifications.listen()
                    state.listening = true
                    context.push.changedAll()
                } catch {
                    state.logger.warning("cannot listen for events; waiting requests fall back to their deadline",
                                         metadata: ["error": "\(error)"])
                    return 1000
                }
            }
            do {
                for payload in try state.notifications.next(timeoutMilliseconds: 250) {
                    // `<operation id or -> <type>[ deliveries]`
                    let parts = payload.split(separator: " ")
                    let operation = parts.first.map(String.init)
                    context.push.changed(operation == "-" ? nil : operation, deliveries: parts.count > 2 && parts[2] == "deliveries")
                }
            } catch {
                state.logger.warning("event listener lost its connection", metadata: ["error": "\(error)"])
                state.listening = false
                return 250
            }
            return 0
        })
    }

    public func stop(timeoutMilliseconds: Int = 2000) {
        loop.stop(timeoutMilliseconds: timeoutMilliseconds)
    }
}

/// Sends webhooks (docs/design.md#completion-push) from the instances' background work, never from a
/// FastCGI worker: each sender thread leases one due delivery at a time (SKIP LOCKED, with
/// an expiry, so a killed instance's deliveries are taken over), checks and pins the
/// receiver's addresses, signs, posts and records the outcome.
public final class WebhookSender: Sendable {
    private let context: ServiceContext
    private let loops: [BackgroundLoop]

    public init(context: ServiceContext) {
        self.context = context
        self.loops = (0..<context.configuration.webhookSenders).map { _ in BackgroundLoop() }
    }

    struct State {
        var store: PostgresStore
        var metrics: Metrics.Shard
        var logger: Logger
        var owner: String
        var seen: UInt64
    }

    public func start() {
        let context = self.context
        for (index, loop) in loops.enumerated() {
            loop.start(setUp: {
                var logger = context.logger
                logger[metadataKey: "component"] = "webhooks"
                return State(store: context.makeStore(role: "webhooks"), metrics: context.metrics.shard(), logger: logger,
                             owner: "\(context.instance)/\(index)", seen: context.push.watch(PushBoard.deliveries))
            }, pass: { state, _ in
                Self.pass(&state, context: context)
            })
        }
    }

    public func stop(timeoutMilliseconds: Int = 5000) {
        for loop in loops { loop.stop(timeoutMilliseconds: timeoutMilliseconds) }
    }

    /// One delivery, or a wait for the next event (at most a second: retries come due by time).
    static func pass(_ state: inout State, context: ServiceContext) -> Int {
        let configuration = context.configuration
        let leased: [LeasedDelivery]
        do {
            leased = try state.store.leaseDeliveries(owner: state.owner, limit: 1,
                                                     leaseSeconds: configuration.webhookTimeoutMilliseconds / 1000 + 15)
        } catch {
            state.logger.warning("cannot lease webhook deliveries", metadata: ["error": "\(error)"])
            return 1000
        }
        guard let delivery = leased.first else {
            // Woken when an event owes a webhook; retries come due by time, so look every second too.
            state.seen = context.push.wait(for: PushBoard.deliveries, after: state.seen, until: MonotonicClock.milliseconds() + 1000)
            return 0
        }
        // Each delivery attempt is a trace of its own, linked to the request that made the
        // event's operation. Its attributes name the delivery, never its URL or body.
        Tracing.background("webhook delivery", tracer: context.tracer, linkedTo: delivery.traceparent) { span in
            span?.set("vpsgate.webhook.delivery_id", Int(delivery.id))
            span?.set("vpsgate.webhook.endpoint_id", Int(delivery.endpointID))
            span?.set("vpsgate.event.type", delivery.event.type)
            span?.set("vpsgate.webhook.attempt", delivery.attempts)
            if let operation = delivery.event.operationID { span?.set("vpsgate.operation.id", operation) }
            deliver(delivery, &state, context: context)
        }
        return 0
    }

    /// Sends a leased delivery and records how it went.
    static func deliver(_ delivery: LeasedDelivery, _ state: inout State, context: ServiceContext) {
        let configuration = context.configuration
        let attempt: Attempt = Tracing.span("POST", kind: .client) { span in
            let sent = Self.attempt(delivery, context: context)
            span?.set("http.request.method", "POST")
            if let status = sent.status { span?.set("http.response.status_code", status) }
            if sent.outcome != .delivered { span?.fail(sent.refused ? "refused" : sent.outcome.rawValue) }
            return sent
        }
        let retryIn = configuration.webhookRetrySchedule.delay(afterAttempts: delivery.attempts, unit: Double.random(in: 0..<1))
        do {
            let after = try state.store.completeDelivery(delivery.id, owner: state.owner, outcome: attempt.outcome, status: attempt.status,
                                                         error: attempt.error, retryInSeconds: retryIn,
                                                         giveUpSeconds: configuration.webhookGiveUpSeconds)
            let label = attempt.refused ? "refused" : (after == "failed" && attempt.outcome == .retry ? "failed" : attempt.outcome.rawValue)
            state.metrics.increment(Metrics.webhookDeliveries, [("outcome", label)])
            if attempt.outcome == .delivered {
                let lag = Double(Clock.realtimeMicroseconds() - delivery.event.occurredAt) / 1_000_000
                state.metrics.observe(Metrics.webhookDeliveryLag, [], seconds: max(0, lag))
            }
            if attempt.outcome != .delivered {
                state.logger.info("webhook not delivered", metadata: [
                    "delivery": "\(delivery.id)", "endpoint": "\(delivery.endpointID)", "webhook_id": "\(delivery.event.publicID)",
                    "attempt": "\(delivery.attempts)", "status": "\(attempt.status.map(String.init) ?? "-")",
                    "error": "\(attempt.error ?? "-")", "now": "\(after)",
                ])
            }
        } catch {
            // The lease runs out and the delivery is sent again: at least once, same webhook-id.
            state.logger.warning("webhook outcome not recorded", metadata: ["delivery": "\(delivery.id)", "error": "\(error)"])
        }
    }

    struct Attempt {
        var outcome: DeliveryOutcome
        var status: Int?
        var error: String?
        var refused = false
    }

    /// Sends one delivery: only to addresses checked now, connected to as checked.
    static func attempt(_ delivery: LeasedDelivery, context: ServiceContext) -> Attempt {
        let configuration = context.configuration
        guard delivery.readable else {
            return Attempt(outcome: .dropped, error: "the endpoint's principal may no longer read this event's VPS")
        }
        guard let key = context.keys.open(delivery.sealedSecret, keyID: delivery.keyID) else {
            return Attempt(outcome: .retry, error: "the signing secret cannot be opened with VPSGATE_SECRET_KEY_FILE (key \(delivery.keyID))")
        }
        let url: WebhookURL
        switch WebhookURL.parse(delivery.url) {
        case .success(let parsed): url = parsed
        case .failure(let refusal): return Attempt(outcome: .retry, error: "URL \(refusal)", refused: true)
        }
        let target: WebhookTarget
        switch WebhookTarget.check(url, allow: configuration.webhookAllowNetworks) {
        case .success(let checked): target = checked
        case .failure(.unresolvable(let message)): return Attempt(outcome: .retry, error: message)
        case .failure(.refused(let refusal)): return Attempt(outcome: .retry, error: "refused: \(refusal)", refused: true)
        }
        let body = delivery.event.webhookJSON(consoleURL: configuration.consoleURL)
        let timestamp = Int(Clock.realtimeMicroseconds() / 1_000_000)
        let id = delivery.event.publicID
        let request = HTTPClient.Request(
            method: "POST", url: url.text,
            headers: [("Content-Type", "application/json"), ("User-Agent", "vpsgate-webhooks/0.1"), ("webhook-id", id),
                      ("webhook-timestamp", String(timestamp)),
                      ("webhook-signature", WebhookSignature.sign(key: key, id: id, timestamp: timestamp, body: body))],
            body: body, connectTimeoutMilliseconds: min(3000, configuration.webhookTimeoutMilliseconds),
            timeoutMilliseconds: configuration.webhookTimeoutMilliseconds, freshConnection: true,
            pinned: target.isLiteral ? nil : (url.host, url.port, target.addresses.map(IPNetwork.format)), direct: true)
        switch HTTPClient(caFile: configuration.webhookCAFile).perform(request) {
        case .success(let response):
            let outcome = DeliveryOutcome.of(status: response.status)
            return Attempt(outcome: outcome, status: response.status,
                           error: outcome == .delivered ? nil : "the receiver answered \(response.status)")
        case .failure(let error):
            return Attempt(outcome: .retry, error: error.message)
        }
    }
}

/// The addresses a webhook URL may be sent to now: its host resolved (an IP literal is its
/// own address) and every address checked against the destination policy. The one check
/// `vpsgate webhook add` and every delivery make.
public struct WebhookTarget: Sendable {
    public var addresses: [[UInt8]]
    /// The URL names an IP address, so nothing was resolved (and nothing needs pinning).
    public var isLiteral: Bool

    public enum Failure: Error, Sendable {
        case unresolvable(String)
        case refused(DestinationRefusal)
    }

    public static func check(_ url: WebhookURL, allow: [IPNetwork]) -> Result<WebhookTarget, Failure> {
        let literal = IPNetwork.parseIPv4(Substring(url.host)) ?? IPNetwork.parseIPv6(Substring(url.host))
        let resolved: [[UInt8]]
        if let literal {
            resolved = [literal]
        } else {
            switch AddressResolver.resolve(url.host) {
            case .success(let addresses): resolved = addresses
            case .failure(let error): return .failure(.unresolvable("cannot resolve \(url.host): \(error)"))
            }
        }
        return DestinationPolicy.check(resolved, allow: allow)
            .map { WebhookTarget(addresses: $0, isLiteral: literal != nil) }
            .mapError { .refused($0) }
    }
}
