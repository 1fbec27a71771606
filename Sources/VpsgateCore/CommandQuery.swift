/// The query string a command accepts: `validate_only=true|false`, and for an emergency
/// during a freeze `emergency=true` with `reason=…`, each at most once.
public struct CommandQuery: Sendable, Equatable {
    /// Run every check, call nothing, answer with what would be sent (docs/design.md#commands-and-operations).
    public var validateOnly: Bool
    /// An emergency override of a freeze, with its reason (always through an approval).
    public var emergencyReason: String?

    public init(validateOnly: Bool, emergencyReason: String? = nil) {
        self.validateOnly = validateOnly
        self.emergencyReason = emergencyReason
    }

    /// Why a query was refused, in words for the client.
    public struct Invalid: Error, Sendable, Equatable {
        public var message: String
    }

    /// Parses the raw query (without `?`); any other parameter, a repeated one or another
    /// value is refused rather than ignored.
    public static func parse(_ query: String) -> Result<CommandQuery, Invalid> {
        var validateOnly: Bool?
        var emergency: Bool?
        var reason: String?
        for pair in query.split(separator: "&", omittingEmptySubsequences: false) where !(pair.isEmpty && query.isEmpty) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = parts.count == 2 ? parts[1] : nil
            switch parts.first {
            case "validate_only":
                guard validateOnly == nil else { return .failure(Invalid(message: "validate_only is given more than once.")) }
                switch value {
                case "true": validateOnly = true
                case "false": validateOnly = false
                default: return .failure(Invalid(message: "validate_only takes true or false."))
                }
            case "emergency":
                guard emergency == nil else { return .failure(Invalid(message: "emergency is given more than once.")) }
                switch value {
                case "true": emergency = true
                case "false": emergency = false
                default: return .failure(Invalid(message: "emergency takes true or false."))
                }
            case "reason":
                guard reason == nil else { return .failure(Invalid(message: "reason is given more than once.")) }
                guard let decoded = value.flatMap({ PercentDecoding.decode($0) }), (1...200).contains(decoded.count),
                    decoded.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f })
                else { return .failure(Invalid(message: "reason takes 1 to 200 printable characters, percent-encoded.")) }
                reason = decoded
            default:
                return .failure(Invalid(message: "Commands take no query parameter but validate_only, emergency and reason."))
            }
        }
        if emergency == true && reason == nil {
            return .failure(Invalid(message: "emergency=true needs a reason."))
        }
        if reason != nil && emergency != true {
            return .failure(Invalid(message: "reason goes with emergency=true."))
        }
        return .success(CommandQuery(validateOnly: validateOnly ?? false, emergencyReason: emergency == true ? reason : nil))
    }
}

/// `%XX` and `+` in a query value, decoded; nil when malformed or not UTF-8.
public enum PercentDecoding {
    public static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var utf8 = text.utf8.makeIterator()
        while let byte = utf8.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = utf8.next(), let low = utf8.next(), let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
                else { return nil }
                bytes.append(value)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
