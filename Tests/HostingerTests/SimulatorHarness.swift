import HTTPClient
import Hostinger
import Logging
import Synchronization
import Testing
import VpsgateCore

#if canImport(Glibc)
import Glibc
#endif

/// The hostinger-sim that `scripts/test` starts behind nginx (HTTPS with the local CA).
struct Sim {
    let url: String
    let token: String
    let caFile: String
    private let http: HTTPClient

    init() throws {
        func env(_ name: String) throws -> String {
            try #require(getenv(name).map { String(cString: $0) }, "\(name) is not set: run these tests with scripts/test, which starts hostinger-sim")
        }
        url = try env("HOSTINGER_SIM_URL")
        token = try env("HOSTINGER_SIM_TOKEN")
        caFile = try env("HOSTINGER_SIM_CA_FILE")
        HTTPClient.initializeLibrary()
        http = HTTPClient(caFile: caFile)
    }

    @discardableResult
    func control(_ method: String, _ path: String, _ body: String? = nil) throws -> JSONValue {
        let response = try http.perform(.init(method: method, url: url + path, headers: [("Content-Type", "application/json")],
                                              body: body.map { Array($0.utf8) })).get()
        #expect(response.status == 200, "control \(method) \(path): \(response.status)")
        return try JSONValue.parse(response.body)
    }

    func reset(actionDelayMilliseconds: Int = 200) throws {
        try control("POST", "/__sim/reset")
        try control("POST", "/__sim/config", #"{"action_delay_ms": \#(actionDelayMilliseconds)}"#)
    }

    func fault(_ json: String) throws { try control("POST", "/__sim/faults", json) }

    func requests() throws -> [JSONValue] { try control("GET", "/__sim/requests").arrayValue ?? [] }

    func requests(_ method: String, endingWith suffix: String) throws -> [JSONValue] {
        try requests().filter { $0["method"]?.stringValue == method && ($0["path"]?.stringValue ?? "").hasSuffix(suffix) }
    }

    func vmState(_ id: Int) throws -> String? {
        let response = try http.perform(.init(method: "GET", url: url + "/api/vps/v1/virtual-machines/\(id)",
                                              headers: [("Authorization", "Bearer \(token)"), ("User-Agent", "vpsgate-tests")])).get()
        return try JSONValue.parse(response.body)["state"]?.stringValue
    }

    func settings(token: String? = nil, baseURL: String? = nil, attemptTimeout: Int = 5000, deadline: Int = 20_000) -> HostingerSettings {
        HostingerSettings(baseURL: baseURL ?? url, token: Secret(token ?? self.token), caFile: caFile,
                          connectTimeoutMilliseconds: 1000, attemptTimeoutMilliseconds: attemptTimeout, deadlineMilliseconds: deadline,
                          userAgent: "vpsgate/test", retryPolicy: RetryPolicy(maxAttempts: 3, baseDelayMilliseconds: 50, maxDelayMilliseconds: 200))
    }
}

/// Collects every log line, to prove what never appears in them.
final class CapturedLogs: Sendable {
    let lines = Mutex<[String]>([])

    func logger() -> Logger {
        Logger(label: "test") { _ in CapturingHandler(sink: self) }
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }
}

struct CapturingHandler: LogHandler {
    let sink: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        sink.lines.withLock { $0.append("\(event.level) \(event.message) \(all)") }
    }
}

/// A loopback port with nothing listening on it.
func closedPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            _ = bind(fd, pointer, length)
            return getsockname(fd, pointer, &length)
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Seconds of the day from a log entry's `at` (`…T17:04:34.123456Z`).
func secondsOfDay(_ entry: JSONValue) -> Double {
    let text = entry["at"]?.stringValue ?? ""
    let time = text.split(separator: "T").last?.dropLast() ?? ""
    let parts = time.split(separator: ":")
    guard parts.count == 3, let h = Double(parts[0]), let m = Double(parts[1]), let s = Double(parts[2]) else { return -1 }
    return h * 3600 + m * 60 + s
}
