/// What an audit row says happened (docs/design.md#audit). Every outcome vpsgate writes is one of
/// these; the text is what operators query.
public enum AuditOutcome: String, Sendable, CaseIterable {
    // A request's final row, when it ends before Hostinger.
    case invalid, denied, unavailable, validated, replayed, conflict, busy
    case notFound = "not_found"
    // A dispatched command's final row.
    case accepted, unknown
    case upstreamError = "upstream_error"
    case upstreamRejected = "upstream_rejected"
    // The row written before Hostinger is called.
    case received
    // Completion rows (a read that saw the action end) and the reconciler's rows.
    case succeeded, failed, adopted, ambiguous, stale
    case notApplied = "not_applied"
    case actionUnknown = "action_unknown"
    case vpsNotFound = "vps_not_found"
    // Change control (docs/design.md#change-control).
    case frozen, approved, withdrawn, expired
    case awaitingApproval = "awaiting_approval"
    case approvalRecorded = "approval_recorded"
    case selfApproval = "self_approval"
    case notAwaiting = "not_awaiting"
    /// Dispatch refused an approved operation without sending it (a row that does not
    /// verify under the secret key, a revoked grant, a stopped batch).
    case refused
}
