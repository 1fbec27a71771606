import CFastCGI
import Logging
import Platform
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A multi-threaded FastCGI server on libfcgi.
///
/// Each of N worker threads owns one heap-allocated `FCGX_Request` and one responder, and
/// calls `FCGX_Accept_r` on the shared listening socket without an accept mutex: the
/// kernel hands each connection to one thread, and a thread waiting on a kept-alive
/// connection never blocks the others.
///
/// `serve` blocks until SIGTERM or SIGINT, then stops accepting, lets in-flight requests
/// finish within the shutdown timeout, and returns.
public final class FastCGIServer: Sendable {
    /// Where to listen.
    public enum Address: Sendable, Equatable {
        /// A unix socket with these permissions (and group), set before anyone can connect.
        case unix(path: String, mode: Int, group: String?)
        /// An IPv4 address and port.
        case tcp(host: String, port: Int)
    }

    /// How the server runs.
    public struct Configuration: Sendable {
        public var address: Address
        public var workers: Int
        public var maxBodyBytes: Int
        /// Seconds in-flight requests get after the stop signal.
        public var shutdownTimeoutSeconds: Double
        public var backlog: Int32
        /// For a TCP listener, the only networks whose peers may connect (`network` under
        /// `mask`, host-order integers of the dotted quads); required there, unused for unix.
        public var allowedPeers: [(network: UInt32, mask: UInt32)]
        /// How long a connection may stay silent while it is read from or written to.
        public var readTimeoutMilliseconds: Int

        public init(address: Address, workers: Int, maxBodyBytes: Int, shutdownTimeoutSeconds: Double, backlog: Int32 = 1024,
                    allowedPeers: [(network: UInt32, mask: UInt32)] = [], readTimeoutMilliseconds: Int = 10_000) {
            self.address = address
            self.workers = workers
            self.maxBodyBytes = maxBodyBytes
            self.shutdownTimeoutSeconds = shutdownTimeoutSeconds
            self.backlog = backlog
            self.allowedPeers = allowedPeers
            self.readTimeoutMilliseconds = readTimeoutMilliseconds
        }
    }

    /// How the shutdown went.
    public struct ShutdownReport: Sendable {
        /// The signal that stopped the server.
        public var signal: Int32
        /// Requests still running when the shutdown timeout expired (0 when all finished).
        public var abandonedRequests: Int
        /// Seconds from the signal until every worker had stopped (or the timeout).
        public var drainSeconds: Double
    }

    private let configuration: Configuration
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Blocks SIGTERM and SIGINT in the calling thread and every thread it creates later, so
    /// that only `serve`'s `sigwait` receives them. Call it first thing in `main`.
    public static func blockTerminationSignals() {
        var signals = terminationSignals()
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }

