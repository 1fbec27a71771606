import Synchronization

/// Prometheus counters and histograms for one instance, served at `/metrics`.
///
/// Recording never contends: each thread that records (a FastCGI worker, a background loop)
/// holds a `Shard` of its own, whose lock only the scrape also takes; the scrape adds the
/// shards up.
public final class Metrics: Sendable {
    static let buckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    fileprivate struct Histogram {
        var counts = [Int](repeating: 0, count: Metrics.buckets.count)
        var sum = 0.0
        var count = 0
    }

    fileprivate struct State {
        var counters: [String: [String: Double]] = [:]
        var histograms: [String: [String: Histogram]] = [:]
    }

    /// One thread's counters and histograms.
    public final class Shard: Sendable {
        fileprivate let state = Mutex(State())

        public func increment(_ family: Family, _ labels: [(String, String)] = [], by amount: Double = 1) {
            assert(family.kind == .counter, "\(family.name) is not a counter")
            let key = Metrics.labelText(labels)
            state.withLock { $0.counters[family.name, default: [:]][key, default: 0] += amount }
        }

        public func observe(_ family: Family, _ labels: [(String, String)], seconds: Double) {
            assert(family.kind == .histogram, "\(family.name) is not a histogram")
            let key = Metrics.labelText(labels)
            state.withLock { state in
                var histogram = state.histograms[family.name]?[key] ?? Histogram()
                for (index, bound) in Metrics.buckets.enumerated() where seconds <= bound { histogram.counts[index] += 1 }
                histogram.sum += seconds
                histogram.count += 1
                state.histograms[family.name, default: [:]][key] = histogram
            }
        }
    }

    private let shards = Mutex<[Shard]>([])
    /// For the rare recorder without a shard of its own.
    private let common = Shard()

    /// A counter or histogram family, declared once below and used by reference: a name
    /// that is not declared cannot be recorded.
    public struct Family: Sendable, Hashable {
        public enum Kind: String, Sendable { case counter, histogram }
        public let name: String
        public let kind: Kind
        public let help: String

        init(_ name: String, _ kind: Kind, _ help: String) {
            self.name = name
            self.kind = kind
            self.help = help
        }
    }

    public static let requests = Family("vpsgate_requests_total", .counter, "HTTP requests by route and status.")
    public static let requestDuration = Family("vpsgate_request_duration_seconds", .histogram, "Whole request time in vpsgate, by route.")
    public static let commandOutcomes = Family("vpsgate_command_outcomes_total", .counter, "Command requests by command and audit outcome.")
    public static let replays = Family("vpsgate_idempotent_replays_total", .counter, "Answers replayed from a stored idempotency key.")
    public static let busyRejections = Family("vpsgate_busy_rejections_total", .counter, "Commands refused because their VPS was busy.")
    public static let hostingerCalls = Family("vpsgate_hostinger_calls_total", .counter, "Hostinger attempts by operation and result.")
    public static let hostingerRetries = Family("vpsgate_hostinger_retries_total", .counter, "Hostinger attempts that were retries, by operation.")
    public static let hostingerCallDuration = Family("vpsgate_hostinger_call_duration_seconds", .histogram,
                                                     "Hostinger attempt time, by operation.")
    public static let databaseDuration = Family("vpsgate_database_duration_seconds", .histogram,
                                                "Time of the pipeline's database round trips, by statement.")
    public static let outcomeWritesDeferred = Family("vpsgate_outcome_writes_deferred_total", .counter,
                                                     "Command outcomes whose write waited for the database to come back.")

    public static let webhookDeliveries = Family("vpsgate_webhook_deliveries_total", .counter,
                                                 "Webhook delivery attempts by outcome (delivered, retry, failed, gone, dropped, refused).")
    public static let webhookDeliveryLag = Family("vpsgate_webhook_delivery_lag_seconds", .histogram,
                                                  "Time from an event to its successful delivery.")

    public static let budgetWaitSeconds = Family("vpsgate_budget_wait_seconds_total", .counter,
                                                 "Time calls to Hostinger waited for a slot of the shared budget.")
    public static let budgetRefusals = Family("vpsgate_budget_refusals_total", .counter,
                                              "Calls to Hostinger not sent: no slot of the shared budget in time, by priority.")
    public static let hostinger429s = Family("vpsgate_hostinger_429_total", .counter, "Hostinger answers 429 (each pauses every instance).")
    public static let eventFeedRereads = Family("vpsgate_event_feed_rereads_total", .counter,
                                                "Reads of the event feed by waiting requests after their first, by whether events were held back.")
    public static let readCacheHits = Family("vpsgate_read_cache_hits_total", .counter,
                                             "Reads answered from a recent or coalesced Hostinger answer instead of a call.")

