import Synchronization

/// A value of a span attribute: what OTLP's `AnyValue` holds for vpsgate.
public enum SpanAttributeValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case bool(Bool)
}

/// Another trace's span that a span follows from (OTLP's `Span.Link`): background work's
/// root span names the request whose work it continues, which ended long before.
public struct SpanLink: Sendable, Equatable {
    /// 16 bytes.
    public var traceID: [UInt8]
    /// 8 bytes.
    public var spanID: [UInt8]
    public var sampled: Bool

    public init(traceID: [UInt8], spanID: [UInt8], sampled: Bool) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// The span a `traceparent` names; nil when it does not parse.
    public init?(traceparent: String) {
        guard let parts = TraceContext.parse(traceparent), let trace = Hex.decode(parts.traceID), let span = Hex.decode(parts.parentID)
        else { return nil }
        self.init(traceID: trace, spanID: span, sampled: parts.sampled)
    }
}

/// A span once it ended: what an exporter sends.
public struct FinishedSpan: Sendable, Equatable {
    public enum Kind: Int, Sendable { case `internal` = 1, server = 2, client = 3 }

    /// 16 bytes.
    public var traceID: [UInt8]
    /// 8 bytes.
    public var spanID: [UInt8]
    /// 8 bytes, or empty for a root span.
    public var parentSpanID: [UInt8]
    public var name: String
    public var kind: Kind
    /// Unix time in nanoseconds.
    public var startNanoseconds: UInt64
    public var endNanoseconds: UInt64
    public var attributes: [(key: String, value: SpanAttributeValue)]
    /// An error status with this message; nil: unset (OTLP's default, meaning fine).
    public var errorMessage: String?
    public var links: [SpanLink]

    public init(traceID: [UInt8], spanID: [UInt8], parentSpanID: [UInt8], name: String, kind: Kind, startNanoseconds: UInt64,
                endNanoseconds: UInt64, attributes: [(key: String, value: SpanAttributeValue)], errorMessage: String? = nil,
                links: [SpanLink] = []) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        self.startNanoseconds = startNanoseconds
        self.endNanoseconds = endNanoseconds
        self.attributes = attributes
        self.errorMessage = errorMessage
        self.links = links
    }

    public static func == (lhs: FinishedSpan, rhs: FinishedSpan) -> Bool {
        lhs.traceID == rhs.traceID && lhs.spanID == rhs.spanID && lhs.parentSpanID == rhs.parentSpanID && lhs.name == rhs.name
            && lhs.kind == rhs.kind && lhs.startNanoseconds == rhs.startNanoseconds && lhs.endNanoseconds == rhs.endNanoseconds
            && lhs.errorMessage == rhs.errorMessage && lhs.links == rhs.links
            && lhs.attributes.map(\.key) == rhs.attributes.map(\.key) && lhs.attributes.map(\.value) == rhs.attributes.map(\.value)
    }
}

/// Where ended spans go: the exporter's queue. Must never block.
public protocol SpanRecorder: Sendable {
    func record(_ span: FinishedSpan)
}

/// Starts spans when tracing is on; vpsgate has one per process (nil when tracing is off).
public struct Tracer: Sendable {
    let recorder: any SpanRecorder
    /// Unix time in nanoseconds (the core reads no clock itself).
    let now: @Sendable () -> UInt64

    public init(recorder: any SpanRecorder, now: @escaping @Sendable () -> UInt64) {
        self.recorder = recorder
        self.now = now
    }

    /// The request's server span: a child of the caller's `traceparent` when it parses and
    /// asks for sampling, a new trace's root when there is none; nil when the caller's trace
    /// is not sampled (parent-based sampling: the caller decides).
    public func serverSpan(_ name: String, continuing trace: TraceContext) -> Span? {
        guard trace.sampled else { return nil }
        return Span(tracer: self, traceID: Hex.decode(trace.traceID) ?? [], spanID: Hex.decode(trace.spanID) ?? [],
                    parentSpanID: trace.parentSpanID.flatMap { Hex.decode($0) } ?? [], name: name, kind: .server)
    }

    /// The root span of background work's own trace, begun with `trace`'s ids (a new trace:
    /// its `parentSpanID` is ignored), linked to `link` when given.
    public func rootSpan(_ name: String, trace: TraceContext, linkedTo link: SpanLink?) -> Span {
        let span = Span(tracer: self, traceID: Hex.decode(trace.traceID) ?? [], spanID: Hex.decode(trace.spanID) ?? [],
                        parentSpanID: [], name: name, kind: .internal)
        if let link { span.link(link) }
        return span
    }
}

/// A span in progress, used by the thread that handles its request; its attributes are
/// set under a lock so that it is safely `Sendable` (the span is the task-local current one).
public final class Span: Sendable {
    public let traceID: [UInt8]
    public let spanID: [UInt8]
    let parentSpanID: [UInt8]
    let name: String
    let kind: FinishedSpan.Kind
    let tracer: Tracer
    private let state: Mutex<(start: UInt64, attributes: [(key: String, value: SpanAttributeValue)], error: String?, links: [SpanLink],
                              ended: Bool)>

    init(tracer: Tracer, traceID: [UInt8], spanID: [UInt8], parentSpanID: [UInt8], name: String, kind: FinishedSpan.Kind) {
        self.tracer = tracer
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.name = name
        self.kind = kind
        state = Mutex((tracer.now(), [], nil, [], false))
    }