    /// Opens the socket, starts the workers and serves until SIGTERM or SIGINT.
    ///
    /// `makeResponder` runs once on each worker thread; the responder it returns is used on
    /// that thread only. `onReady` runs once the socket accepts connections; `onStopping`
    /// when the stop signal arrives, before the requests in flight are awaited (to end
    /// requests that wait for something, so that they answer now).
    public func serve(
        makeResponder: @escaping @Sendable () -> any FastCGIResponder,
        onReady: () -> Void = {},
        onStopping: () -> Void = {}
    ) throws(FastCGIError) -> ShutdownReport {
        Self.blockTerminationSignals()
        Self.installWakeHandler()
        guard FCGX_Init() == 0 else { throw FastCGIError(.library, "FCGX_Init failed") }

        let socket = try ListeningSocket(address: configuration.address, backlog: configuration.backlog)
        if case .tcp = configuration.address {
            // Before the first accept: a peer outside the list never completes a connection.
            try socket.allowOnly(configuration.allowedPeers)
        }
        // Accepted TCP connections inherit the listener's deadline, so it covers what libfcgi
        // reads inside FCGX_Accept_r (the request's header and parameters) as well.
        socket.setDeadline(milliseconds: configuration.readTimeoutMilliseconds)
        let slots = (0..<configuration.workers).map { _ in WorkerSlot() }
        var threads: [OSThread] = []
        for (index, slot) in slots.enumerated() {
            let listenDescriptor = socket.descriptor
            do throws(SystemCallError) {
                threads.append(try OSThread.spawn(name: "fcgi-worker-\(index)") { [self] in
                    self.work(slot: slot, listenDescriptor: listenDescriptor, makeResponder: makeResponder)
                })
            } catch {
                throw FastCGIError(.thread, error.function, errno: error.errno)
            }
        }
        logger.info("serving FastCGI", metadata: ["address": "\(configuration.address)", "workers": "\(configuration.workers)"])
        onReady()

        var signals = Self.terminationSignals()
        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        let start = Clock.monotonicSeconds()
        logger.info("stopping: no new connections, finishing requests in flight", metadata: ["signal": "\(received)"])
        onStopping()

        let deadline = start + configuration.shutdownTimeoutSeconds
        if let code = socket.closeToNewConnections() {
            logger.warning("could not turn new connections away before draining", metadata: ["errno": "\(code)"])
        }
        awaitEmptyQueue(socket, deadline: deadline)
        stopping.store(true, ordering: .sequentiallyConsistent)
        socket.stopAccepting()
        let abandoned = drain(slots: slots, deadline: deadline)
        for (thread, slot) in zip(threads, slots) where slot.state.load(ordering: .acquiring) == WorkerSlot.exited {
            thread.join()
        }
        let report = ShutdownReport(signal: received, abandonedRequests: abandoned, drainSeconds: Clock.monotonicSeconds() - start)
        if abandoned > 0 {
            logger.error("shutdown timeout expired with requests in flight", metadata: ["abandoned": "\(abandoned)"])
        } else {
            logger.info("stopped", metadata: ["drain_seconds": "\(report.drainSeconds)"])
        }
        return report
    }

    // MARK: - Workers

    /// One worker: accept, read, respond, finish; until the server stops.
    private func work(slot: WorkerSlot, listenDescriptor: Int32, makeResponder: @Sendable () -> any FastCGIResponder) {
        slot.thread.store(UInt(pthread_self()), ordering: .releasing)
        // Heap-allocated and never moved: libfcgi keeps pointers into it between calls.
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        request.initialize(to: FCGX_Request())
        FCGX_InitRequest(request, listenDescriptor, FCGI_FAIL_ACCEPT_ON_INTR)
        var responder = makeResponder()
        defer {
            FCGX_Free(request, 1)
            request.deallocate()
            slot.state.store(WorkerSlot.exited, ordering: .releasing)
        }
        while !stopping.load(ordering: .acquiring) {
            slot.state.store(WorkerSlot.waiting, ordering: .releasing)
            let accepted = FCGX_Accept_r(request)
            slot.state.store(WorkerSlot.busy, ordering: .releasing)
            guard accepted >= 0 else {
                // EINTR is the wake-up signal (or a stray one), EAGAIN the listener's deadline
                // passing with nobody connecting; anything else while running is a transient
                // accept failure: pause briefly rather than spin.
                if !stopping.load(ordering: .acquiring) && accepted != -EINTR && accepted != -EAGAIN && accepted != -EWOULDBLOCK {
                    logger.warning("FCGX_Accept_r failed", metadata: ["code": "\(accepted)"])
                    usleep(10_000)
                }
                continue
            }
            // A unix connection does not inherit the listener's deadline: set it for the body and the answer.
            ListeningSocket.setDeadline(on: request.pointee.ipcFd, milliseconds: configuration.readTimeoutMilliseconds)
            handle(request, responder: &responder)
            FCGX_Finish_r(request)
        }
    }

    private func handle(_ request: UnsafeMutablePointer<FCGX_Request>, responder: inout any FastCGIResponder) {
        let parameters = Environment.variables(in: request.pointee.envp)
        let declaredLength = parameters["CONTENT_LENGTH"].flatMap { Int($0) } ?? 0
        var body: [UInt8] = []
        var exceeded = declaredLength > configuration.maxBodyBytes
        if !exceeded {
            (body, exceeded) = Self.readBody(request.pointee.in, limit: configuration.maxBodyBytes, expected: declaredLength)
        }
        if exceeded { body = [] }
        let response = responder.respond(
            to: FastCGIRequest(parameters: parameters, body: body, bodyExceededLimit: exceeded)
        )
        write(response, to: request.pointee.out)
        if exceeded {
            // Consume what is left so a kept-alive connection stays in step.
            var scratch = [CChar](repeating: 0, count: 16384)
            while FCGX_GetStr(&scratch, Int32(scratch.count), request.pointee.in) > 0 {}
        }
    }

