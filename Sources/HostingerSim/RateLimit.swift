/// Hostinger's request limit as the simulator applies it (`POST /__sim/config`
/// `{"rate_limit_per_minute": N}`).
///
/// Hostinger's API is a Laravel application, and Laravel's throttle counts in fixed
/// windows: a window of 60 s opens with the first request after the previous one closed,
/// at most N requests are let through in it, and the rest answer 429 with `Retry-After`,
/// the seconds until it closes. Refused requests are not counted. So any window, read off
/// the request log from its first accepted request, holds at most N accepted requests;
/// a sliding 60 s span may hold up to 2N (the end of one window and the start of the next).
struct RateLimit {
    /// Requests let through per window; 0 turns the limit off.
    var perMinute: Int
    /// 60 s, as Hostinger's; tests shorten it (`rate_limit_window_ms`) to see windows roll over.
    var windowMicroseconds: Int64
    private var windowStart: Int64?
    private var accepted = 0

    init(perMinute: Int, windowMicroseconds: Int64 = 60_000_000) {
        self.perMinute = perMinute
        self.windowMicroseconds = windowMicroseconds
    }

    /// Counts a request arriving at `now` (microseconds): nil when it may proceed, else the
    /// whole seconds until the window closes (at least 1), for `Retry-After`.
    mutating func admit(at now: Int64) -> Int? {
        guard perMinute > 0 else { return nil }
        guard let start = windowStart, now < start + windowMicroseconds else {
            windowStart = now
            accepted = 1
            return nil
        }
        guard accepted < perMinute else {
            let remaining = start + windowMicroseconds - now
            return max(1, Int((remaining + 999_999) / 1_000_000))
        }
        accepted += 1
        return nil
    }
}
