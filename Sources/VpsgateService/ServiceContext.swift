import Hostinger
import Logging
import VpsgateCore

/// What every worker shares: read-only after start-up, but for the circuit breaker.
public struct ServiceContext: Sendable {
    public var configuration: Configuration
    /// The migrations this build knows; `/readyz` requires all of them applied.
    public var migrations: [Migration]
    public var logger: Logger
    /// This instance's name in logs and audit rows.
    public var instance: String
    public var hostinger: HostingerSettings
    /// One breaker for the instance: every thread sees Hostinger fail or recover.
    public var circuit: HostingerCircuit
    /// vpsgate's OpenAPI document, served at `/openapi.json`.
    public let openAPIDocument: [UInt8] = OpenAPIDocument.generate().serialized()

    public init(configuration: Configuration, migrations: [Migration], logger: Logger, instance: String,
                hostinger: HostingerSettings, circuit: HostingerCircuit) {
        self.configuration = configuration
        self.migrations = migrations
        self.logger = logger
        self.instance = instance
        self.hostinger = hostinger
        self.circuit = circuit
    }
}
