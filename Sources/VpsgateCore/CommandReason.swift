/// The rules of the `Vpsgate-Reason` header: why a command (or a batch) is asked for, kept
/// on its operation, its audit rows and its events, and shown to the approvers
/// (docs/change-control.md#reasons).
///
/// Optional, unless the command's approval policy requires one (`reason-required`). Not
/// part of the idempotency fingerprint: a retry under the same key with another reason
/// replays the first answer, whose reason stays the first one.
public enum CommandReason {
    /// The header's name.
    public static let header = "Vpsgate-Reason"
    /// The most characters (Unicode scalars, as PostgreSQL's `char_length` counts) a reason may have.
    public static let maximumLength = 500

    public enum Invalid: Error, Equatable, Sendable {
        /// Nothing but white space.
        case empty
        case tooLong
        /// A control character (a line break, a tab, NUL, ESC…): a reason is one line of text.
        case controlCharacter
    }

    /// The reason from the header, trimmed of surrounding white space; nil when the request
    /// has no such header.
    public static func parse(_ header: String?) -> Result<String?, Invalid> {
        guard let header else { return .success(nil) }
        let scalars = header.unicodeScalars
        let start = scalars.firstIndex { !$0.properties.isWhitespace } ?? scalars.endIndex
        let end = scalars.lastIndex { !$0.properties.isWhitespace }.map { scalars.index(after: $0) } ?? scalars.endIndex
        guard start < end else { return .failure(.empty) }
        let trimmed = scalars[start..<end]
        if trimmed.contains(where: { $0.properties.generalCategory == .control || $0 == "\u{2028}" || $0 == "\u{2029}" }) {
            return .failure(.controlCharacter)
        }
        guard trimmed.count <= maximumLength else { return .failure(.tooLong) }
        return .success(String(Substring(trimmed)))
    }

    /// What the validation problem says about the header.
    public static func message(_ invalid: Invalid) -> String {
        switch invalid {
        case .empty: "A reason has 1 to \(maximumLength) characters; this one is empty."
        case .tooLong: "A reason has at most \(maximumLength) characters."
        case .controlCharacter: "A reason is one line of text: no control characters."
        }
    }

    /// The 422 answered when the command's policy requires a reason and the request had none.
    public static func requiredProblem(instance: String) -> Problem {
        Problem(.reasonRequired, status: 422, title: "Reason required",
                detail: "The approval policy of this command requires a reason: send it in the \(header) header.", instance: instance)
    }
}
