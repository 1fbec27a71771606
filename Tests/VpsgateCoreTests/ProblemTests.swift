import Testing
import VpsgateCore

@Suite struct ProblemTests {
    @Test func serialisesEveryMemberWithTheCorrelationID() {
        let problem = Problem(.notFound, status: 404, title: "Not found", detail: "No such resource.", instance: "/v1/x")
        let json = String(decoding: problem.json(correlationID: CorrelationID(validating: "req-1"), base: "https://docs.example/vpsgate"),
                          as: UTF8.self)
        #expect(json == #"{"type":"https://docs.example/vpsgate/problems#not-found","title":"Not found","status":404,"detail":"No such resource.","instance":"/v1/x","correlation_id":"req-1"}"#)
    }

    @Test func includesFieldErrors() {
        let problem = Problem(Problem.Code(rawValue: "validation-failed"), status: 422, title: "Invalid", errors: [("hostname", ["must be a FQDN", "too long"])])
        let json = String(decoding: problem.json(correlationID: CorrelationID(validating: "c"), base: Configuration.defaultProblemBaseURL), as: UTF8.self)
        #expect(json.hasSuffix(#""correlation_id":"c","errors":{"hostname":["must be a FQDN","too long"]}}"#))
    }

    @Test func theCodeOfATypeIsItsFragmentOrTheOldURNsLastPart() {
        #expect(Problem.code(ofType: "https://vpsgate.dev/docs/problems#vps-busy") == .vpsBusy)
        #expect(Problem.code(ofType: "https://a.example:8443/x/problems#not-found") == .notFound)
        #expect(Problem.code(ofType: "urn:vpsgate:problem:vps-busy") == .vpsBusy)
        #expect(Problem.code(ofType: "https://vpsgate.dev/docs/problems") == nil)
        #expect(Problem.code(ofType: "about:blank") == nil)
        #expect(Problem.code(ofType: "https://x/problems#<b>") == nil)
        #expect(Problem.type(of: .vpsBusy, base: Configuration.defaultProblemBaseURL) == "https://vpsgate.dev/docs/problems#vps-busy")
    }

    @Test func aPublicBaseIsAnAbsoluteHTTPSURLWithoutQueryOrFragment() throws {
        #expect(try PublicURL.validate("https://docs.example.com/vpsgate/").get() == "https://docs.example.com/vpsgate")
        #expect(try PublicURL.validate("https://docs.example.com:8443").get() == "https://docs.example.com:8443")
        for bad in ["http://docs.example.com", "docs.example.com/x", "/docs", "https://docs.example.com/x?y=1", "https://docs.example.com/x#y",
                    "https://user@docs.example.com", "https:///x", "https://bad host/x", "https://docs.example.com/a b", "ftp://x"] {
            #expect(throws: ConfigurationProblem.self, "\(bad)") { try PublicURL.validate(bad).get() }
        }
    }

    @Test func theBasesAreReadAndCheckedAtStartup() throws {
        let plain = try Configuration(environment: [:])
        #expect(plain.problemBaseURL == "https://vpsgate.dev/docs" && plain.consoleURL == nil)
        let set = try Configuration(environment: ["VPSGATE_PROBLEM_BASE_URL": "https://docs.example/v/", "VPSGATE_CONSOLE_URL": "https://gate.example/console"])
        #expect(set.problemBaseURL == "https://docs.example/v" && set.consoleURL == "https://gate.example/console")
        #expect(throws: ConfigurationError.self) { try Configuration(environment: ["VPSGATE_PROBLEM_BASE_URL": "http://docs.example"]) }
        #expect(throws: ConfigurationError.self) { try Configuration(environment: ["VPSGATE_PROBLEM_BASE_URL": "https://docs.example/#x"]) }
        #expect(throws: ConfigurationError.self) { try Configuration(environment: ["VPSGATE_CONSOLE_URL": "https://gate.example/console?x"]) }
    }

    @Test func escapesStringsAsJSON() {
        var writer = JSONWriter()
        writer.beginArray()
        writer.string("quote\" backslash\\ newline\n tab\t nul\u{0} bell\u{7} é")
        writer.endArray()
        #expect(writer.string == #"["quote\" backslash\\ newline\n tab\t nul\u0000 bell\u0007 é"]"#)
    }
}
