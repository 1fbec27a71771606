import Hostinger
import Logging
import VpsgateCore

extension ServiceContext {
    /// A Hostinger client whose attempts are counted in `metrics`.
    func makeHostingerClient(logger: Logger) -> HostingerClient {
        let metrics = self.metrics
        return HostingerClient(settings: hostinger, circuit: circuit, readCircuit: readCircuit, logger: logger) { operation, attempt, result, seconds in
            let label: String =
                switch result {
                case .status(let status): String(status)
                case .notSent: "not_sent"
                case .lost: "lost"
                }
            metrics.increment("vpsgate_hostinger_calls_total", [("operation", operation), ("result", label)])
            if attempt > 1 { metrics.increment("vpsgate_hostinger_retries_total", [("operation", operation)]) }
            metrics.observe("vpsgate_hostinger_call_duration_seconds", [("operation", operation)], seconds: seconds)
        }
    }
}

/// What every worker shares: read-only after start-up, but for the circuit breaker.
public struct ServiceContext: Sendable {
    public var configuration: Configuration
    /// The migrations this build knows; `/readyz` requires all of them applied.
    public var migrations: [Migration]
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
    /// The secret keys: fingerprints are HMACs under them (SPEC section 17).
    public var keys: SecretKeyRing
    /// vpsgate's OpenAPI document, served at `/openapi.json`.
    public let openAPIDocument: [UInt8] = OpenAPIDocument.generate().serialized()

    public init(configuration: Configuration, migrations: [Migration], logger: Logger, instance: String,
                hostinger: HostingerSettings, circuit: HostingerCircuit, readCircuit: HostingerCircuit, keys: SecretKeyRing) {
        self.configuration = configuration
        self.migrations = migrations
        self.logger = logger
        self.instance = instance
        self.hostinger = hostinger
        self.circuit = circuit
        self.readCircuit = readCircuit
        self.keys = keys
    }
}
