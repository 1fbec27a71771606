/// The body of an OTLP/HTTP trace export (`POST {endpoint}/v1/traces`,
/// `Content-Type: application/x-protobuf`): an `ExportTraceServiceRequest` in protobuf's
/// wire format, encoded by hand.
///
/// vpsgate needs five messages of opentelemetry-proto's `trace/v1/trace.proto` and
/// `common/v1/common.proto`, and only their writing; the field numbers below are theirs.
/// Proto3's wire format for these is varints, length-delimited fields and fixed64
/// timestamps (docs/logs-and-metrics.md#traces says why no OpenTelemetry package is used).
public enum OTLPTraceEncoding {
    /// `ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }` holding one
    /// `ResourceSpans` (`service.name` and the resource attributes) with one `ScopeSpans`.
    public static func exportRequest(_ spans: [FinishedSpan], resource: [(key: String, value: SpanAttributeValue)],
                                     scopeName: String, scopeVersion: String) -> [UInt8] {
        // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
        var resourceSpans = ProtoWriter()
        // Resource { repeated KeyValue attributes = 1; }
        var resourceMessage = ProtoWriter()
        for attribute in resource { resourceMessage.message(1, keyValue(attribute.key, attribute.value)) }
        resourceSpans.message(1, resourceMessage.bytes)
        // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
        var scopeSpans = ProtoWriter()
        var scope = ProtoWriter()  // InstrumentationScope { string name = 1; string version = 2; }
        scope.string(1, scopeName)
        scope.string(2, scopeVersion)
        scopeSpans.message(1, scope.bytes)
        for span in spans { scopeSpans.message(2, encode(span)) }
        resourceSpans.message(2, scopeSpans.bytes)
        var request = ProtoWriter()
        request.message(1, resourceSpans.bytes)
        return request.bytes
    }

    /// `Span`: trace_id = 1, span_id = 2, parent_span_id = 4, name = 5, kind = 6,
    /// start_time_unix_nano = 7 (fixed64), end_time_unix_nano = 8 (fixed64), attributes = 9,
    /// links = 13 (`Link { bytes trace_id = 1; bytes span_id = 2; fixed32 flags = 6; }`, flags as
    /// the span's, with the trace flags' sampled bit: the linked span is another process's or
    /// another time's, so remote), status = 15 (`Status { string message = 2; StatusCode code = 3; }`, ERROR = 2),
    /// flags = 16 (fixed32: 0x100, the parent's remoteness is known; 0x200 when it is remote).
    static func encode(_ span: FinishedSpan) -> [UInt8] {
        var writer = ProtoWriter()
        writer.bytesField(1, span.traceID)
        writer.bytesField(2, span.spanID)
        if !span.parentSpanID.isEmpty { writer.bytesField(4, span.parentSpanID) }
        writer.string(5, span.name)
        writer.varintField(6, UInt64(span.kind.rawValue))
        writer.fixed64Field(7, span.startNanoseconds)
        writer.fixed64Field(8, span.endNanoseconds)
        for attribute in span.attributes { writer.message(9, keyValue(attribute.key, attribute.value)) }
        for link in span.links {
            var message = ProtoWriter()
            message.bytesField(1, link.traceID)
            message.bytesField(2, link.spanID)
            message.fixed32Field(6, 0x300 | (link.sampled ? 1 : 0))
            writer.message(13, message.bytes)
        }
        if let message = span.errorMessage {
            var status = ProtoWriter()
            status.string(2, message)
            status.varintField(3, 2)
            writer.message(15, status.bytes)
        }
        // A server span's parent is the caller's (remote); every other parent is ours.
        writer.fixed32Field(16, span.kind == .server && !span.parentSpanID.isEmpty ? 0x300 : 0x100)
        return writer.bytes
    }

    /// `KeyValue { string key = 1; AnyValue value = 2; }`, `AnyValue { string string_value = 1;
    /// bool bool_value = 2; int64 int_value = 3; }` (a oneof: written even when zero).
    static func keyValue(_ key: String, _ value: SpanAttributeValue) -> [UInt8] {
        var any = ProtoWriter()
        switch value {
        case .string(let text): any.string(1, text, always: true)
        case .bool(let flag): any.varintField(2, flag ? 1 : 0, always: true)
        case .int(let number): any.varintField(3, UInt64(bitPattern: number), always: true)
        }
        var pair = ProtoWriter()
        pair.string(1, key)
        pair.message(2, any.bytes)
        return pair.bytes
    }
}

/// Protobuf's wire format, writing only: proto3 leaves fields at their default out.
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    private mutating func tag(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    mutating func varintField(_ field: Int, _ value: UInt64, always: Bool = false) {
        guard value != 0 || always else { return }
        tag(field, 0)
        varint(value)
    }

    mutating func fixed64Field(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, 1)
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    mutating func fixed32Field(_ field: Int, _ value: UInt32) {
        guard value != 0 else { return }
        tag(field, 5)
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    mutating func bytesField(_ field: Int, _ value: [UInt8], always: Bool = false) {
        guard !value.isEmpty || always else { return }
        tag(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String, always: Bool = false) { bytesField(field, Array(value.utf8), always: always) }

    /// An embedded message, written even when empty (its presence is what it says).
    mutating func message(_ field: Int, _ value: [UInt8]) { bytesField(field, value, always: true) }
}
