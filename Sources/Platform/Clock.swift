#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The system's clocks, read with `clock_gettime`: the one place vpsgate asks for the time.
///
/// Durations, deadlines and timeouts come from the monotonic clock, which never steps. The
/// realtime clock is only for showing a time (a log line's stamp, the simulator's dates, an
/// HTTP date to compare with): stored times come from the database, never from this host's
/// wall clock (docs/design.md#trust-boundaries, one clock).
///
/// It shadows the standard library's `Clock` protocol in files that import `Platform`;
/// write `Swift.Clock` for that.
public enum Clock {
    /// Microseconds on the monotonic clock, from an unspecified start (boot, on Linux):
    /// only the difference of two readings means anything.
    public static func monotonicMicroseconds() -> Int64 {
        microseconds(on: CLOCK_MONOTONIC)
    }

    /// Seconds on the monotonic clock, for deadlines kept as `Double`; see
    /// `monotonicMicroseconds()`.
    public static func monotonicSeconds() -> Double {
        Double(monotonicMicroseconds()) / 1_000_000
    }

    /// Microseconds since the Unix epoch on the realtime (wall) clock. It steps when the
    /// host's time is set, so it never measures a duration.
    public static func realtimeMicroseconds() -> Int64 {
        microseconds(on: CLOCK_REALTIME)
    }

    private static func microseconds(on clock: clockid_t) -> Int64 {
        var now = timespec()
        // Fails only for an unknown clock id; these two exist on every Linux.
        clock_gettime(clock, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }
}
