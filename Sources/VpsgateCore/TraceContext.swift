/// W3C Trace Context: the `traceparent` vpsgate sends to Hostinger.
///
/// It continues the caller's trace (same trace id, a new span id) when the caller sent a
/// valid `traceparent`, and starts a new trace otherwise.
public struct TraceContext: Sendable, Equatable {
    /// 32 lower-case hex digits, not all zero.
    public var traceID: String
    /// 16 lower-case hex digits, not all zero: this hop's span.
    public var spanID: String
    /// The caller's span (16 hex digits) when its `traceparent` parsed.
    public var parentSpanID: String?
    public var sampled: Bool

    /// A child of `incoming` when it parses, else the root of a new trace, sampled only when
    /// `sampleNewTraces` (tracing is on: vpsgate records the traces it starts).
    public init(continuing incoming: String?, sampleNewTraces: Bool = false) {
        spanID = Self.nonZeroHex(bytes: 8)
        if let incoming, let parent = Self.parse(incoming) {
            traceID = parent.traceID
            parentSpanID = parent.parentID
            sampled = parent.sampled
        } else {
            traceID = Self.nonZeroHex(bytes: 16)
            sampled = sampleNewTraces
        }
    }

    /// `00-<trace id>-<span id>-<flags>`.
    public var traceparent: String { "00-\(traceID)-\(spanID)-\(sampled ? "01" : "00")" }

    /// The parts of a version-00 `traceparent`, or nil when malformed.
    public static func parse(_ header: String) -> (traceID: String, parentID: String, sampled: Bool)? {
        let parts = header.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "00",
            parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
            parts.dropFirst().allSatisfy({ $0.allSatisfy { $0.isHexDigit && !$0.isUppercase } }),
            parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" }),
            let flags = UInt8(parts[3], radix: 16)
        else { return nil }
        return (String(parts[1]), String(parts[2]), flags & 1 == 1)
    }

    private static func nonZeroHex(bytes count: Int) -> String {
        while true {
            let bytes = RandomBytes.generate(count)
            if bytes.contains(where: { $0 != 0 }) { return Hex.encode(bytes) }
        }
    }
}
