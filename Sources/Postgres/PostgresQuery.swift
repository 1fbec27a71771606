/// SQL text with its values kept apart as bound parameters.
///
/// Interpolated values become `$1`, `$2`, … so they can never change the statement:
///
///     let query: PostgresQuery = "SELECT name FROM grants WHERE principal = \(principal)"
///
/// SQL text itself can only be written as a literal (or with `unsafeSQL:`, for text the
/// program owns, such as a migration file).
public struct PostgresQuery: Sendable, Equatable, ExpressibleByStringInterpolation {
    /// The statement, with `$n` placeholders.
    public var sql: String
    /// The parameters in placeholder order, in PostgreSQL's text format (nil is NULL).
    public var binds: [String?]
    /// Prepare once per connection and reuse; for statements on hot paths.
    public var prepared: Bool = false

    public init(unsafeSQL sql: String, binds: [String?] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        sql = value
        binds = []
    }

    public init(stringInterpolation: StringInterpolation) {
        sql = stringInterpolation.sql
        binds = stringInterpolation.binds
    }

    /// The same query, prepared once per connection.
    public func preparedOnce() -> PostgresQuery {
        var copy = self
        copy.prepared = true
        return copy
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [String?] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// A value, bound as the next parameter.
        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(value.postgresText)
            sql += "$\(binds.count)"
        }

        /// An optional value; nil is bound as NULL.
        public mutating func appendInterpolation(_ value: (some PostgresEncodable)?) {
            binds.append(value?.postgresText)
            sql += "$\(binds.count)"
        }
    }
}

/// A Swift value PostgreSQL can take as a text-format parameter.
public protocol PostgresEncodable {
    /// The value as PostgreSQL's text input format accepts it.
    var postgresText: String { get }
}

extension String: PostgresEncodable { public var postgresText: String { self } }
extension Substring: PostgresEncodable { public var postgresText: String { String(self) } }
extension Int: PostgresEncodable { public var postgresText: String { String(self) } }
extension Int64: PostgresEncodable { public var postgresText: String { String(self) } }
extension Int32: PostgresEncodable { public var postgresText: String { String(self) } }
extension Double: PostgresEncodable { public var postgresText: String { String(self) } }
extension Bool: PostgresEncodable { public var postgresText: String { self ? "t" : "f" } }
