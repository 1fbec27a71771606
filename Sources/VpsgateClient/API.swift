import HTTPClient
import Platform
import VpsgateCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where vpsgate is and who the caller is: `VPSGATE_URL`, `VPSGATE_TOKEN` (or
/// `VPSGATE_TOKEN_FILE`), `VPSGATE_CA_FILE`, from the environment or a config file of
/// `KEY=value` lines in named contexts (`ContextConfig`); the environment wins unless a
/// context was named with `--context`. vpsgatectl never holds Hostinger's token: it only speaks to vpsgate.
///
/// The token is a bearer credential, so it is guarded as ssh guards a private key: the
/// config file and the token file are refused when group or others may access them, and
/// plain `http://` is refused unless vpsgate is on this machine (loopback), where no one on
/// the network can read the token.
struct ClientSettings {
    var url: String
    var token: String
    var caFile: String?

    /// The context's name, when one was used (`ContextConfig`).
    var context: String?

    static func load(environment: [String: String] = Environment.current, context explicit: String? = GlobalOptions.current.context) throws -> ClientSettings {
        let (context, values) = try ContextConfig.values(environment: environment, explicit: explicit)
        guard let url = values["VPSGATE_URL"], url.hasPrefix("https://") || url.hasPrefix("http://") else {
            throw UsageError("set VPSGATE_URL to vpsgate's address (https://…), in the environment or the config file")
        }
        try checkPlainHTTP(url)
        var token = values["VPSGATE_TOKEN"]
        if token == nil, let file = values["VPSGATE_TOKEN_FILE"] {
            guard let text = try readPrivateFile(file, "the token file") else { throw UsageError("cannot read the token file \(file): it does not exist") }
            token = text.trimmingSpaces
        }
        guard let token, !token.isEmpty else { throw UsageError("set VPSGATE_TOKEN or VPSGATE_TOKEN_FILE") }
        return ClientSettings(url: url.hasSuffix("/") ? String(url.dropLast()) : url, token: token, caFile: values["VPSGATE_CA_FILE"],
                              context: context)
    }

    /// Plain HTTP only to loopback: `127.0.0.0/8` as a dotted quad, `[::1]` or `localhost`,
    /// after any `user@` (the host curl connects to). Anything else, a name that might
    /// resolve anywhere included, would carry the token in clear over a network.
    static func checkPlainHTTP(_ url: String) throws {
        guard url.hasPrefix("http://") else { return }
        let authority = url.dropFirst("http://".count).prefix { !"/?#".contains($0) }
        let hostAndPort = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        let host = hostAndPort.hasPrefix("[") ? String(hostAndPort.prefix { $0 != "]" }) + "]" : String(hostAndPort.prefix { $0 != ":" })
        let loopback = host.lowercased() == "localhost" || host == "[::1]"
            || IPv4Network(Substring(host)).map { $0.prefixLength == 32 && IPv4Network("127.0.0.0/8")!.contains($0.address) } ?? false
        // Characters curl might read otherwise than this parser are refused rather than guessed at.
        let plain = authority.allSatisfy { $0.asciiValue.map { $0 > 0x20 && $0 < 0x7f && $0 != 0x5c } ?? false }
        guard loopback, plain else {
            throw UsageError("VPSGATE_URL \(url) is plain http:// to \(host.isEmpty ? "no host" : host), which would send the token in clear: "
                + "plain HTTP is allowed only to loopback (127.0.0.0/8, [::1], localhost); use https://")
        }
    }
}

/// A file only its owner may access (the config file, the token file), or nil when there is
/// none: like ssh with a private key, one that group or others can read or write is refused,
/// since whoever reads it holds the token, and whoever writes it chooses where it goes.
func readPrivateFile(_ path: String, _ what: String) throws -> String? {
    guard !path.isEmpty else { return nil }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else {
        if errno == ENOENT { return nil }
        throw UsageError("cannot read \(what) \(path): \(String(cString: strerror(errno)))")
    }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { throw UsageError("cannot read \(what) \(path): \(String(cString: strerror(errno)))") }
    guard status.st_mode & 0o077 == 0 else {
        throw UsageError("\(what) \(path) is open to group or others (mode \(String(status.st_mode & 0o777, radix: 8))): "
            + "it holds or leads to your token; run chmod 600 \(path)")
    }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(descriptor, &buffer, buffer.count)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One answer from vpsgate.
struct Answer {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: JSONValue?

    func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    var isProblem: Bool { status >= 400 }
    /// `<base>/problems#<code>` ⇒ `<code>`; also the older `urn:vpsgate:problem:<code>`,
    /// which answers stored before still carry when replayed.
    var problemCode: String? { body?["type"]?.stringValue.flatMap { Problem.code(ofType: $0)?.rawValue } }

    /// Said when vpsgate answered with the stored answer of an earlier request under the same
    /// key (`Idempotent-Replayed: true`): nothing ran this time, whatever the answer says.
    var replayNote: String? {
        guard header("Idempotent-Replayed")?.trimmingSpaces.lowercased() == "true" else { return nil }
        let when = body?["created_at"]?.stringValue.map { "at \($0)" } ?? "earlier"
        return "replayed: this key's request was first made \(when); this is vpsgate's stored answer to it, and the command was not run again"
    }
}

/// Requests to vpsgate, as the MCP server's tools send them: `API` over HTTP, or a stand-in
/// in tests, which then need no server.
protocol VpsgateRequests: Sendable {
    func send(_ method: String, _ path: String, body: JSONValue?, key: String?, timeoutSeconds: Int) -> Result<Answer, HTTPClientError>
    /// The same, with why the command is asked for as its `Vpsgate-Reason` header (nil: none).
    func send(_ method: String, _ path: String, body: JSONValue?, key: String?, reason: String?, timeoutSeconds: Int) -> Result<Answer, HTTPClientError>
}

extension VpsgateRequests {
    /// A stand-in that does not look at the reason sends without it.
    func send(_ method: String, _ path: String, body: JSONValue?, key: String?, reason: String?, timeoutSeconds: Int) -> Result<Answer, HTTPClientError> {
        send(method, path, body: body, key: key, timeoutSeconds: timeoutSeconds)
    }
}

extension VpsgateRequests {
    func send(_ method: String, _ path: String, body: JSONValue? = nil, key: String? = nil, reason: String? = nil) -> Result<Answer, HTTPClientError> {
        send(method, path, body: body, key: key, reason: reason, timeoutSeconds: 70)
    }
}

/// vpsgate's API, with the retries a client may make safely: the same request with the
/// same key after 409 `idempotency-key-in-use`, 429 and 503 (waiting their `Retry-After`),
/// and after a connection that never carried the request. Never after a 422 or any other answer.
final class API: VpsgateRequests, @unchecked Sendable {
    let settings: ClientSettings
    /// One curl handle, used by one request at a time (the MCP server may be asked concurrently).
    private let http: HTTPClient
    private let lock = Condition()
    /// Told of each retry (the CLI prints it on stderr).
    var onRetry: @Sendable (Int, String, Int) -> Void = { _, _, _ in }
    static let maximumAttempts = 8
    static let maximumPauseSeconds = 30

    init(settings: ClientSettings) {
        HTTPClient.initializeLibrary()
        self.settings = settings
        self.http = HTTPClient(caFile: settings.caFile)
    }

    func send(_ method: String, _ path: String, body: JSONValue?, key: String?, timeoutSeconds: Int) -> Result<Answer, HTTPClientError> {
        send(method, path, body: body, key: key, reason: nil, timeoutSeconds: timeoutSeconds)
    }

    func send(_ method: String, _ path: String, body: JSONValue?, key: String?, reason: String?, timeoutSeconds: Int) -> Result<Answer, HTTPClientError> {
        var headers: [(name: String, value: String)] = [("Authorization", "Bearer \(settings.token)"), ("Accept", "application/json"),
                                                        ("User-Agent", BuildInfo.userAgent("vpsgatectl"))]
        if let key { headers.append(("Idempotency-Key", key)) }
        if let reason { headers.append((CommandReason.header, reason)) }
        var bytes: [UInt8]?
        if let body {
            headers.append(("Content-Type", "application/json"))
            bytes = body.serialized()
        } else if method != "GET" {
            bytes = []
        }
        var attempt = 0
        while true {
            attempt += 1
            let result = lock.withLock { http.perform(.init(method: method, url: settings.url + path, headers: headers, body: bytes,
                                            connectTimeoutMilliseconds: 5000, timeoutMilliseconds: timeoutSeconds * 1000)) }
            switch result {
            case .success(let response):
                let answer = Answer(status: response.status, headers: response.headers,
                                    body: response.body.isEmpty ? nil : try? JSONValue.parse(response.body))
                let code = answer.problemCode
                let retryable = response.status == 429 || response.status == 503
                    || (response.status == 409 && code == "idempotency-key-in-use")
                guard retryable, attempt < Self.maximumAttempts, method == "GET" || key != nil else { return .success(answer) }
                let pause = min(RetryAfter.parse(answer.header("Retry-After")).map { max($0, 1) } ?? attempt, Self.maximumPauseSeconds)
                onRetry(attempt, "\(response.status) \(code ?? "")", pause)
                sleep(UInt32(pause))
            case .failure(let error):
                // A request that may have been received is retried only under its key: the
                // same key makes vpsgate answer it once.
                guard attempt < Self.maximumAttempts, !error.requestMayHaveBeenSent || key != nil || method == "GET" else {
                    return .failure(error)
                }
                onRetry(attempt, error.description, min(attempt, 5))
                sleep(UInt32(min(attempt, 5)))
            }
        }
    }
}

extension RetryAfter {
    /// Seconds from a `Retry-After` of delta-seconds (the form vpsgate sends).
    static func parse(_ text: String?) -> Int? {
        guard let text, let seconds = Int(text.trimmingSpaces), seconds >= 0 else { return nil }
        return seconds
    }
}

func readFile(_ path: String) throws -> String {
    guard let file = fopen(path, "r") else { throw UsageError("cannot read \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension String {
    var trimmingSpaces: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}
