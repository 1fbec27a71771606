/// Finds the Hostinger action an operation caused, when its answer was lost (docs/design.md#operations-follow-hostinger).
///
/// Hostinger has no idempotency key, so the only evidence is its action list: an action of
/// the expected name, created on that VPS no earlier than the operation (minus clock skew)
/// and no later than its dispatch could have reached Hostinger, that no other operation
/// has adopted. vpsgate holds one operation per VPS at a time, so within that window the
/// match is unambiguous unless someone acted on the VPS outside vpsgate (that is drift).
public enum ActionMatcher {
    /// The action names Hostinger gives each command's request (seen: `ct_restart`,
    /// `monarx_install`, `recreate`; the rest follow the same pattern, as hostinger-sim does),
    /// as each catalogue entry declares them (`Command.actions`).
    public static let expectedNames: [String: Set<String>] = Dictionary(
        uniqueKeysWithValues: Command.catalogue.filter { !$0.actions.isEmpty }.map { ($0.name, $0.actions) })

    /// The earliest-created matching action, or nil.
    /// - Parameters:
    ///   - createdAt: when the operation was recorded, microseconds since the epoch.
    ///   - latestDispatch: the last moment its request could have reached Hostinger.
    ///   - skewSeconds: tolerance for the difference between the two clocks (Hostinger
    ///     writes whole seconds).
    public static func match(command: String, createdAt: Int64, latestDispatch: Int64, actions: [HostingerAction],
                             adopted: Set<Int>, skewSeconds: Int64 = 2) -> HostingerAction? {
        guard let names = expectedNames[command] else { return nil }
        return candidates(createdAt: createdAt, latestDispatch: latestDispatch, actions: actions, adopted: adopted, skewSeconds: skewSeconds)
            .first { names.contains($0.name) }
    }

    /// The actions no operation has adopted that were created within the window (or whose
    /// creation time Hostinger did not give, which cannot be ruled out), oldest first.
    public static func candidates(createdAt: Int64, latestDispatch: Int64, actions: [HostingerAction], adopted: Set<Int>,
                                  skewSeconds: Int64 = 2) -> [HostingerAction] {
        let earliest = createdAt / 1_000_000 - skewSeconds
        let latest = latestDispatch / 1_000_000 + skewSeconds
        return actions
            .filter { !adopted.contains($0.id) && ($0.createdAtSeconds.map { (earliest...latest).contains($0) } ?? true) }
            .sorted { ($0.createdAtSeconds ?? 0, $0.id) < ($1.createdAtSeconds ?? 0, $1.id) }
    }

    /// What the reconciler concludes about an operation whose answer was lost, without
    /// other operations' stray attempts (see `verdict`).
    public static func decide(command: String, createdAt: Int64, latestDispatch: Int64, actions: [HostingerAction],
                              adopted: Set<Int>, windowClosed: Bool, listCoversWindow: Bool,
                              skewSeconds: Int64 = 2) -> LostAnswerDecision {
        verdict(command: command, createdAt: createdAt, latestDispatch: latestDispatch, actions: actions, adopted: adopted,
                strays: [], windowClosed: windowClosed, listCoversWindow: listCoversWindow, skewSeconds: skewSeconds).decision
    }

    /// What the reconciler concludes about an operation whose answer was lost.
    ///
    /// An action's name is evidence *for* a match, never the only evidence *against* one:
    /// a mutation is declared not applied only when Hostinger's list of the whole window
    /// holds no action that could be it. Names vpsgate does not expect leave it `unknown`,
    /// with the candidates named, for a person to decide.
    ///
    /// One kind of evidence does rule a candidate out: another operation of the VPS sent a
    /// repeat-safe request whose answer may hide that Hostinger performed it (`strays`,
    /// each such attempt of theirs), the candidate's name is one that request produces, it
    /// was created within that attempt's window (with the same clock skew), and no name of
    /// this command could be it. Such a candidate is tied to that attempt (at most one
    /// action per attempt, and never one another attempt already explains) and no longer
    /// stands against a not-applied verdict. A candidate this command could have produced
    /// by name is never tied elsewhere: it is adopted as before, so an operation is never
    /// declared not applied while an action in its window could be its own by name.
    /// - Parameters:
    ///   - strays: other operations' stray attempts on the same VPS (never this one's).
    ///   - windowClosed: the settling window has passed (no late action can still appear).
    ///   - listCoversWindow: the pages read reach back before the operation was created.
    public static func verdict(command: String, createdAt: Int64, latestDispatch: Int64, actions: [HostingerAction],
                               adopted: Set<Int>, strays: [StrayWindow], windowClosed: Bool, listCoversWindow: Bool,
                               skewSeconds: Int64 = 2) -> LostAnswerVerdict {
        let inWindow = candidates(createdAt: createdAt, latestDispatch: latestDispatch, actions: actions, adopted: adopted,
                                  skewSeconds: skewSeconds)
        let names = expectedNames[command] ?? []
        let (explained, attributions) = attribute(inWindow.filter { !names.contains($0.name) }, to: strays, skewSeconds: skewSeconds)
        if let action = inWindow.first(where: { names.contains($0.name) }) {
            return LostAnswerVerdict(.adopt(action), attributions: attributions)
        }
        guard windowClosed else { return LostAnswerVerdict(.wait) }
        let unexplained = inWindow.filter { !explained.contains($0.id) }
        guard unexplained.isEmpty, listCoversWindow else {
            return LostAnswerVerdict(.ambiguous(candidates: unexplained), attributions: attributions)
        }
        return LostAnswerVerdict(.notApplied, attributions: attributions)
    }

    /// Which of `actions` (oldest first) stray attempts explain: those already tied to one,
    /// and those a free attempt covers by name and time, each attempt taking at most one
    /// (the covering attempt that ends first: the others stay free for later actions).
    /// Returns every explained action's id and the new ties.
    static func attribute(_ actions: [HostingerAction], to strays: [StrayWindow], skewSeconds: Int64)
        -> (explained: Set<Int>, new: [StrayAttribution])
    {
        let tied = Set(strays.compactMap(\.actionID))
        var free = strays.filter { $0.actionID == nil }
            .sorted { ($0.attempt.endedAt, $0.operationID, $0.attempt.number) < ($1.attempt.endedAt, $1.operationID, $1.attempt.number) }
        var explained = Set<Int>()
        var new: [StrayAttribution] = []
        for action in actions {
            if tied.contains(action.id) {
                explained.insert(action.id)
                continue
            }
            guard let seconds = action.createdAtSeconds,
                let index = free.firstIndex(where: { $0.names.contains(action.name) && $0.covers(seconds, skewSeconds: skewSeconds) })
            else { continue }
            let window = free.remove(at: index)
            explained.insert(action.id)
            new.append(StrayAttribution(actionID: action.id, operationID: window.operationID, attempt: window.attempt.number))
        }
        return (explained, new)
    }
}

/// The reconciler's verdict on a lost answer (see `ActionMatcher.decide`).
public enum LostAnswerDecision: Sendable, Equatable {
    /// This action is the one the command caused: adopt it and follow it.
    case adopt(HostingerAction)
    /// The window is still open: look again later.
    case wait
    /// It may have happened: actions in the window vpsgate cannot tie to it by name (nor to
    /// another operation's stray attempt: those are not listed), or a list that does not
    /// reach back far enough. It stays `unknown`.
    case ambiguous(candidates: [HostingerAction])
    /// Hostinger's list of the whole window holds no action that could be it.
    case notApplied
}