    /// Reads the body up to `limit` bytes; reports whether there was more.
    private static func readBody(_ stream: UnsafeMutablePointer<FCGX_Stream>?, limit: Int, expected: Int) -> ([UInt8], Bool) {
        var body = [UInt8](repeating: 0, count: min(max(expected, 0), limit) + 1)
        var count = 0
        while true {
            if count == body.count {
                guard body.count <= limit else { return (body, true) }
                body.append(contentsOf: repeatElement(0, count: min(body.count, limit + 1 - body.count)))
            }
            let read = body.withUnsafeMutableBytes { raw in
                FCGX_GetStr(
                    raw.baseAddress!.advanced(by: count).assumingMemoryBound(to: CChar.self),
                    Int32(raw.count - count), stream
                )
            }
            if read <= 0 { break }
            count += Int(read)
            if count > limit { return (body, true) }
        }
        body.removeSubrange(count...)
        return (body, false)
    }

    private func write(_ response: FastCGIResponse, to stream: UnsafeMutablePointer<FCGX_Stream>?) {
        let head = response.headerBlock()
        head.withUnsafeBytes { raw in
            _ = FCGX_PutStr(raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count), stream)
        }
        guard !response.body.isEmpty else { return }
        response.body.withUnsafeBytes { raw in
            _ = FCGX_PutStr(raw.baseAddress!.assumingMemoryBound(to: CChar.self), Int32(raw.count), stream)
        }
    }

    // MARK: - Shutdown

    /// Lets the workers accept what is queued: waits until the listen queue is empty, and for
    /// TCP has stayed so for 100 ms (a handshake that began before new SYNs were ignored
    /// completes within a round trip), or until the deadline.
    private func awaitEmptyQueue(_ socket: borrowing ListeningSocket, deadline: Double) {
        let quiet = socket.path == nil ? 0.1 : 0
        var emptySince: Double?
        while case let now = Clock.monotonicSeconds(), now < deadline {
            if socket.hasQueuedConnection {
                emptySince = nil
            } else if now - (emptySince ?? now) >= quiet {
                return
            } else if emptySince == nil {
                emptySince = now
            }
            usleep(5_000)
        }
    }

    /// Waits for the workers to stop, waking those that wait on an idle kept-alive
    /// connection with SIGUSR2 (its handler interrupts the blocking read). Signals repeat
    /// because one can land just before a worker enters the read. Returns how many workers
    /// were still busy at the deadline.
    private func drain(slots: [WorkerSlot], deadline: Double) -> Int {
        while true {
            var busy = 0
            var running = 0
            for slot in slots {
                switch slot.state.load(ordering: .acquiring) {
                case WorkerSlot.exited: continue
                case WorkerSlot.waiting:
                    running += 1
                    let thread = slot.thread.load(ordering: .acquiring)
                    if thread != 0 { pthread_kill(pthread_t(thread), SIGUSR2) }
                default:
                    running += 1
                    busy += 1
                }
            }
            if running == 0 { return 0 }
            if Clock.monotonicSeconds() >= deadline { return busy }
            usleep(20_000)
        }
    }

    private static func terminationSignals() -> sigset_t {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        return signals
    }

    /// SIGUSR2 does nothing but interrupt a blocking system call (no SA_RESTART);
    /// SIGPIPE is ignored so a vanished peer is an error return, not death.
    private static func installWakeHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        action.sa_flags = 0
        sigemptyset(&action.sa_mask)
        sigaction(SIGUSR2, &action, nil)
        signal(SIGPIPE, SIG_IGN)
    }
}

/// What one worker is doing, read by the thread that drains at shutdown.
private final class WorkerSlot: Sendable {
    static let waiting = 0
    static let busy = 1
    static let exited = 2

    let state = Atomic<Int>(WorkerSlot.busy)
    let thread = Atomic<UInt>(0)
}
