import Testing
import VpsgateCore

/// The `Vpsgate-Reason` header's rules: trimmed, 1 to 500 characters, one line.
@Suite struct CommandReasonTests {
    @Test func noHeaderIsNoReason() {
        #expect(CommandReason.parse(nil) == .success(nil))
    }

    @Test func aReasonIsTrimmedAndKeptAsGiven() {
        #expect(CommandReason.parse("  ticket OPS-42 \t") == .success("ticket OPS-42"))
        #expect(CommandReason.parse("<img src=x onerror=alert(1)>") == .success("<img src=x onerror=alert(1)>"))
        #expect(CommandReason.parse("Wartung für Kunde ✓") == .success("Wartung für Kunde ✓"))
    }

    @Test func emptyTooLongAndControlCharactersAreRefused() {
        #expect(CommandReason.parse("") == .failure(.empty))
        #expect(CommandReason.parse("   ") == .failure(.empty))
        #expect(CommandReason.parse(String(repeating: "a", count: 500)) == .success(String(repeating: "a", count: 500)))
        #expect(CommandReason.parse(String(repeating: "a", count: 501)) == .failure(.tooLong))
        // Counted as PostgreSQL counts (code points): 500 of "é" fit, 501 do not.
        #expect(CommandReason.parse(String(repeating: "é", count: 501)) == .failure(.tooLong))
        #expect(CommandReason.parse(" " + String(repeating: "a", count: 500) + " ") == .success(String(repeating: "a", count: 500)))
        for hostile in ["a\nb", "a\rb", "a\tb", "a\u{0}b", "a\u{1b}[31mb", "a\u{7f}b", "a\u{85}b", "a\u{2028}b"] {
            #expect(CommandReason.parse(hostile) == .failure(.controlCharacter), "\(hostile.debugDescription)")
        }
    }

    @Test func theProblemForAMissingReasonIs422ReasonRequired() {
        let problem = CommandReason.requiredProblem(instance: "/v1/vps/1001/stop")
        #expect(problem.status == 422 && problem.code == .reasonRequired)
        #expect(BeginDecision.Kind.reasonRequired.auditOutcome == .invalid)
        #expect(BeginDecision.Kind.auditAnswers["reason_required"]?["problem_type"]?.stringValue == "urn:vpsgate:problem:reason-required")
    }
}
