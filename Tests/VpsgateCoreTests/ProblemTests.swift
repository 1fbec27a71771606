import Testing
import VpsgateCore

@Suite struct ProblemTests {
    @Test func serialisesEveryMemberWithTheCorrelationID() {
        let problem = Problem(.notFound, status: 404, title: "Not found", detail: "No such resource.", instance: "/v1/x")
        let json = String(decoding: problem.json(correlationID: CorrelationID(validating: "req-1")), as: UTF8.self)
        #expect(json == #"{"type":"urn:vpsgate:problem:not-found","title":"Not found","status":404,"detail":"No such resource.","instance":"/v1/x","correlation_id":"req-1"}"#)
    }

    @Test func includesFieldErrors() {
        let problem = Problem(Problem.Code(rawValue: "validation-failed"), status: 422, title: "Invalid", errors: [("hostname", ["must be a FQDN", "too long"])])
        let json = String(decoding: problem.json(correlationID: CorrelationID(validating: "c")), as: UTF8.self)
        #expect(json.hasSuffix(#""correlation_id":"c","errors":{"hostname":["must be a FQDN","too long"]}}"#))
    }

    @Test func escapesStringsAsJSON() {
        var writer = JSONWriter()
        writer.beginArray()
        writer.string("quote\" backslash\\ newline\n tab\t nul\u{0} bell\u{7} é")
        writer.endArray()
        #expect(writer.string == #"["quote\" backslash\\ newline\n tab\t nul\u0000 bell\u0007 é"]"#)
    }
}
