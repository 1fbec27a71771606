import Testing
import VpsgateCore

@Suite struct CommandQueryTests {
    @Test(arguments: [("", false), ("validate_only=true", true), ("validate_only=false", false)])
    func acceptsNothingOrOneValidateOnly(query: String, validateOnly: Bool) throws {
        #expect(try CommandQuery.parse(query).get() == CommandQuery(validateOnly: validateOnly))
    }

    /// `validate_only=1` once ran the command for real; every such value is now refused.
    @Test(arguments: [
        "validate_only=1", "validate_only=TRUE", "validate_only=yes", "validate_only", "validate_only=", "validate_only=true%00",
        "validate_only=false&validate_only=true", "validate_only=true&dry_run=1", "dry_run=true", "&", "validate_only=true&",
        "Validate_Only=true",
    ])
    func refusesAnythingElse(query: String) {
        #expect(throws: CommandQuery.Invalid.self) { try CommandQuery.parse(query).get() }
    }
}
