import Logging
import Platform
import Synchronization
import VpsgateCore

#if canImport(Glibc)
import Glibc
#endif

/// One JSON object per line on standard error: `time`, `level`, `message`, `label` and the
/// metadata (instance, correlation id, trace and span ids, principal, command, VPS, operation, duration, …).
/// Secrets never reach a logger in vpsgate, so nothing is filtered here.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let label: String
    private static let lock = Mutex(())

    public init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("time", Timestamp.rfc3339(microseconds: Clock.realtimeMicroseconds()))
        writer.member("level", event.level.rawValue)
        writer.member("message", "\(event.message)")
        writer.member("label", label)
        var merged = metadata.merging(event.metadata ?? [:]) { $1 }
        // The span the thread works in, or the trace it works for when none is recorded (a
        // request's, a piece of background work's), so that logs, traces and Hostinger's
        // `traceparent` join: every module's lines carry it, the Hostinger client's and the store's too.
        if let ids = Tracing.logIDs {
            merged["trace_id"] = "\(ids.traceID)"
            merged["span_id"] = "\(ids.spanID)"
        }
        for key in merged.keys.sorted() {
            writer.member(key, "\(merged[key]!)")
        }
        writer.endObject()
        var line = writer.bytes
        line.append(0x0a)
        // One write(2) per line, under a lock, so lines from worker threads never interleave.
        Self.lock.withLock { _ in
            line.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(STDERR_FILENO, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 { if errno == EINTR { continue } else { return } }
                    offset += written
                }
            }
        }
    }
}
