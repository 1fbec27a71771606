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

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the API over FastCGI until SIGTERM or SIGINT.",
        discussion: "Settings come from VPSGATE_* environment variables; see the README."
    )

    func run() throws {
        // Before any thread exists, so that only the server's sigwait sees SIGTERM/SIGINT.
        FastCGIServer.blockTerminationSignals()
        HTTPClient.initializeLibrary()
        let (configuration, logger) = try loadConfiguration()
        let migrations = try loadMigrations(configuration)
        let objects = try loadSchemaObjects(configuration)
        let keys = try loadSecretKeys(configuration)
        let instance = configuration.instance ?? "\(hostName())-\(getpid())"
        var serviceLogger = logger
        serviceLogger[metadataKey: "instance"] = "\(instance)"
        let token: Secret
        switch configuration.hostingerToken {
        case .inline(let secret): token = secret
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path),
                let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty
            else { throw ValidationError("configuration: HOSTINGER_API_TOKEN_FILE=\(path) cannot be read or is empty") }
            token = Secret(text)
        case nil:
            throw ValidationError("configuration: set HOSTINGER_API_TOKEN or HOSTINGER_API_TOKEN_FILE (the token vpsgate uses to call Hostinger)")
        }
        var hostinger = HostingerSettings(
            baseURL: configuration.hostingerURL, token: token, caFile: configuration.hostingerCAFile,
            connectTimeoutMilliseconds: configuration.hostingerConnectTimeoutMilliseconds,
            attemptTimeoutMilliseconds: configuration.hostingerAttemptTimeoutMilliseconds,
            deadlineMilliseconds: configuration.hostingerDeadlineMilliseconds, userAgent: BuildInfo.userAgent("vpsgate"))
        hostinger.budgetWaitMilliseconds = configuration.budgetWaitMilliseconds
        func breaker() -> HostingerCircuit {
            HostingerCircuit(failureThreshold: configuration.breakerFailures, coolDownMilliseconds: configuration.breakerCoolDownMilliseconds)
        }
        var configured = ServiceContext(configuration: configuration, migrations: migrations, objects: objects, logger: serviceLogger, instance: instance,
                                     hostinger: hostinger, circuit: breaker(), readCircuit: breaker(), keys: keys)
        // Traces: off unless OpenTelemetry's endpoint variables name a collector.
        let traceSettings: OTLPSettings?
        do throws(OTLPSettings.Invalid) {
            traceSettings = try OTLPSettings.from(environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError("configuration: \(error)")
        }
        let exporter = traceSettings.map { TraceExporter(settings: $0, instance: instance, metrics: configured.metrics, logger: serviceLogger) }
        if let exporter, let traceSettings {
            configured.tracer = Tracer(recorder: exporter, now: { UInt64(Clock.realtimeMicroseconds()) * 1000 })
            exporter.start()
            serviceLogger.info("exporting traces over OTLP/HTTP", metadata: ["service_name": "\(traceSettings.serviceName)"])
        }
        defer { exporter?.stop() }
        let context = configured
        try refusePrivilegedDatabaseRole(configuration, logger: serviceLogger)

        let address: FastCGIServer.Address =
            switch configuration.listen {
            case .unix(let path): .unix(path: path, mode: configuration.socketMode, group: configuration.socketGroup)
            case .tcp(let host, let port): .tcp(host: host, port: port)
            }
        let server = FastCGIServer(
            configuration: .init(
                address: address, workers: configuration.workers, maxBodyBytes: configuration.maxBodyBytes,
                shutdownTimeoutSeconds: Double(configuration.shutdownTimeoutSeconds),
                allowedPeers: configuration.allowedPeers.map { (network: $0.address, mask: $0.mask) },
                readTimeoutMilliseconds: configuration.readTimeoutMilliseconds
            ),
            logger: serviceLogger
        )
        let reconciler = Reconciler(context: context)
        let housekeeper = Housekeeper(context: context)
        let listener = EventListener(context: context)
        let webhooks = WebhookSender(context: context)
        let report: FastCGIServer.ShutdownReport
        do {
            report = try server.serve(makeResponder: { Responder(context: context) }, onReady: {
                housekeeper.start()
                listener.start()
                webhooks.start()
                if configuration.reconcilerEnabled { reconciler.start() }
            }, onStopping: {
                context.push.close()
            })
        } catch {
            serviceLogger.critical("cannot serve", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        if configuration.reconcilerEnabled { reconciler.stop() }
        webhooks.stop()
        listener.stop()
        housekeeper.stop()
        if report.abandonedRequests > 0 { throw ExitCode(1) }
    }

    private func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
