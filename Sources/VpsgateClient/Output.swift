import VpsgateCore

/// How vpsgatectl prints an answer, as gh, kubectl and doctl do: `-o table` (a header row
/// and aligned columns; the default for a list when standard output is a terminal),
/// `-o wide` (more columns), `-o json` (indented on a terminal, compact otherwise) and
/// `-o jsonl` (one object a line). `--columns a,b.c` chooses the columns (dotted paths into
/// nested fields, `ipv4.0.address` into arrays), `--no-header` drops the header row.
///
/// Everything in a table cell comes from the server, and so ultimately from Hostinger or
/// whoever named a VPS: control characters (ESC above all, which would let a hostname
/// rewrite the terminal) and line breaks are escaped, never printed.
struct OutputFormat: Equatable {
    enum Kind: String, CaseIterable { case auto, json, jsonl, table, wide }
    var kind: Kind = .auto
    /// `--columns`, split on commas; nil: the read's default columns.
    var columns: [String]?
    /// `--no-header` clears it.
    var header = true
    /// Whether standard output is a terminal (decides `auto` and how `json` is laid out).
    var terminal = false

    /// The names `-o` takes, for help and errors.
    static let names = Kind.allCases.filter { $0 != .auto }.map(\.rawValue).joined(separator: "|")

    /// `-o <name>`; nil (usage error) for a name it does not know.
    init?(output: String, columns: String? = nil, header: Bool = true, terminal: Bool) {
        guard let kind = Kind(rawValue: output) else { return nil }
        self.kind = kind
        self.columns = columns.map { $0.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty } }
        self.header = header
        self.terminal = terminal
    }

    init() {}

    /// The answer's text, without a final newline; a `UsageError` for a column no row has.
    func render(_ value: JSONValue) throws(UsageError) -> String {
        let rows = Self.rows(of: value)
        switch kind {
        case .json: return terminal ? Self.indented(value) : value.text()
        case .jsonl: return (rows ?? [value]).map { $0.text() }.joined(separator: "\n")
        case .auto:
            if terminal, let rows { return try table(rows, wide: false) }
            return terminal ? Self.indented(value) : value.text()
        case .table, .wide: return try table(rows ?? [value], wide: kind == .wide)
        }
    }

    /// A list's items: a page's `data`, or an array; nil for one resource.
    static func rows(of value: JSONValue) -> [JSONValue]? {
        if let items = value.arrayValue { return items }
        if let items = value["data"]?.arrayValue, value["operation"] == nil { return items }
        return nil
    }

    func table(_ rows: [JSONValue], wide: Bool) throws(UsageError) -> String {
        let chosen = columns ?? ColumnSet.columns(for: rows, wide: wide)
        if columns != nil, !rows.isEmpty {
            let unknown = chosen.filter { column in !rows.contains { $0.at(column) != nil } }
            guard unknown.isEmpty else {
                let known = ColumnSet.paths(of: rows).joined(separator: ", ")
                throw UsageError("unknown column\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")): the rows have \(known)")
            }
        }
        var lines: [[String]] = header ? [chosen.map { Self.escaped($0).uppercased() }] : []
        lines += rows.map { row in chosen.map { Self.cell(row.at($0)) } }
        var widths = [Int](repeating: 0, count: chosen.count)
        for line in lines { for (index, cell) in line.enumerated() { widths[index] = max(widths[index], cell.count) } }
        return lines.map { line in
            line.enumerated().map { index, cell in
                index == line.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "   ")
        }.joined(separator: "\n")
    }

    /// One cell: a scalar as text, null and absent as `-`, an object or array as compact JSON.
    static func cell(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: "-"
        case .string(let text)?: escaped(text)
        case .number(let text)?: text
        case .bool(let flag)?: flag ? "true" : "false"
        case let other?: escaped(other.text())
        }
    }

    /// `text` safe for one line of a terminal: C0 and C1 controls, DEL, line and paragraph
    /// separators and bidirectional overrides are written as escapes (`\n`, `\x1b`,
    /// `\u{202e}`), so no server value can move the cursor, recolour or reorder the table.
    static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: result += "\\n"
            case 0x0D: result += "\\r"
            case 0x09: result += "\\t"
            case 0x00..<0x20, 0x7F, 0x80..<0xA0: result += "\\x" + String(scalar.value, radix: 16).leftPadded(to: 2)
            case 0x2028, 0x2029, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069:
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// JSON indented by two spaces, members in the server's order. Strings are written by
    /// the JSON writer, which escapes every control character.
    static func indented(_ value: JSONValue, depth: Int = 0) -> String {
        let inner = String(repeating: "  ", count: depth + 1)
        let outer = String(repeating: "  ", count: depth)
        switch value {
        case .array(let items) where !items.isEmpty:
            return "[\n" + items.map { inner + indented($0, depth: depth + 1) }.joined(separator: ",\n") + "\n" + outer + "]"
        case .object(let members) where !members.isEmpty:
            return "{\n" + members.map { inner + JSONValue.string($0.key).text() + ": " + indented($0.value, depth: depth + 1) }
                .joined(separator: ",\n") + "\n" + outer + "}"
        default:
            return value.text()
        }
    }
}

