import Testing
import VpsgateCore

@Suite struct ActionMatcherTests {
    // 2026-11-26T17:00:00Z
    let created: Int64 = 1_795_712_400 * 1_000_000 + 250_000
    var deadline: Int64 { created + 20_000_000 }

    func action(_ id: Int, _ name: String, at seconds: Int64, state: String = "sent") -> HostingerAction {
        HostingerAction(id: id, name: name, state: state, createdAt: Timestamp.rfc3339Seconds(microseconds: seconds * 1_000_000))
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

    /// Every VPS command has the action names it may leave; commands on other resources
    /// leave none (Hostinger answers them at once and keeps no action for them).
    @Test func everyVPSCommandHasExpectedActionNames() {
        for command in Command.catalogue {
            if command.scope == .vps {
                #expect(ActionMatcher.expectedNames[command.name] != nil, "\(command.name)")
            } else {
                #expect(ActionMatcher.expectedNames[command.name] == nil, "\(command.name)")
            }
        }
    }

    // MARK: - The verdict on a lost answer, row by row

    func decide(_ command: String, _ actions: [HostingerAction], adopted: Set<Int> = [], closed: Bool, covers: Bool = true)
        -> LostAnswerDecision
    {
        ActionMatcher.decide(command: command, createdAt: created, latestDispatch: deadline, actions: actions, adopted: adopted,
                             windowClosed: closed, listCoversWindow: covers)
    }

    @Test func anActionOfTheExpectedNameIsAdoptedWhetherTheWindowIsOpenOrClosed() {
        let base = created / 1_000_000
        let restart = action(8, "ct_restart", at: base + 1)
        #expect(decide("vps.restart", [restart], closed: false) == .adopt(restart))
        #expect(decide("vps.restart", [restart], closed: true) == .adopt(restart))
    }

    @Test func whileTheWindowIsOpenNothingElseIsConcluded() {
        let base = created / 1_000_000
        #expect(decide("vps.recreate", [], closed: false) == .wait)
        #expect(decide("vps.recreate", [action(8, "os_reinstall", at: base + 1)], closed: false) == .wait)
    }

    @Test func anUnexpectedNameInTheWindowIsNeverNotAppliedButAmbiguousWithTheCandidates() {
        let base = created / 1_000_000
        // Hostinger named the reinstall differently from what vpsgate expects: it may well have happened.
        let renamed = action(8, "os_reinstall", at: base + 1)
        let older = action(7, "ct_start", at: base - 3600)
        #expect(decide("vps.recreate", [renamed, older], closed: true) == .ambiguous(candidates: [renamed]))
    }

    @Test func notAppliedOnlyWhenTheWholeWindowIsReadAndHoldsNothing() {
        let base = created / 1_000_000
        let older = action(7, "ct_start", at: base - 3600)
        let adoptedByOther = action(9, "recreate", at: base + 1)
        #expect(decide("vps.recreate", [older], closed: true) == .notApplied)
        #expect(decide("vps.recreate", [], closed: true) == .notApplied)
        #expect(decide("vps.recreate", [adoptedByOther, older], adopted: [9], closed: true) == .notApplied)
        // The pages read did not reach back before the operation: nothing is proven.
        #expect(decide("vps.recreate", [], closed: true, covers: false) == .ambiguous(candidates: []))
    }

    @Test func anActionWithoutACreationTimeCannotBeRuledOut() {
        let undated = HostingerAction(id: 12, name: "something", state: "success", createdAt: nil)
        #expect(decide("vps.stop", [undated], closed: true) == .ambiguous(candidates: [undated]))
    }

    // MARK: - Actions another operation's stray attempt explains

    /// A restart's attempt that got a 5xx `offset` seconds (start) to `offset + length` (end)
    /// from this operation's record: Hostinger may hold a `ct_restart` from it.
    func strayRestart(_ operation: String = "A", attempt: Int = 1, from offset: Int64, length: Int64 = 0, tied: Int? = nil) -> StrayWindow {
        StrayWindow(operationID: operation, attempt: StrayAttempt(number: attempt, startedAt: created + offset * 1_000_000,
                                                                    endedAt: created + (offset + length) * 1_000_000),
                    names: ActionMatcher.expectedNames["vps.restart"] ?? [], actionID: tied)
    }

    func verdict(_ command: String, _ actions: [HostingerAction], adopted: Set<Int> = [], strays: [StrayWindow], closed: Bool = true,
                 covers: Bool = true) -> LostAnswerVerdict {
        ActionMatcher.verdict(command: command, createdAt: created, latestDispatch: deadline, actions: actions, adopted: adopted,
                              strays: strays, windowClosed: closed, listCoversWindow: covers)
    }

    @Test func anActionAStrayAttemptExplainsNoLongerStandsAgainstNotApplied() {
        let base = created / 1_000_000
        // A restart answered 503 after Hostinger performed it, 1 s before the snapshot's record.
        let stray = action(8, "ct_restart", at: base - 1)
        let result = verdict("vps.snapshot.create", [stray], strays: [strayRestart(from: -1)])
        #expect(result.decision == .notApplied)
        #expect(result.attributions == [StrayAttribution(actionID: 8, operationID: "A", attempt: 1)])
        // Without the attempt's record it is what it was: a candidate for a person.
        #expect(verdict("vps.snapshot.create", [stray], strays: []) == LostAnswerVerdict(.ambiguous(candidates: [stray])))
    }

    @Test func theOperationsOwnActionIsAdoptedAndTheStrayOneTiedToItsAttempt() {
        let base = created / 1_000_000
        let stray = action(8, "ct_restart", at: base - 1)
        let snapshot = action(9, "snapshot_create", at: base)
        let result = verdict("vps.snapshot.create", [stray, snapshot], strays: [strayRestart(from: -1)], closed: false)
        #expect(result.decision == .adopt(snapshot))
        #expect(result.attributions == [StrayAttribution(actionID: 8, operationID: "A", attempt: 1)])
    }

    @Test func aNameTheCommandItselfProducesIsNeverTiedElsewhere() {
        let base = created / 1_000_000
        // A restart that lost its answer: the ct_restart in its window may be its own, even
        // though another restart's attempt could have left it. Adopted, as without the attempt.
        let restart = action(8, "ct_restart", at: base)
        let result = verdict("vps.restart", [restart], strays: [strayRestart(from: -1, length: 1)])
        #expect(result.decision == .adopt(restart))
        #expect(result.attributions.isEmpty)
        // The same for an action already tied to an attempt by another operation's look.
        #expect(verdict("vps.restart", [restart], strays: [strayRestart(from: -1, tied: 8)]).decision == .adopt(restart))
    }

    @Test func aStrayAttemptExplainsOnlyItsNamesAndItsWindow() {
        let base = created / 1_000_000
        // Not a name a restart produces: Hostinger may have named the reinstall so.
        let renamed = action(8, "os_reinstall", at: base)
        #expect(verdict("vps.recreate", [renamed], strays: [strayRestart(from: -1)]).decision == .ambiguous(candidates: [renamed]))
        // Created 4 s after the attempt ended: beyond the 2 s of skew.
        let late = action(9, "ct_restart", at: base + 3)
        let result = verdict("vps.recreate", [late], strays: [strayRestart(from: -1)])
        #expect(result == LostAnswerVerdict(.ambiguous(candidates: [late])))
        // Within 2 s of either end (Hostinger's whole seconds) it is explained.
        #expect(verdict("vps.recreate", [action(10, "ct_restart", at: base + 1)], strays: [strayRestart(from: -1)]).decision == .notApplied)
        // No creation time: nothing ties it to a window.
        let undated = HostingerAction(id: 12, name: "ct_restart", state: "success", createdAt: nil)
        #expect(verdict("vps.recreate", [undated], strays: [strayRestart(from: -1)]).decision == .ambiguous(candidates: [undated]))
    }

    @Test func oneAttemptExplainsOneAction() {
        let base = created / 1_000_000
        let first = action(8, "ct_restart", at: base - 1)
        let second = action(9, "ct_restart", at: base)
        // Two actions, one attempt: the second stays unexplained.
        let one = verdict("vps.recreate", [first, second], strays: [strayRestart(from: -1, length: 1)])
        #expect(one.decision == .ambiguous(candidates: [second]))
        #expect(one.attributions == [StrayAttribution(actionID: 8, operationID: "A", attempt: 1)])
        // Two attempts (the first 503, the second a timeout): both explained, each by one.
        let two = verdict("vps.recreate", [first, second], strays: [strayRestart(attempt: 2, from: 0), strayRestart(attempt: 1, from: -1)])
        #expect(two.decision == .notApplied)
        #expect(two.attributions == [StrayAttribution(actionID: 8, operationID: "A", attempt: 1),
                                     StrayAttribution(actionID: 9, operationID: "A", attempt: 2)])
        // An attempt already tied to an action explains that one, and no other.
        let earlier = verdict("vps.recreate", [first, second], strays: [strayRestart(from: -1, length: 1, tied: 8)])
        #expect(earlier.decision == .ambiguous(candidates: [second]))
        #expect(earlier.attributions.isEmpty)
    }

    @Test func tiesAreNeverMadeOrConcludedWhileTheWindowIsOpenWithoutAnAdoption() {
        let base = created / 1_000_000
        let stray = action(8, "ct_restart", at: base - 1)
        #expect(verdict("vps.snapshot.create", [stray], strays: [strayRestart(from: -1)], closed: false) == LostAnswerVerdict(.wait))
        // A list that does not reach back far enough proves nothing, tied or not.
        let short = verdict("vps.snapshot.create", [stray], strays: [strayRestart(from: -1)], covers: false)
        #expect(short.decision == .ambiguous(candidates: []))
        #expect(short.attributions.count == 1)
        // An action another operation holds is no candidate at all, and ties nothing.
        #expect(verdict("vps.snapshot.create", [stray], adopted: [8], strays: [strayRestart(from: -1)]) == LostAnswerVerdict(.notApplied))
    }

    @Test func actionPagesSayWhetherMoreFollowAndHowFarBackTheyReach() throws {
        let base = created / 1_000_000
        func page(_ current: Int, total: Int, _ items: [HostingerAction]) throws -> HostingerActionPage {
            let data = items.map { #"{"id":\#($0.id),"name":"\#($0.name)","state":"\#($0.state)","created_at":"\#(Timestamp.rfc3339Seconds(microseconds: ($0.createdAtSeconds ?? 0) * 1_000_000))"}"# }
            let text = #"{"data":[\#(data.joined(separator: ","))],"meta":{"current_page":\#(current),"per_page":2,"total":\#(total)}}"#
            return try #require(HostingerActionPage(json: JSONValue.parse(Array(text.utf8))))
        }
        let first = try page(1, total: 5, [action(9, "ct_stop", at: base + 5), action(8, "ct_start", at: base + 2)])
        #expect(!first.isLast)
        #expect(!first.reachesBack(to: base))
        let last = try page(3, total: 5, [action(5, "ct_start", at: base - 100)])
        #expect(last.isLast)
        #expect(last.reachesBack(to: base))
        #expect(HostingerActionPage(json: .object([])) == nil)
        // A page without meta is taken as the only one.
        #expect(HostingerActionPage(json: .object([("data", .array([]))]))?.isLast == true)
        // Absurd meta cannot trap.
        let huge = #"{"data":[],"meta":{"current_page":9223372036854775807,"per_page":9223372036854775807,"total":1}}"#
        #expect(HostingerActionPage(json: try JSONValue.parse(Array(huge.utf8)))?.isLast == true)
    }

    @Test func parsesHostingerTimes() {
        #expect(Timestamp.secondsSinceEpoch("1970-01-01T00:00:00Z") == 0)
        #expect(Timestamp.secondsSinceEpoch("2025-02-27T11:54:00Z") == 1_740_657_240)
        #expect(Timestamp.secondsSinceEpoch("2025-02-27T11:54:00.123456Z") == 1_740_657_240)
        #expect(Timestamp.secondsSinceEpoch("yesterday") == nil)
    }
}
