import FastCGI
import Logging
import Platform
import VpsgateCore

/// Who is asking, and the request's identity for logs and audit; read once per request.
struct RequestContext {
    let correlationID: CorrelationID
    let trace: TraceContext
    /// `REMOTE_USER` as nginx set it; nil when empty (fail closed).
    let principal: String?
    let authType: String?
    let clientAddress: String?
    let userAgent: String?
    let method: String
    let path: String
    let query: String
    /// When vpsgate began the request, on the monotonic clock (microseconds).
    let startedAt: Int64
    var logger: Logger

    init(_ request: FastCGIRequest, logger base: Logger, tracing: Bool = false) {
        correlationID = CorrelationID(validating: request.parameters["REQUEST_ID"])
        trace = TraceContext(continuing: request.parameters["HTTP_TRACEPARENT"], sampleNewTraces: tracing)
        let user = request.parameters["REMOTE_USER"] ?? ""
        principal = user.isEmpty ? nil : user
        authType = request.parameters["AUTH_TYPE"].flatMap { $0.isEmpty ? nil : $0 }
        clientAddress = request.parameters["REMOTE_ADDR"]
        userAgent = request.parameters["HTTP_USER_AGENT"].map { String($0.prefix(512)) }
        method = request.method
        path = request.path
        query = request.query
        startedAt = Clock.monotonicMicroseconds()
        logger = base
        logger[metadataKey: "correlation_id"] = "\(correlationID)"
        // The caller's trace (or the one begun here) even when no span is exported; while a
        // span is current the log handler adds its `span_id`.
        logger[metadataKey: "trace_id"] = "\(trace.traceID)"
        if let principal { logger[metadataKey: "principal"] = "\(principal)" }
    }

    /// A query parameter's value (not percent-decoded: vpsgate's parameters are plain tokens).
    func queryValue(_ name: String) -> String? {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.first.map(String.init) == name { return parts.count == 2 ? String(parts[1]) : "" }
        }
        return nil
    }

    /// When a request asking to wait `seconds` must answer (`MonotonicClock.milliseconds()`):
    /// counted from its start, so the time spent before waiting is part of it and nginx's
    /// read timeout (60 s) always outlasts the longest wait (50 s).
    func waitDeadline(seconds: Int) -> Int { Int(startedAt / 1000) + seconds * 1000 }

    var elapsedMilliseconds: Double { Double(Clock.monotonicMicroseconds() - startedAt) / 1000 }

    /// The request as the audit trail names it.
    var identity: RequestIdentity {
        var identity = RequestIdentity(correlationID: correlationID.value, traceID: trace.traceID, principal: principal, authType: authType,
                                       clientAddress: clientAddress, userAgent: userAgent, method: method, path: path)
        identity.traceparent = trace.traceparent
        return identity
    }

    /// An audit row about this request, its duration so far filled in.
    func audit(_ outcome: AuditOutcome, _ kind: AuditEntry.Kind = .final, command: String? = nil, vps: Int? = nil) -> AuditEntry {
        var entry = AuditEntry(kind, outcome: outcome, identity: identity, command: command, vpsID: vps)
        entry.durationMilliseconds = elapsedMilliseconds
        return entry
    }
}
