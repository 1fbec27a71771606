import Testing
import VpsgateCore

@Suite struct RedactionTests {
    let declared: Set<String> = ["password", "template_id", "confirm"]
    let secrets: Set<String> = ["password"]

    func auditable(_ text: String) throws -> String {
        String(decoding: Redaction.auditable(try JSONValue.parse(Array(text.utf8)), declared: declared, secrets: secrets)
            .serialized(sortedKeys: true), as: UTF8.self)
    }

    @Test func keepsDeclaredValuesRedactsSecretsAndKeepsOnlyTheNameOfUndeclaredFields() throws {
        let stored = try auditable(#"{"password":"Hunter2Hunter2","new_password":"Sup3rSecretValue","template_id":1130,"confirm":1002}"#)
        #expect(stored == #"{"confirm":1002,"new_password":"[UNDECLARED]","password":"[REDACTED]","template_id":1130}"#)
        #expect(!stored.contains("Sup3rSecretValue") && !stored.contains("Hunter2"))
    }

    @Test func nestedValuesOfUndeclaredFieldsAreNotKept() throws {
        let stored = try auditable(#"{"extra":{"password":"Sup3rSecretValue","deep":[1,{"x":"Sup3rSecretValue"}]}}"#)
        #expect(stored == #"{"extra":"[UNDECLARED]"}"#)
    }

    @Test func aBodyThatIsNotAnObjectIsKeptByTypeOnly() throws {
        #expect(try auditable(#"["Sup3rSecretValue"]"#) == #"{"_body":"[UNDECLARED]"}"#)
        #expect(try auditable(#""Sup3rSecretValue""#) == #"{"_body":"[UNDECLARED]"}"#)
    }

    @Test func stringsLoseNULCharactersSoTheRowCanBeStored() throws {
        let stored = try auditable(#"{"template_id":"a\u0000b","bad\u0000name":1}"#)
        #expect(!stored.contains("\\u0000"))
        #expect(stored.contains("template_id"))
    }
}
