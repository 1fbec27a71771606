import FastCGI
import Logging
import Postgres
import VpsgateCore

#if canImport(Glibc)
import Glibc
#endif

/// Answers vpsgate's HTTP API on one worker thread, with that thread's database connection.
public struct Responder: FastCGIResponder {
    private let context: ServiceContext
    private let database: PostgresConnection
    private let migrator: Migrator

    public init(context: ServiceContext) {
        self.context = context
        self.database = PostgresConnection(url: context.configuration.databaseURL, applicationName: "vpsgate \(context.instance)")
        self.migrator = Migrator(migrations: context.migrations)
    }

    public mutating func respond(to request: FastCGIRequest) -> FastCGIResponse {
        let correlationID = CorrelationID(validating: request.parameters["REQUEST_ID"])
        var logger = context.logger
        logger[metadataKey: "correlation_id"] = "\(correlationID)"

        var response: FastCGIResponse
        if request.bodyExceededLimit {
            response = problem(
                Problem(.payloadTooLarge, status: 413, title: "Request body too large",
                        detail: "The body exceeds \(context.configuration.maxBodyBytes) bytes.", instance: request.path),
                correlationID
            )
        } else {
            response = route(request, correlationID: correlationID, logger: logger)
        }
        response.headers.append(.init("X-Request-ID", correlationID.value))
        return response
    }

    // MARK: - Routing

    private func route(_ request: FastCGIRequest, correlationID: CorrelationID, logger: Logger) -> FastCGIResponse {
        switch (request.method, request.path) {
        case ("GET", "/healthz"), ("HEAD", "/healthz"):
            return json(200, #"{"status":"ok"}"#)
        case ("GET", "/readyz"), ("HEAD", "/readyz"):
            return readiness(request, correlationID: correlationID, logger: logger)
        case ("GET", "/__debug/sleep") where context.configuration.debugRoutes:
            let milliseconds = min(max(queryInteger(request.query, "ms") ?? 1000, 0), 60_000)
            logger.info("debug sleep", metadata: ["ms": "\(milliseconds)"])
            usleep(useconds_t(milliseconds) * 1000)
            return json(200, #"{"slept_ms":\#(milliseconds)}"#)
        case (_, "/healthz"), (_, "/readyz"):
            var response = problem(
                Problem(.methodNotAllowed, status: 405, title: "Method not allowed", detail: "Use GET.", instance: request.path),
                correlationID
            )
            response.headers.append(.init("Allow", "GET, HEAD"))
            return response
        default:
            return problem(
                Problem(.notFound, status: 404, title: "Not found", detail: "No such resource.", instance: request.path),
                correlationID
            )
        }
    }

    private func readiness(_ request: FastCGIRequest, correlationID: CorrelationID, logger: Logger) -> FastCGIResponse {
        do {
            if try migrator.isCurrent(on: database) {
                return json(200, #"{"status":"ready"}"#)
            }
            var response = problem(
                Problem(.notReady, status: 503, title: "Not ready", detail: "The database schema is not current; run vpsgate migrate.", instance: request.path),
                correlationID
            )
            response.headers.append(.init("Retry-After", "5"))
            return response
        } catch {
            logger.warning("readiness: database check failed", metadata: ["error": "\(error)"])
            let detail = error.sqlState == .undefinedTable
                ? "The database has no schema yet; run vpsgate migrate." : "The database is not reachable."
            var response = problem(
                Problem(.notReady, status: 503, title: "Not ready", detail: detail, instance: request.path),
                correlationID
            )
            response.headers.append(.init("Retry-After", "5"))
            return response
        }
    }

    // MARK: - Responses

    private func json(_ status: Int, _ body: String) -> FastCGIResponse {
        FastCGIResponse(status: status, headers: [.init("Content-Type", "application/json")], body: Array(body.utf8))
    }

    private func problem(_ problem: Problem, _ correlationID: CorrelationID) -> FastCGIResponse {
        FastCGIResponse(
            status: problem.status,
            headers: [.init("Content-Type", "application/problem+json"), .init("Cache-Control", "no-store")],
            body: problem.json(correlationID: correlationID)
        )
    }

    private func queryInteger(_ query: String, _ name: String) -> Int? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2, parts[0] == name { return Int(parts[1]) }
        }
        return nil
    }
}
