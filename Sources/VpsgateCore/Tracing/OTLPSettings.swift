/// Where and how vpsgate exports traces, from OpenTelemetry's standard environment
/// variables; tracing is off unless an endpoint is set.
public struct OTLPSettings: Sendable, Equatable {
    /// The full URL spans are posted to: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` followed by `/v1/traces`.
    public var tracesURL: String
    /// `OTEL_SERVICE_NAME` (default `vpsgate`).
    public var serviceName: String
    /// `OTEL_EXPORTER_OTLP_HEADERS` (or `_TRACES_HEADERS`): `name=value,…`, e.g. a
    /// collector's token, sent with each export and never logged.
    public var headers: [(name: String, value: Secret)]
    /// `OTEL_RESOURCE_ATTRIBUTES`: `key=value,…`.
    public var resourceAttributes: [(key: String, value: String)]
    /// Per export (`OTEL_EXPORTER_OTLP_TIMEOUT` / `_TRACES_TIMEOUT`); default 2 s, short
    /// because a slow collector must only cost spans, never requests.
    public var timeoutMilliseconds = 2000
    /// How long a span may wait in the queue before its batch goes (`OTEL_BSP_SCHEDULE_DELAY`, default 1 s).
    public var scheduleDelayMilliseconds = 1000
    /// Spans held at most; more are dropped and counted (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    public var maxQueueSize = 2048
    /// Spans in one export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    public var maxExportBatchSize = 512

    public struct Invalid: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    public static func == (lhs: OTLPSettings, rhs: OTLPSettings) -> Bool {
        lhs.tracesURL == rhs.tracesURL && lhs.serviceName == rhs.serviceName && lhs.headers.map(\.name) == rhs.headers.map(\.name)
            && lhs.headers.map(\.value) == rhs.headers.map(\.value) && lhs.resourceAttributes.map(\.key) == rhs.resourceAttributes.map(\.key)
            && lhs.resourceAttributes.map(\.value) == rhs.resourceAttributes.map(\.value)
            && lhs.timeoutMilliseconds == rhs.timeoutMilliseconds && lhs.scheduleDelayMilliseconds == rhs.scheduleDelayMilliseconds
            && lhs.maxQueueSize == rhs.maxQueueSize && lhs.maxExportBatchSize == rhs.maxExportBatchSize
    }

    /// The settings `environment` asks for; nil when tracing is off (no endpoint,
    /// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`).
    public static func from(environment: [String: String]) throws(Invalid) -> OTLPSettings? {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingSpaces, !raw.isEmpty else { return nil }
            return raw
        }
        if value("OTEL_SDK_DISABLED")?.lowercased() == "true" { return nil }
        if let exporter = value("OTEL_TRACES_EXPORTER") {
            if exporter == "none" { return nil }
            guard exporter == "otlp" else { throw Invalid(description: "OTEL_TRACES_EXPORTER=\(exporter): vpsgate exports otlp or none") }
        }
        let url: String
        if let traces = value("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            url = traces
        } else if let base = value("OTEL_EXPORTER_OTLP_ENDPOINT") {
            url = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/v1/traces"
        } else {
            return nil
        }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw Invalid(description: "the OTLP traces endpoint must be an http:// or https:// URL")
        }
        for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
            if let protocolName = value(name), protocolName != "http/protobuf" {
                throw Invalid(description: "\(name)=\(protocolName): vpsgate exports http/protobuf only")
            }
        }
        var settings = OTLPSettings(tracesURL: url, serviceName: value("OTEL_SERVICE_NAME") ?? "vpsgate", headers: [], resourceAttributes: [])
        let headers = try pairs(value("OTEL_EXPORTER_OTLP_TRACES_HEADERS") ?? value("OTEL_EXPORTER_OTLP_HEADERS"), "OTEL_EXPORTER_OTLP_HEADERS")
        settings.headers = headers.map { ($0.key, Secret($0.value)) }
        settings.resourceAttributes = try pairs(value("OTEL_RESOURCE_ATTRIBUTES"), "OTEL_RESOURCE_ATTRIBUTES")
            .filter { $0.key != "service.name" }
        func number(_ names: [String], _ range: ClosedRange<Int>) throws(Invalid) -> Int? {
            guard let name = names.first(where: { value($0) != nil }), let text = value(name) else { return nil }
            guard let parsed = Int(text), range.contains(parsed) else {
                throw Invalid(description: "\(name)=\(text): expected a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return parsed
        }
        if let timeout = try number(["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"], 100...30_000) {
            settings.timeoutMilliseconds = timeout
        }
        if let delay = try number(["OTEL_BSP_SCHEDULE_DELAY"], 50...60_000) { settings.scheduleDelayMilliseconds = delay }
        if let size = try number(["OTEL_BSP_MAX_QUEUE_SIZE"], 1...1_000_000) { settings.maxQueueSize = size }
        if let size = try number(["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"], 1...1_000_000) { settings.maxExportBatchSize = min(size, settings.maxQueueSize) }
        return settings
    }

    /// `key=value,…` with percent-encoded values (the W3C Baggage format OpenTelemetry uses).
    static func pairs(_ text: String?, _ name: String) throws(Invalid) -> [(key: String, value: String)] {
        guard let text else { return [] }
        var result: [(key: String, value: String)] = []
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let key = Optional(parts[0].trimmingSpaces), !key.isEmpty,
                let decoded = percentDecoded(parts[1].trimmingSpaces)
            else { throw Invalid(description: "\(name): expected key=value pairs separated by commas") }
            result.append((key, decoded))
        }
        return result
    }

    static func percentDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                    let decoded = Hex.decode(String(decoding: [high, low], as: UTF8.self)), decoded.count == 1
                else { return nil }
                bytes.append(decoded[0])
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
