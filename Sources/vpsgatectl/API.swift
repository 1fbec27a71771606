import HTTPClient
import Platform
import VpsgateCore

#if canImport(Glibc)
import Glibc
#endif

/// Where vpsgate is and who the caller is: `VPSGATE_URL`, `VPSGATE_TOKEN` (or
/// `VPSGATE_TOKEN_FILE`), `VPSGATE_CA_FILE`, from the environment or a config file of
/// `KEY=value` lines (`VPSGATECTL_CONFIG`, default `~/.config/vpsgate/config`); the
/// environment wins. vpsgatectl never holds Hostinger's token: it only speaks to vpsgate.
struct ClientSettings {
    var url: String
    var token: String
    var caFile: String?

    static func load(environment: [String: String] = ProcessEnvironment.all()) throws -> ClientSettings {
        var values: [String: String] = [:]
        let path = environment["VPSGATECTL_CONFIG"] ?? (environment["HOME"].map { $0 + "/.config/vpsgate/config" } ?? "")
        if let text = try? readFile(path) {
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: "=", maxSplits: 1)
                if parts.count == 2 { values[String(parts[0]).trimmingSpaces] = String(parts[1]).trimmingSpaces }
            }
        }
        for (key, value) in environment where key.hasPrefix("VPSGATE_") { values[key] = value }
        guard let url = values["VPSGATE_URL"], url.hasPrefix("https://") || url.hasPrefix("http://") else {
            throw UsageError("set VPSGATE_URL to vpsgate's address (https://…), in the environment or the config file")
        }
        var token = values["VPSGATE_TOKEN"]
        if token == nil, let file = values["VPSGATE_TOKEN_FILE"] { token = (try? readFile(file))?.trimmingSpaces }
        guard let token, !token.isEmpty else { throw UsageError("set VPSGATE_TOKEN or VPSGATE_TOKEN_FILE") }
        return ClientSettings(url: url.hasSuffix("/") ? String(url.dropLast()) : url, token: token, caFile: values["VPSGATE_CA_FILE"])
    }
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
    /// `urn:vpsgate:problem:<code>` ⇒ `<code>`.
    var problemCode: String? { body?["type"]?.stringValue.map { String($0.split(separator: ":").last ?? "") } }
}

/// vpsgate's API, with the retries a client may make safely: the same request with the
/// same key after 409 `idempotency-key-in-use`, 429 and 503 (waiting their `Retry-After`),
/// and after a connection that never carried the request. Never after a 422 or any other answer.
final class API: @unchecked Sendable {
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

    func send(_ method: String, _ path: String, body: JSONValue? = nil, key: String? = nil, timeoutSeconds: Int = 70) -> Result<Answer, HTTPClientError> {
        var headers: [(name: String, value: String)] = [("Authorization", "Bearer \(settings.token)"), ("Accept", "application/json"),
                                                        ("User-Agent", "vpsgatectl/0.1")]
        if let key { headers.append(("Idempotency-Key", key)) }
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

enum ProcessEnvironment {
    static func all() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let index = text.firstIndex(of: "=") { result[String(text[..<index])] = String(text[text.index(after: index)...]) }
            pointer += 1
        }
        return result
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
