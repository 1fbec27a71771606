/// A statement's name for its span, from its SQL text: the function a select calls (in its
/// list or its FROM), else the verb, a space and the table (a select from `operations`, an
/// update of `api_tokens`), else the verb alone (`BEGIN`).
///
/// Only keywords and identifiers are kept, never a literal: vpsgate binds every value as a
/// parameter, and a name made of identifiers could not carry one even if it did not.
public enum SQLStatementName {
    /// Calls that read as functions but are SQL's own: they name no statement.
    static let builtins: Set<String> = [
        "count", "coalesce", "now", "exists", "extract", "max", "min", "sum", "greatest", "least", "clock_timestamp",
        "array_agg", "json_agg", "jsonb_agg", "to_jsonb", "to_json", "row_to_json", "json_build_object", "jsonb_build_object",
        "array_to_string", "unnest", "generate_series", "lower", "upper", "nullif", "cast", "not", "case", "distinct",
    ]

    public static func of(_ sql: String) -> String {
        let tokens = tokenize(sql)
        guard let verb = tokens.first?.word else { return "statement" }
        let upperVerb = verb.uppercased()
        func identifier(after index: Int) -> (name: String, call: Bool)? {
            guard index + 1 < tokens.count, let word = tokens[index + 1].word else { return nil }
            return (word, index + 2 < tokens.count && tokens[index + 2].symbol == "(")
        }
        switch verb {
        case "select":
            if let first = identifier(after: 0), first.call, !builtins.contains(first.name) { return first.name }
            var depth = 0
            for (index, token) in tokens.enumerated() {
                if token.symbol == "(" { depth += 1 }
                if token.symbol == ")" { depth -= 1 }
                if depth == 0, token.word == "from", let table = identifier(after: index) {
                    if table.call { return builtins.contains(table.name) ? "SELECT" : table.name }
                    return "SELECT \(table.name)"
                }
            }
            return "SELECT"
        case "insert":
            if let table = identifier(after: 1), tokens[1].word == "into" { return "INSERT \(table.name)" }
        case "update":
            if let table = identifier(after: 0) { return "UPDATE \(table.name)" }
        case "delete":
            if tokens.count > 1, tokens[1].word == "from", let table = identifier(after: 1) { return "DELETE \(table.name)" }
        default: break
        }
        return upperVerb
    }

    private struct Token {
        var word: String?
        var symbol: Character?
    }

    /// Identifiers and keywords (lower-cased, `schema.name` kept whole) and symbols; string
    /// literals, numbers, parameters and comments dropped.
    private static func tokenize(_ sql: String) -> [Token] {
        var tokens: [Token] = []
        var characters = Array(sql.unicodeScalars)[...]
        while let character = characters.first {
            if character == "'" {
                characters = characters.dropFirst()
                while let next = characters.first {
                    characters = characters.dropFirst()
                    if next == "'" { if characters.first == "'" { characters = characters.dropFirst() } else { break } }
                }
            } else if character == "-", characters.dropFirst().first == "-" {
                characters = characters.drop(while: { $0 != "\n" })
            } else if character.properties.isAlphabetic || character == "_" {
                let word = characters.prefix(while: { $0.properties.isAlphabetic || $0 == "_" || $0 == "." || ("0"..."9").contains($0) })
                characters = characters.dropFirst(word.count)
                tokens.append(Token(word: String(String.UnicodeScalarView(word)).lowercased()))
            } else if character == "(" || character == ")" {
                tokens.append(Token(symbol: Character(character)))
                characters = characters.dropFirst()
            } else if character == "$" || ("0"..."9").contains(character) {
                characters = characters.dropFirst().drop(while: { ("0"..."9").contains($0) || $0 == "." })
            } else {
                // Any other symbol ends what came before: `a, (b)` is no call of `a`.
                if !character.properties.isWhitespace { tokens.append(Token(symbol: Character(character))) }
                characters = characters.dropFirst()
            }
        }
        return tokens
    }
}