    public static let traceSpansExported = Family("vpsgate_trace_spans_exported_total", .counter,
                                                  "Spans sent to the OTLP collector, by result (exported, failed).")
    public static let traceSpansDropped = Family("vpsgate_trace_spans_dropped_total", .counter,
                                                 "Spans dropped because the export queue was full.")

    /// Every family, in output order.
    static let families: [Family] = [
        requests, requestDuration, commandOutcomes, replays, busyRejections, hostingerCalls, hostingerRetries,
        hostingerCallDuration, databaseDuration, outcomeWritesDeferred, webhookDeliveries, webhookDeliveryLag,
        budgetWaitSeconds, budgetRefusals, hostinger429s, readCacheHits, eventFeedRereads, traceSpansExported, traceSpansDropped,
    ]

    public init() {
        shards.withLock { $0.append(common) }
    }

    /// A shard for the calling thread to record into.
    public func shard() -> Shard {
        let shard = Shard()
        shards.withLock { $0.append(shard) }
        return shard
    }

    public func increment(_ family: Family, _ labels: [(String, String)] = [], by amount: Double = 1) {
        common.increment(family, labels, by: amount)
    }

    public func observe(_ family: Family, _ labels: [(String, String)], seconds: Double) {
        common.observe(family, labels, seconds: seconds)
    }

    /// Every shard added up.
    private func snapshot() -> State {
        var total = State()
        for shard in shards.withLock({ $0 }) {
            let state = shard.state.withLock { $0 }
            for (name, series) in state.counters {
                for (labels, value) in series { total.counters[name, default: [:]][labels, default: 0] += value }
            }
            for (name, series) in state.histograms {
                for (labels, histogram) in series {
                    var sum = total.histograms[name]?[labels] ?? Histogram()
                    for index in sum.counts.indices { sum.counts[index] += histogram.counts[index] }
                    sum.sum += histogram.sum
                    sum.count += histogram.count
                    total.histograms[name, default: [:]][labels] = sum
                }
            }
        }
        return total
    }

    /// The Prometheus text exposition, with `gauges` (computed at scrape time) appended.
    public func render(gauges: [(name: String, help: String, labels: [(String, String)], value: Double)]) -> String {
        let snapshot = snapshot()
        var out = ""
        for family in Self.families {
            out += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) \(family.kind.rawValue)\n"
            if family.kind == .counter {
                for (labels, value) in (snapshot.counters[family.name] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    out += "\(family.name)\(labels.isEmpty ? "" : "{\(labels)}") \(Self.number(value))\n"
                }
            } else {
                for (labels, histogram) in (snapshot.histograms[family.name] ?? [:]).sorted(by: { $0.key < $1.key }) {
                    let prefix = labels.isEmpty ? "" : labels + ","
                    for (index, bound) in Self.buckets.enumerated() {
                        out += "\(family.name)_bucket{\(prefix)le=\"\(Self.number(bound))\"} \(histogram.counts[index])\n"
                    }
                    out += "\(family.name)_bucket{\(prefix)le=\"+Inf\"} \(histogram.count)\n"
                    out += "\(family.name)_sum\(labels.isEmpty ? "" : "{\(labels)}") \(Self.number(histogram.sum))\n"
                    out += "\(family.name)_count\(labels.isEmpty ? "" : "{\(labels)}") \(histogram.count)\n"
                }
            }
        }
        var described = Set<String>()
        for gauge in gauges {
            if described.insert(gauge.name).inserted {
                out += "# HELP \(gauge.name) \(gauge.help)\n# TYPE \(gauge.name) gauge\n"
            }
            let labels = Self.labelText(gauge.labels)
            out += "\(gauge.name)\(labels.isEmpty ? "" : "{\(labels)}") \(Self.number(gauge.value))\n"
        }
        return out
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        var text = ""
        for (index, (name, value)) in labels.enumerated() {
            if index > 0 { text += "," }
            text += name
            text += "=\""
            // Recorded on every request: escape only a value that needs it, byte by byte.
            if value.utf8.contains(where: { $0 == 0x5C || $0 == 0x22 || $0 == 0x0A }) {
                for character in value.unicodeScalars {
                    switch character {
                    case "\\": text += "\\\\"
                    case "\"": text += "\\\""
                    case "\n": text += "\\n"
                    default: text.unicodeScalars.append(character)
                    }
                }
            } else {
                text += value
            }
            text += "\""
        }
        return text
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