    /// A new span whose parent is this one; started now.
    public func child(_ name: String, kind: FinishedSpan.Kind = .internal) -> Span {
        Span(tracer: tracer, traceID: traceID, spanID: Self.newSpanID(), parentSpanID: spanID, name: name, kind: kind)
    }

    /// Sets (or replaces) an attribute. Never a secret, a token or a body.
    public func set(_ key: String, _ value: SpanAttributeValue) {
        state.withLock { state in
            if let index = state.attributes.firstIndex(where: { $0.key == key }) {
                state.attributes[index].value = value
            } else {
                state.attributes.append((key, value))
            }
        }
    }

    public func set(_ key: String, _ value: String) { set(key, .string(value)) }
    public func set(_ key: String, _ value: Int) { set(key, .int(Int64(value))) }

    /// Adds a link to another trace's span.
    public func link(_ link: SpanLink) {
        state.withLock { $0.links.append(link) }
    }

    /// Marks the span failed; `message` names the kind of failure, never data.
    public func fail(_ message: String) {
        state.withLock { $0.error = message }
    }

    /// Ends the span and hands it to the exporter; later calls do nothing.
    public func end() {
        let end = tracer.now()
        let finished: FinishedSpan? = state.withLock { state in
            guard !state.ended else { return nil }
            state.ended = true
            return FinishedSpan(traceID: traceID, spanID: spanID, parentSpanID: parentSpanID, name: name, kind: kind,
                                startNanoseconds: state.start, endNanoseconds: max(end, state.start),
                                attributes: state.attributes, errorMessage: state.error, links: state.links)
        }
        if let finished { tracer.recorder.record(finished) }
    }

    /// `00-<trace id>-<this span's id>-01`: what a call made inside this span sends.
    public var traceparent: String { "00-\(Hex.encode(traceID))-\(Hex.encode(spanID))-01" }

    public var traceIDText: String { Hex.encode(traceID) }
    public var spanIDText: String { Hex.encode(spanID) }

    static func newSpanID() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        while true {
            let value: UInt64 = generator.next()
            if value != 0 { return withUnsafeBytes(of: value) { Array($0) } }
        }
    }
}

/// The span the current thread works in. vpsgate is thread-based: a task-local bound
/// outside any task lives in a thread-local, for the duration of `withValue`'s body.
public enum Tracing {
    @TaskLocal public static var current: Span? = nil
    /// The trace the thread works for, exported or not: a request's (its caller's
    /// `traceparent`'s, or one vpsgate began) or a piece of background work's. Log lines
    /// carry its ids when no span is current, so that they name the trace Hostinger was told.
    @TaskLocal public static var trace: TraceContext? = nil

    /// The `trace_id` and `span_id` a log line written now carries: the current span's, else
    /// the current trace's (its hop's span, the parent Hostinger receives); nil outside both.
    public static var logIDs: (traceID: String, spanID: String)? {
        if let span = current { return (span.traceIDText, span.spanIDText) }
        if let trace { return (trace.traceID, trace.spanID) }
        return nil
    }

    /// Runs `body` as background work in a trace of its own (the reconciler's look at an
    /// operation, a dispatch, a webhook delivery): new ids, in every line logged meanwhile;
    /// with `tracer`, a root span `name` (the current span, handed to `body`) linked to the
    /// span `linkedTo` names, the request whose work this continues.
    public static func background<T, E: Error>(_ name: String, tracer: Tracer?, linkedTo traceparent: String?,
                                               _ body: (Span?) throws(E) -> T) throws(E) -> T {
        let trace = TraceContext(continuing: nil, sampleNewTraces: tracer != nil)
        let span = tracer?.rootSpan(name, trace: trace, linkedTo: traceparent.flatMap(SpanLink.init(traceparent:)))
        defer { span?.end() }
        let result: Result<T, E> = $trace.withValue(trace) {
            do throws(E) {
                return .success(try within(span) { () throws(E) -> T in try body(span) })
            } catch {
                span?.fail("\(type(of: error))")
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Runs `body` with `trace` as the current trace and `span` as the current span (a
    /// request's, from its start to its answer).
    public static func within<T>(_ trace: TraceContext, _ span: Span?, _ body: () -> T) -> T {
        $trace.withValue(trace) { $current.withValue(span) { body() } }
    }

    /// Runs `body` inside a child span of the current one named `name` (and as the current
    /// span); with no current span (tracing off, or not in a request), runs it alone.
    public static func span<T, E: Error>(_ name: String, kind: FinishedSpan.Kind = .internal,
                                         _ body: (Span?) throws(E) -> T) throws(E) -> T {
        guard let parent = current else { return try body(nil) }
        let span = parent.child(name, kind: kind)
        defer { span.end() }
        do throws(E) {
            return try within(span) { () throws(E) -> T in try body(span) }
        } catch {
            // The error's type only: its text may carry data.
            span.fail("\(type(of: error))")
            throw error
        }
    }

    /// Runs `body` with `span` as the current span (it neither starts nor ends it).
    public static func within<T, E: Error>(_ span: Span?, _ body: () throws(E) -> T) throws(E) -> T {
        let result: Result<T, E> = $current.withValue(span) {
            do throws(E) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
