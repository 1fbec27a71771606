import ArgumentParser
import FastCGI
import HTTPClient
import Logging
import Postgres
import VpsgateCore
import VpsgateService

#if canImport(Glibc)
import Glibc
#endif

@main
struct VpsgateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpsgate",
        abstract: "The control plane for Hostinger VPS mutations.",
        subcommands: [Serve.self, Migrate.self]
    )
}

/// Reads the environment once; a bad setting ends the program with a message naming it.
func loadConfiguration() throws -> (Configuration, Logger) {
    let configuration: Configuration
    do {
        configuration = try Configuration(environment: Environment.current)
    } catch {
        throw ValidationError("configuration: \(error)")
    }
    if let problem = PostgresConnection.validate(url: configuration.databaseURL) {
        throw ValidationError("configuration: VPSGATE_DATABASE_URL is not a valid PostgreSQL connection URI: \(problem)")
    }
    let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "vpsgate")
    logger.logLevel = level
    return (configuration, logger)
}

func loadMigrations(_ configuration: Configuration) throws -> [Migration] {
    do {
        return try Migrator.load(directory: configuration.migrationsDirectory)
    } catch let error as MigrationError {
        throw ValidationError(error.message)
    }
}

enum Environment {
    static var current: [String: String] {
        var result: [String: String] = [:]
        var cursor = environ
        while let entry = cursor.pointee {
            let pair = String(cString: entry)
            if let equals = pair.firstIndex(of: "=") {
                result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            cursor += 1
        }
        return result
    }
}

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
        let instance = configuration.instance ?? "\(hostName())-\(getpid())"
        var serviceLogger = logger
        serviceLogger[metadataKey: "instance"] = "\(instance)"
        let context = ServiceContext(configuration: configuration, migrations: migrations, logger: serviceLogger, instance: instance)

        let address: FastCGIServer.Address =
            switch configuration.listen {
            case .unix(let path): .unix(path: path, mode: configuration.socketMode, group: configuration.socketGroup)
            case .tcp(let host, let port): .tcp(host: host, port: port)
            }
        let server = FastCGIServer(
            configuration: .init(
                address: address, workers: configuration.workers, maxBodyBytes: configuration.maxBodyBytes,
                shutdownTimeoutSeconds: Double(configuration.shutdownTimeoutSeconds)
            ),
            logger: serviceLogger
        )
        let report: FastCGIServer.ShutdownReport
        do {
            report = try server.serve { Responder(context: context) }
        } catch {
            serviceLogger.critical("cannot serve", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        if report.abandonedRequests > 0 { throw ExitCode(1) }
    }

    private func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count - 1)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations (safe to run from several instances at once)."
    )

    func run() throws {
        let (configuration, logger) = try loadConfiguration()
        let migrator = Migrator(migrations: try loadMigrations(configuration))
        let database = PostgresConnection(url: configuration.databaseURL, applicationName: "vpsgate migrate")
        do {
            let applied = try migrator.migrate(on: database)
            if applied.isEmpty {
                print("schema is current (\(migrator.migrations.count) migrations)")
            } else {
                for migration in applied { print("applied \(migration.fileName)") }
            }
        } catch let error as MigrationError {
            logger.error("migration refused", metadata: ["reason": "\(error.message)"])
            throw ValidationError(error.message)
        } catch let error as PostgresError {
            logger.error("migration failed", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }
}
