import Testing
import VpsgateCore

@Suite struct MigrationPlanTests {
    let first = try! Migration(fileName: "0001_create_roles.sql", sql: "CREATE TABLE a ();")
    let second = try! Migration(fileName: "0002_add_grants.sql", sql: "CREATE TABLE b ();")

    func applied(_ migration: Migration, checksum: String? = nil) -> AppliedMigration {
        AppliedMigration(version: migration.version, fileName: migration.fileName, checksum: checksum ?? migration.checksum)
    }

    @Test func pendingAreTheUnappliedInVersionOrder() throws {
        #expect(try MigrationPlan.pending(available: [second, first], applied: []) == [first, second])
        #expect(try MigrationPlan.pending(available: [second, first], applied: [applied(first)]) == [second])
        #expect(try MigrationPlan.pending(available: [first, second], applied: [applied(first), applied(second)]).isEmpty)
    }

    @Test func anEditedAppliedMigrationIsRefused() {
        #expect {
            try MigrationPlan.pending(available: [first, second], applied: [applied(first, checksum: "0000")])
        } throws: { error in
            (error as? MigrationError)?.message.contains("was edited after it was applied") == true
        }
    }

    @Test func twoFilesWithOneNumberAreRefused() throws {
        let twin = try Migration(fileName: "0001_other.sql", sql: "SELECT 1;")
        #expect(throws: MigrationError.self) { try MigrationPlan.pending(available: [first, twin], applied: []) }
    }

    @Test(arguments: ["1_x.sql", "0001.sql", "abcd_x.sql", "0001_x.txt", "0000_x.sql"])
    func badFileNamesAreRefused(_ name: String) {
        #expect(throws: MigrationError.self) { try Migration(fileName: name, sql: "") }
    }

    @Test func currentMeansEveryKnownVersionApplied() {
        #expect(!MigrationPlan.isCurrent(available: [first, second], applied: [applied(first)]))
        #expect(MigrationPlan.isCurrent(available: [first, second], applied: [applied(first), applied(second)]))
        // A database ahead of this build (a newer instance migrated during a rolling upgrade) is current too.
        let third = AppliedMigration(version: 3, fileName: "0003_new.sql", checksum: "x")
        #expect(MigrationPlan.isCurrent(available: [first, second], applied: [applied(first), applied(second), third]))
    }
}
