import VpsgateCore

/// Reads that change nothing: templates, data centers, and a VM's metrics and Monarx results.
extension Context {
    func listTemplates() -> SimResponse {
        .json(200, .array(state.templates.keys.sorted().compactMap { state.templates[$0] }.map(Self.templateJSON)))
    }

    func template(_ parameters: Parameters) -> SimResponse {
        guard let template = parameters.id("templateId").flatMap({ state.templates[$0] }) else { return Simulator.routeNotFound() }
        return .json(200, Self.templateJSON(template))
    }

    func listDataCenters() -> SimResponse {
        .json(200, .array(state.dataCenters.keys.sorted().compactMap { state.dataCenters[$0] }.map(Self.dataCenterJSON)))
    }

    /// The last scan's figures; a VM without Monarx has none (422).
    func monarxMetrics(_ vm: VirtualMachine) -> SimResponse {
        guard vm.monarxInstalled else { return Self.refusal("monarx", "Monarx is not installed on this virtual machine.") }
        let scanned = Int(Self.fnv1a("monarx/\(vm.id)") % 100_000) + 90_000
        return .json(200, .object([
            ("records", .number("0")), ("malicious", .number("0")), ("compromised", .number("0")),
            ("scanned_files", Self.number(scanned)), ("scan_started_at", Self.time(now - 3_600_000_000)),
            ("scan_ended_at", Self.time(now - 3_000_000_000)),
        ]))
    }

    // MARK: - Metrics

    /// At most a month of hourly points, the newest kept.
    static let maximumMetricPoints = 744

    /// Hourly figures between `date_from` and `date_to` (both required), none in the future;
    /// every series is null for a VM never set up.
    func metrics(_ vm: VirtualMachine) -> SimResponse {
        var errors: [(String, [String])] = []
        var bounds: [Int64] = []
        for field in ["date_from", "date_to"] {
            let label = field.replacing("_", with: " ")
            guard let text = queryValue(field), !text.isEmpty else {
                errors.append((field, ["The \(label) field is required."]))
                continue
            }
            guard let time = Self.parseDateTime(text) else {
                errors.append((field, ["The \(label) field must be a valid date."]))
                continue
            }
            bounds.append(time)
        }
        if errors.isEmpty, bounds[1] <= bounds[0] { errors.append(("date_to", ["The date to field must be a date after date from."])) }
        guard errors.isEmpty else { return Self.validationError(errors) }
        let hour: Int64 = 3_600_000_000
        let first = max((bounds[0] + hour - 1) / hour, min(bounds[1], now) / hour - Int64(Self.maximumMetricPoints) + 1)
        let last = min(bounds[1], now) / hour
        let hours = first <= last ? Array(first...last) : []
        let names = ["cpu_usage", "ram_usage", "disk_space", "outgoing_traffic", "incoming_traffic", "uptime"]
        guard vm.templateID != nil else { return .json(200, .object(names.map { ($0, .null) })) }
        return .json(200, .object(names.map { name in (name, series(name, hours: hours, vm: vm)) }))
    }

    /// One metric: its unit, and a made-up but steady figure per hour.
    private func series(_ name: String, hours: [Int64], vm: VirtualMachine) -> JSONValue {
        let unit = switch name {
        case "cpu_usage": "%"
        case "uptime": "milliseconds"
        default: "bytes"
        }
        let usage: [(key: String, value: JSONValue)] = hours.map { hour in
            let seed = Int(Self.fnv1a("\(vm.id)/\(name)/\(hour)") % 1000)
            let value: JSONValue = switch name {
            case "cpu_usage": .number("\(seed / 100).\(seed % 100 < 10 ? "0" : "")\(seed % 100)")
            case "ram_usage": Self.number(vm.plan.memory * 1_048_576 / 1000 * (100 + seed / 4))
            case "disk_space": Self.number(vm.plan.disk * 1_048_576 / 1000 * (150 + seed / 20))
            case "uptime": Self.number(Int(max(0, hour * 3_600_000 - vm.createdAt / 1000)))
            default: Self.number(500_000 + seed * 9_000)
            }
            return (String(hour * 3600), value)
        }
        return .object([("unit", .string(unit)), ("usage", .object(usage))])
    }

    /// RFC 3339 date-time (`2025-05-01T00:00:00Z`, fractions and offsets allowed) in
    /// microseconds since the epoch; nil for anything else.
    static func parseDateTime(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        func digits(_ start: Int, _ count: Int) -> Int64? {
            guard start + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[start..<start + count] {
                guard (48...57).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        func byte(_ index: Int, is expected: Character) -> Bool { index < bytes.count && bytes[index] == expected.asciiValue }
        guard let year = digits(0, 4), byte(4, is: "-"), let month = digits(5, 2), byte(7, is: "-"), let day = digits(8, 2),
              byte(10, is: "T") || byte(10, is: "t") || byte(10, is: " "),
              let hour = digits(11, 2), byte(13, is: ":"), let minute = digits(14, 2), byte(16, is: ":"), let second = digits(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var fraction: Int64 = 0
        if byte(index, is: ".") {
            index += 1
            var scale: Int64 = 100_000
            while index < bytes.count, (48...57).contains(bytes[index]) {
                fraction += Int64(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offset: Int64 = 0
        if byte(index, is: "Z") || byte(index, is: "z") {
            index += 1
        } else if byte(index, is: "+") || byte(index, is: "-"), let hours = digits(index + 1, 2), byte(index + 3, is: ":"),
                  let minutes = digits(index + 4, 2) {
            offset = (hours * 60 + minutes) * 60 * (byte(index, is: "-") ? -1 : 1)
            index += 6
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        let seconds = daysSinceEpoch(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return seconds * 1_000_000 + fraction
    }

    /// Howard Hinnant's days-from-civil (proleptic Gregorian calendar).
    private static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
