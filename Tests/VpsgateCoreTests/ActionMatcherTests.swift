import Testing
import VpsgateCore

@Suite struct ActionMatcherTests {
    // 2026-11-26T17:00:00Z
    let created: Int64 = 1_795_712_400 * 1_000_000 + 250_000
    var deadline: Int64 { created + 20_000_000 }

    func action(_ id: Int, _ name: String, at seconds: Int64, state: String = "sent") -> HostingerActionRecord {
        HostingerActionRecord(id: id, name: name, state: state, createdAt: Timestamp.rfc3339Seconds(microseconds: seconds * 1_000_000))
    }

    @Test func matchesTheExpectedNameWithinTheWindow() {
        let base = created / 1_000_000
        let actions = [action(9, "recreate", at: base + 1), action(8, "ct_restart", at: base), action(7, "recreate", at: base - 600)]
        #expect(ActionMatcher.match(command: "vps.recreate", createdAt: created, latestDispatch: deadline, actions: actions, adopted: [])?.id == 9)
        #expect(ActionMatcher.match(command: "vps.restart", createdAt: created, latestDispatch: deadline, actions: actions, adopted: [])?.id == 8)
    }

    @Test func neverTakesAnAdoptedActionOrOneOutsideTheWindow() {
        let base = created / 1_000_000
        let actions = [action(9, "recreate", at: base + 1), action(10, "recreate", at: base + 60), action(11, "recreate", at: base - 10)]
        #expect(ActionMatcher.match(command: "vps.recreate", createdAt: created, latestDispatch: deadline, actions: actions, adopted: [9]) == nil)
        #expect(ActionMatcher.match(command: "vps.stop", createdAt: created, latestDispatch: deadline, actions: actions, adopted: []) == nil)
    }

    @Test func toleratesHostingersWholeSeconds() {
        let base = created / 1_000_000
        // Hostinger writes 17:00:00 for an action created 0.25 s before vpsgate's record of 17:00:00.25.
        let actions = [action(5, "ct_stop", at: base - 1)]
        #expect(ActionMatcher.match(command: "vps.stop", createdAt: created, latestDispatch: deadline, actions: actions, adopted: [])?.id == 5)
    }

    @Test func everyCommandHasExpectedActionNames() {
        for command in Command.catalogue { #expect(ActionMatcher.expectedNames[command.name] != nil, "\(command.name)") }
    }

    @Test func parsesHostingerTimes() {
        #expect(Timestamp.secondsSinceEpoch("1970-01-01T00:00:00Z") == 0)
        #expect(Timestamp.secondsSinceEpoch("2025-02-27T11:54:00Z") == 1_740_657_240)
        #expect(Timestamp.secondsSinceEpoch("2025-02-27T11:54:00.123456Z") == 1_740_657_240)
        #expect(Timestamp.secondsSinceEpoch("yesterday") == nil)
    }
}
