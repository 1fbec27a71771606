import ArgumentParser
import FastCGI
import HostingerSim
import Logging
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// Serves the simulator as a FastCGI application (nginx in front provides HTTPS).
@main
struct HostingerSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hostinger-sim",
        abstract: "A simulator of Hostinger's VPS API, with a control API under /__sim/. For tests and local runs only."
    )

    @Option(help: "unix:/path or host:port (FastCGI).")
    var listen = "127.0.0.1:9100"

    @Option(help: "The bearer token it accepts (default: $HOSTINGER_SIM_TOKEN).")
    var token: String?

    @Option(help: "Milliseconds until an action leaves 'sent'.")
    var actionDelayMs = 1000

    @Option(help: "Worker threads.")
    var workers = 32

    func run() throws {
        FastCGIServer.blockTerminationSignals()
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let logger = Logger(label: "hostinger-sim")
        guard let token = token ?? getenv("HOSTINGER_SIM_TOKEN").map({ String(cString: $0) }), !token.isEmpty else {
            throw ValidationError("give a token with --token or HOSTINGER_SIM_TOKEN")
        }
        let address: FastCGIServer.Address
        if listen.hasPrefix("unix:") {
            address = .unix(path: String(listen.dropFirst(5)), mode: 0o660, group: getenv("HOSTINGER_SIM_SOCKET_GROUP").map { String(cString: $0) })
        } else if let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]) {
            address = .tcp(host: String(listen[..<colon]), port: port)
        } else {
            throw ValidationError("--listen takes unix:/path or host:port")
        }
        let simulator = Simulator(token: token, actionDelayMilliseconds: actionDelayMs, clock: Clock.realtimeMicroseconds)
        let server = FastCGIServer(
            configuration: .init(address: address, workers: workers, maxBodyBytes: 1 << 20, shutdownTimeoutSeconds: 5),
            logger: logger)
        _ = try server.serve { SimResponder(simulator: simulator) }
    }
}

struct SimResponder: FastCGIResponder {
    let simulator: Simulator

    mutating func respond(to request: FastCGIRequest) -> FastCGIResponse {
        let headers = request.parameters.compactMap { key, value -> (name: String, value: String)? in
            guard key.hasPrefix("HTTP_") else { return nil }
            return (String(key.dropFirst(5)).lowercased().map { $0 == "_" ? "-" : $0 }.reduce(into: "") { $0.append($1) }, value)
        }.sorted { $0.name < $1.name }
        let answer = simulator.handle(SimRequest(method: request.method, path: request.path, query: request.query,
                                                 headers: headers, body: request.body))
        if answer.delayMilliseconds > 0 { usleep(useconds_t(min(answer.delayMilliseconds, 600_000)) * 1000) }
        return FastCGIResponse(status: answer.status, headers: answer.headers.map { .init($0.name, $0.value) }, body: answer.body)
    }
}
