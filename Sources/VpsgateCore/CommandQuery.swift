/// The query string a command accepts: nothing, or `validate_only=true|false` once.
public struct CommandQuery: Sendable, Equatable {
    /// Run every check, call nothing, answer with what would be sent (SPEC section 3).
    public var validateOnly: Bool

    public init(validateOnly: Bool) {
        self.validateOnly = validateOnly
    }

    /// Why a query was refused, in words for the client.
    public struct Invalid: Error, Sendable, Equatable {
        public var message: String
    }

    /// Parses the raw query (without `?`); any other parameter, a repeated one or another
    /// value is refused rather than ignored.
    public static func parse(_ query: String) -> Result<CommandQuery, Invalid> {
        var validateOnly: Bool?
        for pair in query.split(separator: "&", omittingEmptySubsequences: false) where !(pair.isEmpty && query.isEmpty) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.first == "validate_only" else {
                return .failure(Invalid(message: "Commands take no query parameter but validate_only."))
            }
            guard validateOnly == nil else { return .failure(Invalid(message: "validate_only is given more than once.")) }
            switch parts.count == 2 ? parts[1] : nil {
            case "true": validateOnly = true
            case "false": validateOnly = false
            default: return .failure(Invalid(message: "validate_only takes true or false."))
            }
        }
        return .success(CommandQuery(validateOnly: validateOnly ?? false))
    }
}
