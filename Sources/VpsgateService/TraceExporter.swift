import HTTPClient
import Logging
import Platform
import Synchronization
import VpsgateCore

#if canImport(Glibc)
import Glibc
#endif

/// Sends ended spans to an OpenTelemetry collector over OTLP/HTTP (protobuf), in batches,
/// from a thread of its own (docs/logs-and-metrics.md#traces).
///
/// A request never waits for it: `record` appends to a bounded queue under a short lock and
/// drops the span (counted in `vpsgate_trace_spans_dropped_total`) when the queue is full,
/// as it is while the collector is slow or away. Each export has short timeouts and is not
/// retried: a trace is worth less than the requests it describes.
public final class TraceExporter: SpanRecorder, @unchecked Sendable {
    private let settings: OTLPSettings
    private let metrics: Metrics
    private let logger: Logger
    private let resource: [(key: String, value: SpanAttributeValue)]
    /// Guards `queue` and `stopping`, and wakes the exporting thread.
    private let condition = Condition()
    private var queue: [FinishedSpan] = []
    private var stopping = false
    private let finished = Atomic<Bool>(false)

    public init(settings: OTLPSettings, instance: String, metrics: Metrics, logger: Logger) {
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        var resource: [(key: String, value: SpanAttributeValue)] = [
            ("service.name", .string(settings.serviceName)), ("service.version", .string(BuildInfo.version)),
            ("service.instance.id", .string(instance)),
        ]
        for attribute in settings.resourceAttributes { resource.append((attribute.key, .string(attribute.value))) }
        self.resource = resource
    }

    public func record(_ span: FinishedSpan) {
        let accepted: Bool = condition.withLock {
            guard !stopping, queue.count < settings.maxQueueSize else { return false }
            queue.append(span)
            if queue.count >= settings.maxExportBatchSize { condition.broadcast() }
            return true
        }
        if !accepted { metrics.increment(Metrics.traceSpansDropped) }
    }

    /// Starts the exporting thread; it runs until `stop`.
    public func start() {
        do throws(SystemCallError) {
            try OSThread.spawn(name: "trace-exporter") { [self] in
                defer { finished.store(true, ordering: .releasing) }
                let http = HTTPClient()
                while true {
                    let (batch, last) = nextBatch()
                    if !batch.isEmpty { export(batch, http) }
                    if last { return }
                }
            }.detach()
        } catch {
            // Traces are optional: vpsgate serves on without them, and says so.
            logger.error("cannot start the trace exporter; no traces are exported", metadata: ["error": "\(error)"])
            finished.store(true, ordering: .releasing)
        }
    }

    /// Exports what is queued (bounded by one export's timeout) and ends the thread.
    public func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
        let deadline = MonotonicClock.milliseconds() + settings.timeoutMilliseconds + 500
        while !finished.load(ordering: .acquiring) && MonotonicClock.milliseconds() < deadline { usleep(20_000) }
    }

    /// Waits for a full batch or the schedule delay; `last` once stopping and drained.
    private func nextBatch() -> (batch: [FinishedSpan], last: Bool) {
        condition.withLock {
            let deadline = MonotonicClock.milliseconds() + settings.scheduleDelayMilliseconds
            while !stopping && queue.count < settings.maxExportBatchSize && MonotonicClock.milliseconds() < deadline {
                _ = condition.wait(untilMilliseconds: deadline)
            }
            let count = min(queue.count, settings.maxExportBatchSize)
            let batch = Array(queue.prefix(count))
            queue.removeFirst(count)
            return (batch, stopping && queue.isEmpty)
        }
    }

    private func export(_ batch: [FinishedSpan], _ http: HTTPClient) {
        let body = OTLPTraceEncoding.exportRequest(batch, resource: resource, scopeName: "vpsgate", scopeVersion: BuildInfo.version)
        var headers: [(name: String, value: String)] = [("Content-Type", "application/x-protobuf"),
                                                       ("User-Agent", BuildInfo.userAgent("vpsgate"))]
        headers += settings.headers.map { ($0.name, $0.value.value) }
        let result = http.perform(.init(
            method: "POST", url: settings.tracesURL, headers: headers, body: body,
            connectTimeoutMilliseconds: min(1000, settings.timeoutMilliseconds), timeoutMilliseconds: settings.timeoutMilliseconds,
            freshConnection: false))
        let outcome: String
        switch result {
        case .success(let response) where (200..<300).contains(response.status): outcome = "exported"
        case .success(let response):
            outcome = "failed"
            logger.warning("trace export refused", metadata: ["http_status": "\(response.status)", "spans": "\(batch.count)"])
        case .failure(let error):
            outcome = "failed"
            logger.warning("trace export failed", metadata: ["error": "\(error.code)", "spans": "\(batch.count)"])
        }
        metrics.increment(Metrics.traceSpansExported, [("result", outcome)], by: Double(batch.count))
    }
}