/// The default columns of each kind of row vpsgate answers with, told apart by the fields
/// each has (so a read added to the catalogue gets its kind's columns, or the fallback:
/// its top-level scalar fields).
enum ColumnSet {
    struct Kind {
        var has: [String]
        var columns: [String]
        var wide: [String]
    }

    static let kinds: [Kind] = [
        // Approval requests are operations with a requester and approvals: before operations.
        Kind(has: ["requester", "approvals"], columns: ["id", "command", "state", "vps_id", "requester", "approvals.given", "approvals.required"],
             wide: ["approvals.expires_at", "created_at"]),
        Kind(has: ["command", "requested_by"], columns: ["id", "command", "state", "vps_id", "requested_by", "created_at"],
             wide: ["resource.type", "resource.id", "hostinger_action.state", "completed_at", "correlation_id"]),
        Kind(has: ["counts", "command"], columns: ["id", "command", "state", "counts.total", "counts.succeeded", "counts.failed", "created_at"],
             wide: ["requested_by", "max_in_flight", "max_failures"]),
        Kind(has: ["hostname", "plan"], columns: ["id", "hostname", "state", "plan", "ipv4.0.address"],
             wide: ["ipv6.0.address", "data_center_id", "cpus", "memory", "disk", "template.name", "created_at"]),
        Kind(has: ["is_synced", "rules"], columns: ["id", "name", "is_synced", "created_at"], wide: ["updated_at"]),
        Kind(has: ["type", "occurred_at"], columns: ["id", "type", "occurred_at", "vps_id", "operation_id"], wide: []),
        Kind(has: ["principal", "grants"], columns: ["principal"], wide: []),
    ]

    static func columns(for rows: [JSONValue], wide: Bool) -> [String] {
        if let first = rows.first, let kind = kinds.first(where: { kind in kind.has.allSatisfy { first[$0] != nil } }) {
            return kind.columns + (wide ? kind.wide.filter { column in rows.contains { $0.at(column) != nil } } : [])
        }
        return wide ? paths(of: rows) : scalars(of: rows)
    }

    /// The top-level scalar fields of the rows, in first-seen order.
    static func scalars(of rows: [JSONValue]) -> [String] {
        var seen: [String] = []
        for row in rows {
            for (key, value) in row.objectValue ?? [] where !seen.contains(key) {
                switch value { case .object, .array: continue; default: seen.append(key) }
            }
        }
        return seen.isEmpty ? ["value"] : seen
    }

    /// Every scalar field, nested objects' as dotted paths (one level deep): the wide
    /// fallback, and what an unknown column's error lists.
    static func paths(of rows: [JSONValue]) -> [String] {
        var seen: [String] = []
        for row in rows {
            for (key, value) in row.objectValue ?? [] {
                switch value {
                case .array: continue
                case .object(let members):
                    for (inner, nested) in members where !seen.contains(key + "." + inner) {
                        switch nested { case .object, .array: continue; default: seen.append(key + "." + inner) }
                    }
                default: if !seen.contains(key) { seen.append(key) }
                }
            }
        }
        return seen.isEmpty ? ["value"] : seen
    }
}

extension JSONValue {
    /// The value at a dotted path (`approvals.given`, `ipv4.0.address`); a row that is not an
    /// object answers `value` with itself.
    func at(_ path: String) -> JSONValue? {
        if objectValue == nil, arrayValue == nil { return path == "value" ? self : nil }
        var current: JSONValue? = self
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let value = current else { return nil }
            if let items = value.arrayValue, let index = Int(part) {
                current = items.indices.contains(index) ? items[index] : nil
            } else {
                current = value[String(part)]
            }
        }
        return current
    }
}
