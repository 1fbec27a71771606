import Platform
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ClockTests {
    @Test func theMonotonicClockNeverGoesBackAndCountsASleep() {
        var previous = Clock.monotonicMicroseconds()
        for _ in 0..<10_000 {
            let now = Clock.monotonicMicroseconds()
            #expect(now >= previous)
            previous = now
        }
        let before = Clock.monotonicMicroseconds()
        usleep(20_000)
        #expect(Clock.monotonicMicroseconds() - before >= 20_000)
    }

    @Test func theThreeMonotonicSpellingsReadTheSameClock() {
        let microseconds = Clock.monotonicMicroseconds()
        let milliseconds = MonotonicClock.milliseconds()
        let seconds = Clock.monotonicSeconds()
        #expect(milliseconds - Int(microseconds / 1000) < 100)
        #expect(seconds - Double(microseconds) / 1_000_000 < 0.1)
    }

    @Test func theRealtimeClockIsMicrosecondsSinceTheEpoch() {
        let seconds = Clock.realtimeMicroseconds() / 1_000_000
        #expect(abs(seconds - Int64(time(nil))) <= 1)
    }
}
