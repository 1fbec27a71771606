import Crypto

/// Standard Webhooks signing (https://www.standardwebhooks.com/): the secret is
/// `whsec_<base64 key>`, each delivery carries `webhook-id`, `webhook-timestamp` and
/// `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
public enum WebhookSignature {
    /// A new signing key: 32 random bytes.
    public static func generateKey() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// The secret as shown to the receiver, once.
    public static func secretText(_ key: [UInt8]) -> String { "whsec_" + Base64.encode(key) }

    public static func sign(key: [UInt8], id: String, timestamp: Int, body: [UInt8]) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: key))
        hmac.update(data: Array("\(id).\(timestamp).".utf8))
        hmac.update(data: body)
        return "v1," + Base64.encode(Array(hmac.finalize()))
    }
}

/// When a failed delivery is tried again: about 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, then
/// hourly (docs/design.md#completion-push), each with ±20 % jitter so receivers that fail together do not
/// get their retries together.
public struct WebhookRetrySchedule: Sendable, Equatable {
    /// Seconds after the first, second, … failed attempt; the last repeats.
    public var delays: [Double]

    public static let standard = WebhookRetrySchedule(delays: [5, 30, 120, 600, 1800, 3600])

    public init(delays: [Double]) {
        precondition(!delays.isEmpty && delays.allSatisfy { $0 > 0 })
        self.delays = delays
    }

    /// `VPSGATE_WEBHOOK_RETRY_SCHEDULE`: durations separated by commas (`5s,30s,2m`).
    public init?(parsing text: String) {
        var delays: [Double] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = item.trimmingCharacters(in: " ")
            if let seconds = DurationText.seconds(trimmed), seconds > 0 {
                delays.append(Double(seconds))
            } else if trimmed.hasSuffix("ms"), let milliseconds = Int(trimmed.dropLast(2)), milliseconds > 0 {
                delays.append(Double(milliseconds) / 1000)
            } else {
                return nil
            }
        }
        self.init(delays: delays)
    }

    /// Seconds before the next attempt after `attempts` attempts failed, with jitter
    /// `unit` in [0, 1) (0.5: none).
    public func delay(afterAttempts attempts: Int, unit: Double) -> Double {
        let base = delays[min(max(attempts, 1), delays.count) - 1]
        return base * (0.8 + 0.4 * unit)
    }
}

/// What one delivery attempt's answer means.
public enum DeliveryOutcome: String, Sendable, CaseIterable {
    /// 2xx.
    case delivered
    /// Anything else, or no answer: tried again later (or `failed` past the give-up time).
    case retry
    /// 410 Gone: the endpoint is disabled.
    case gone
    /// The endpoint's principal may no longer read the event: not sent.
    case dropped

    public static func of(status: Int?) -> DeliveryOutcome {
        switch status {
        case (200...299)?: .delivered
        case 410?: .gone
        default: .retry
        }
    }
}

/// Standard base64 (with padding), as Standard Webhooks uses.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var n = UInt32(bytes[index]) << 16
            if count > 1 { n |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { n |= UInt32(bytes[index + 2]) }
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(count > 1 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(count > 2 ? alphabet[Int(n & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
