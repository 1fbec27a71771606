/// Durations written as a number and a unit: `90s`, `15m`, `12h`, `30d`, `2w`.
public enum DurationText {
    /// Seconds, or nil when the text is not such a duration (or not positive).
    public static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let number = Int(text.dropLast()), number > 0 else { return nil }
        let scale: Int
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3600
        case "d": scale = 86_400
        case "w": scale = 604_800
        default: return nil
        }
        let (product, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow || product > 100 * 365 * 86_400 ? nil : product
    }
}
