/// Answers requests on one worker thread.
///
/// The server makes one responder per worker thread and calls it only from that thread,
/// so a responder may own blocking, thread-confined resources (a database connection,
/// a curl handle) without locks.
public protocol FastCGIResponder {
    /// Answers one request. Blocks as long as it needs to; the worker serves nothing else meanwhile.
    mutating func respond(to request: FastCGIRequest) -> FastCGIResponse
}
