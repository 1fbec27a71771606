import Testing

@testable import VpsgateService

struct MetricsTests {
    @Test func labelValuesAreEscapedOnlyWhereTheExpositionFormatNeedsIt() {
        #expect(Metrics.labelText([]) == "")
        #expect(Metrics.labelText([("route", "POST /v1/vps/{id}/start"), ("status", "202")])
                == #"route="POST /v1/vps/{id}/start",status="202""#)
        #expect(Metrics.labelText([("reason", "a \"quoted\" back\\slash\nnew line")])
                == #"reason="a \"quoted\" back\\slash\nnew line""#)
        // A carriage return before the newline is kept, the newline still escaped.
        #expect(Metrics.labelText([("reason", "é\r\n")]) == "reason=\"é\r\\n\"")
    }
}
