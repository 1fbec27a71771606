/// The rows a query returned, copied out of libpq's result in text format.
public struct PostgresRows: Sendable, Sequence {
    /// Column names in order.
    public let columns: [String]
    let values: [[String?]]
    /// Rows changed by an INSERT, UPDATE or DELETE (`PQcmdTuples`), else 0.
    public let affectedRows: Int

    init(columns: [String], values: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.values = values
        self.affectedRows = affectedRows
    }

    public var count: Int { values.count }
    public var isEmpty: Bool { values.isEmpty }
    public var first: PostgresRow? { values.first.map { PostgresRow(columns: columns, values: $0) } }

    public func makeIterator() -> AnyIterator<PostgresRow> {
        var index = 0
        return AnyIterator {
            guard index < values.count else { return nil }
            defer { index += 1 }
            return PostgresRow(columns: columns, values: values[index])
        }
    }
}

/// One row; columns are read by name with a type, and a failure names the column.
public struct PostgresRow: Sendable {
    let columns: [String]
    let values: [String?]

    /// The column's value as `type`; throws naming the column when it is NULL or does not decode.
    public func decode<T: PostgresDecodable>(_ type: T.Type, _ column: String) throws(PostgresError) -> T {
        guard let value = try decode(T?.self, column) else {
            throw PostgresError(.decoding, "column \(column) is NULL, expected \(T.self)")
        }
        return value
    }

    /// The column's value as `type`, or nil when it is NULL.
    public func decode<T: PostgresDecodable>(_ type: T?.Type, _ column: String) throws(PostgresError) -> T? {
        guard let index = columns.firstIndex(of: column) else {
            throw PostgresError(.decoding, "no column \(column) in the result (columns: \(columns.joined(separator: ", ")))")
        }
        guard let text = values[index] else { return nil }
        guard let value = T(postgresText: text) else {
            throw PostgresError(.decoding, "column \(column): cannot read \(T.self) from a value of \(text.utf8.count) bytes")
        }
        return value
    }
}

/// A Swift value that can be read from PostgreSQL's text output format.
public protocol PostgresDecodable {
    init?(postgresText: String)
}

extension String: PostgresDecodable { public init?(postgresText: String) { self = postgresText } }
extension Int: PostgresDecodable { public init?(postgresText: String) { self.init(postgresText) } }
extension Int64: PostgresDecodable { public init?(postgresText: String) { self.init(postgresText) } }
extension Double: PostgresDecodable { public init?(postgresText: String) { self.init(postgresText) } }
extension Bool: PostgresDecodable {
    public init?(postgresText: String) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}
