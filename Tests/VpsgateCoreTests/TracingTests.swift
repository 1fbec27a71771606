import Synchronization
import Testing
import VpsgateCore

@Suite struct TracingTests {
    /// The bytes opentelemetry-proto's Python classes serialize for the same request
    /// (`ExportTraceServiceRequest.SerializeToString()`): the hand encoding is theirs.
    @Test func exportRequestMatchesTheReferenceEncoding() {
        let span = FinishedSpan(
            traceID: Array(1...16), spanID: Array(0x21...0x28), parentSpanID: Array(0x31...0x38), name: "begin_command", kind: .client,
            startNanoseconds: 1_700_000_000_123_456_789, endNanoseconds: 1_700_000_000_223_456_789,
            attributes: [("db.system.name", .string("postgresql")), ("n", .int(-2)), ("b", .bool(false))], errorMessage: "server error")
        let bytes = OTLPTraceEncoding.exportRequest([span], resource: [("service.name", .string("vpsgate-test"))],
                                                    scopeName: "vpsgate", scopeVersion: "1.0")
        #expect(Hex.encode(bytes) == """
            0ad4010a200a1e0a0c736572766963652e6e616d65120e0a0c767073676174652d7465737412af010a0e0a07767073676174651203312e30129c010a\
            100102030405060708090a0b0c0d0e0f1012082122232425262728220831323334353637382a0d626567696e5f636f6d6d616e6430033915cd853d\
            fe9c97174115ae7b43fe9c97174a1e0a0e64622e73797374656d2e6e616d65120c0a0a706f737467726573716c4a100a016e120b18feffffffffff\
            ffffff014a070a0162120210007a10120c736572766572206572726f721802850100010000
            """)
    }

    /// A root span with a link to another trace's span (`Span.Link`, remote and sampled).
    @Test func linksMatchTheReferenceEncoding() throws {
        let link = try #require(SpanLink(traceparent: "00-0102030405060708090a0b0c0d0e0f10-2122232425262728-01"))
        let span = FinishedSpan(traceID: Array(0x41...0x50), spanID: Array(0x51...0x58), parentSpanID: [], name: "reconcile", kind: .internal,
                                startNanoseconds: 5, endNanoseconds: 7, attributes: [], links: [link])
        let bytes = OTLPTraceEncoding.exportRequest([span], resource: [("service.name", .string("vpsgate-test"))],
                                                    scopeName: "vpsgate", scopeVersion: "1.0")
        #expect(Hex.encode(bytes) == """
            0a9a010a200a1e0a0c736572766963652e6e616d65120e0a0c767073676174652d7465737412760a0e0a07767073676174651203312e3012640a\
            104142434445464748494a4b4c4d4e4f50120851525354555657582a097265636f6e63696c6530013905000000000000004107000000000000006a\
            210a100102030405060708090a0b0c0d0e0f10120821222324252627283501030000850100010000
            """)
        #expect(SpanLink(traceparent: "00-0102-2122232425262728-01") == nil)
    }

    @Test func statementNamesKeepNoValues() {
        #expect(SQLStatementName.of("SELECT begin_command($1::jsonb) AS decision") == "begin_command")
        #expect(SQLStatementName.of("SELECT * FROM read_events($1, $2)") == "read_events")
        #expect(SQLStatementName.of("SELECT 1 FROM principals WHERE name = $1") == "SELECT principals")
        #expect(SQLStatementName.of("SELECT count(*) AS n FROM operations WHERE state = 'x'") == "SELECT operations")
        #expect(SQLStatementName.of("\n    INSERT INTO api_tokens (principal) VALUES ($1)") == "INSERT api_tokens")
        #expect(SQLStatementName.of("UPDATE api_tokens SET revoked_at = now() WHERE id = $1") == "UPDATE api_tokens")
        #expect(SQLStatementName.of("DELETE FROM grants WHERE principal = $1") == "DELETE grants")
        #expect(SQLStatementName.of("BEGIN") == "BEGIN")
        #expect(SQLStatementName.of("SELECT 'secret'") == "SELECT")
        #expect(SQLStatementName.of("") == "statement")
    }

    @Test func settingsFollowOpenTelemetrysVariables() throws {
        #expect(try OTLPSettings.from(environment: [:]) == nil)
        #expect(try OTLPSettings.from(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"]) == nil)
        let base = try #require(try OTLPSettings.from(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"]))
        #expect(base.tracesURL == "http://c:4318/v1/traces")
        #expect(base.serviceName == "vpsgate")
        let traces = try #require(try OTLPSettings.from(environment: [
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://t/x",
            "OTEL_SERVICE_NAME": "gate", "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20abc,x=y",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        ]))
        #expect(traces.tracesURL == "https://t/x")
        #expect(traces.serviceName == "gate")
        #expect(traces.headers.map(\.name) == ["authorization", "x"])
        #expect(traces.headers.first?.value.value == "Bearer abc")
        #expect(traces.scheduleDelayMilliseconds == 200)
        #expect(throws: OTLPSettings.Invalid.self) {
            try OTLPSettings.from(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"])
        }
        #expect(throws: OTLPSettings.Invalid.self) { try OTLPSettings.from(environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318"]) }
    }

    final class Collected: SpanRecorder {
        let spans = Mutex<[FinishedSpan]>([])
        func record(_ span: FinishedSpan) { spans.withLock { $0.append(span) } }
    }

    @Test func spansNestAndContinueTheCallersTrace() {
        let collected = Collected()
        let tracer = Tracer(recorder: collected, now: { 1 })
        let caller = TraceContext(continuing: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        let server = tracer.serverSpan("POST restart", continuing: caller)!
        Tracing.within(server) {
            Tracing.span("begin") { begin in
                #expect(Tracing.current === begin)
                Tracing.span("begin_command") { _ in }
            }
        }
        #expect(Tracing.current == nil)
        server.end()
        let spans = collected.spans.withLock { $0 }
        #expect(spans.map(\.name) == ["begin_command", "begin", "POST restart"])
        #expect(spans.allSatisfy { Hex.encode($0.traceID) == "0af7651916cd43dd8448eb211c80319c" })
        #expect(Hex.encode(spans[2].parentSpanID) == "b7ad6b7169203331")
        #expect(spans[1].parentSpanID == spans[2].spanID)
        #expect(spans[0].parentSpanID == spans[1].spanID)
        // A caller that asked not to sample is not traced; one without a traceparent is, when tracing is on.
        #expect(tracer.serverSpan("x", continuing: TraceContext(continuing: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")) == nil)
        #expect(tracer.serverSpan("x", continuing: TraceContext(continuing: nil, sampleNewTraces: true)) != nil)
    }

    /// Background work: a trace of its own whose ids log lines carry, and with a tracer a root
    /// span linked to the request it continues.
    @Test func backgroundWorkIsATraceOfItsOwnLinkedToTheRequest() {
        let request = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        // Tracing off: no span, but ids to log, the same as the traceparent sent on.
        let untraced: (String, String)? = Tracing.background("reconcile", tracer: nil, linkedTo: request) { span in
            #expect(span == nil)
            return Tracing.logIDs.map { ($0.traceID, $0.spanID) }
        }
        #expect(untraced.map { $0.0 } != "0af7651916cd43dd8448eb211c80319c")
        #expect(untraced?.0.count == 32 && untraced?.1.count == 16)
        #expect(Tracing.logIDs == nil)

        let collected = Collected()
        let tracer = Tracer(recorder: collected, now: { 1 })
        let ids: (String, String)? = Tracing.background("dispatch", tracer: tracer, linkedTo: request) { span in
            Tracing.span("hostinger") { _ in }
            return Tracing.logIDs.map { ($0.traceID, $0.spanID) }
        }
        let spans = collected.spans.withLock { $0 }
        #expect(spans.map(\.name) == ["hostinger", "dispatch"])
        let root = spans[1]
        #expect(root.parentSpanID.isEmpty && spans[0].parentSpanID == root.spanID)
        #expect(ids.map { $0.0 } == Hex.encode(root.traceID) && ids.map { $0.1 } == Hex.encode(root.spanID))
        #expect(root.links == [SpanLink(traceparent: request)!])
        #expect(Hex.encode(root.traceID) != "0af7651916cd43dd8448eb211c80319c")
        // A request's trace names its lines when no span is recorded.
        let trace = TraceContext(continuing: request)
        let requestIDs = Tracing.within(trace, nil) { Tracing.logIDs.map { ($0.traceID, $0.spanID) } }
        #expect(requestIDs.map { $0.0 } == "0af7651916cd43dd8448eb211c80319c" && requestIDs.map { $0.1 } == trace.spanID)
    }
}
