import Hostinger
import Logging
import VpsgateCore
import VpsgateStore

extension ServiceContext {
    /// A Hostinger client whose attempts are counted in `metrics`.
    /// A thread's Hostinger client, taking slots of the shared budget through that thread's store.
    func makeHostingerClient<Store: FleetStore>(logger: Logger, budgetStore: Store, readPriority: BudgetPriority = .read) -> HostingerClient {
        let client = makeHostingerClient(logger: logger)
        client.budget = SharedBudget(store: budgetStore, context: self, logger: logger)
        client.readPriority = readPriority
        return client
    }

    func makeHostingerClient(logger: Logger) -> HostingerClient {
        let metrics = self.metrics.shard()
        return HostingerClient(settings: hostinger, circuit: circuit, readCircuit: readCircuit, logger: logger) { operation, attempt, result, seconds in
            let label: String =
                switch result {
                case .status(let status): String(status)
                case .notSent: "not_sent"
                case .lost: "lost"
                }
            metrics.increment(Metrics.hostingerCalls, [("operation", operation), ("result", label)])
            if attempt > 1 { metrics.increment(Metrics.hostingerRetries, [("operation", operation)]) }
            metrics.observe(Metrics.hostingerCallDuration, [("operation", operation)], seconds: seconds)
        }
    }

    /// A store with its own database connection, named after this instance (and `role`:
    /// the reconciler, the housekeeper) in `application_name`, which audit rows record.
    func makeStore(role: String?) -> PostgresStore {
        var logger = self.logger
        if let role { logger[metadataKey: "component"] = "\(role)" }
        return PostgresStore(url: configuration.databaseURL, applicationName: (["vpsgate"] + (role.map { [$0] } ?? []) + [instance]).joined(separator: " "),
                             migrations: migrations, objects: objects, pending: pendingOutcomes, logger: logger,
                             pooled: configuration.databasePoolMode == .transaction)
    }
}

/// What every worker shares: read-only after start-up, but for the circuit breaker.
public struct ServiceContext: Sendable {
    public var configuration: Configuration
    /// The migrations this build knows; `/readyz` requires all of them applied.
    public var migrations: [Migration]
    /// The functions, triggers and views this build knows (`Database/`); `/readyz` requires them as they are.
    public var objects: [SchemaObject]
    public var logger: Logger
    /// This instance's name in logs and audit rows.
    public var instance: String
    public var hostinger: HostingerSettings
    /// One breaker for the instance's commands: every thread sees Hostinger fail or recover.
    public var circuit: HostingerCircuit
    /// A second one for reads, so that reads can neither trip nor close the commands' breaker.
    public var readCircuit: HostingerCircuit
    /// This instance's counters and histograms, served at `/metrics`.
    public let metrics = Metrics()
    /// Outcome writes waiting for the database (shared by every worker and the reconciler).
    public let pendingOutcomes = PendingOutcomes()
    /// The secret keys: fingerprints are HMACs under them (docs/design.md#trust-boundaries).
    public var keys: SecretKeyRing
    /// Where waiting requests and webhook senders sleep until the outbox's notifications wake them.
    public let push: PushBoard
    /// A 429's pause as this instance knows it (docs/design.md#the-shared-budget).
    let budgetPause = BudgetPause()
    /// Recent reads from Hostinger, and reads in progress that others wait for.
    let readCache = ReadCache()
    /// Whether this instance exports the database-wide gauges (its housekeeper holds the lease).
    public let metricsLease = MetricsLease()
    /// Starts each request's trace when tracing is on (`OTEL_EXPORTER_OTLP_ENDPOINT`); nil when off.
    public var tracer: Tracer?
    /// vpsgate's OpenAPI document, served at `/openapi.json`.
    public let openAPIDocument: [UInt8] = OpenAPIDocument.generate().serialized()

    public init(configuration: Configuration, migrations: [Migration], objects: [SchemaObject] = [], logger: Logger, instance: String,
                hostinger: HostingerSettings, circuit: HostingerCircuit, readCircuit: HostingerCircuit, keys: SecretKeyRing) {
        self.configuration = configuration
        self.migrations = migrations
        self.objects = objects
        self.logger = logger
        self.instance = instance
        self.hostinger = hostinger
        self.circuit = circuit
        self.readCircuit = readCircuit
        self.keys = keys
        self.push = PushBoard(maxWaiters: configuration.maxWaiters)
    }
}
