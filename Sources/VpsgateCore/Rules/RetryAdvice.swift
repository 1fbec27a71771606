extension RetryAfter {
    /// The `Retry-After` seconds vpsgate sends for a wait of `milliseconds` (2 s when
    /// unknown, at least 1): the one formula for every such header.
    public static func seconds(milliseconds: Int?) -> Int { max((milliseconds ?? 2000) / 1000, 1) }
}
