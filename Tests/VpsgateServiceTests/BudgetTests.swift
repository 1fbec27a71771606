import Hostinger
import Logging
import Testing

@testable import VpsgateService

/// The shared budget without `HOSTINGER_RATE_LIMIT`: only a 429's pause holds calls.
@Suite struct BudgetWithoutLimitTests {
    /// Other instances taking slots at the same moment are no pause: a read is let through
    /// (in a rolling restart, a fresh instance with an empty read cache once answered 503).
    @Test func slotsTakenElsewhereDoNotHoldARead() throws {
        let store = MemoryStore()
        store.budgetAnswer = (false, 1)  // what a contended slot used to answer
        let budget = SharedBudget(store: store, context: try Fixture.context(), logger: .init(label: "test"))
        #expect(budget.admit(.read, maxWaitMilliseconds: 0) == nil)
        #expect(budget.admit(.command, maxWaitMilliseconds: 0) == nil)
        #expect(store.budgetTaken.isEmpty, "no slot is taken without a rate limit")
    }

    /// A pause recorded in the database holds reads at once and commands past their wait.
    @Test func aPauseInTheDatabaseHoldsCalls() throws {
        let store = MemoryStore()
        store.budgetPausedSeconds = 5
        let budget = SharedBudget(store: store, context: try Fixture.context(), logger: .init(label: "test"))
        let retryAfter = try #require(budget.admit(.read, maxWaitMilliseconds: 0))
        #expect(retryAfter > 4000 && retryAfter <= 5000)
        #expect(budget.admit(.command, maxWaitMilliseconds: 100) != nil)
    }
}
