/// Milliseconds on the monotonic clock, for intervals and durations: the spelling the
/// reconciler, the housekeeper and the Hostinger client keep their times in.
public enum MonotonicClock {
    /// `Clock.monotonicMicroseconds()` in whole milliseconds; only differences mean anything.
    public static func milliseconds() -> Int {
        Int(Clock.monotonicMicroseconds() / 1000)
    }
}
