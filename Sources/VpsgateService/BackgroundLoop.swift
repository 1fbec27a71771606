import Platform
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A loop on a thread of its own, stopped on request: the reconciler's and the housekeeper's.
///
/// `body` runs once per pass and returns how long to pause before the next one; it is
/// given the stop flag so that a long pass can end early. `stop` waits (bounded) for the
/// pass under way to finish.
final class BackgroundLoop: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    /// Starts the loop. `setUp` runs on the new thread first (to open what the loop owns).
    ///
    /// Ends the process when the system has no thread to give: this runs at start-up, and a
    /// vpsgate without its reconciler or housekeeper must not look healthy.
    func start<State>(setUp: @escaping @Sendable () -> State,
                      pass: @escaping @Sendable (inout State, borrowing Atomic<Bool>) -> Int) {
        do throws(SystemCallError) {
            try OSThread.spawn(name: "background-loop") { [self] in
                defer { finished.store(true, ordering: .releasing) }
                var state = setUp()
                while !stopping.load(ordering: .acquiring) {
                    var pause = pass(&state, stopping)
                    while pause > 0 && !stopping.load(ordering: .acquiring) {
                        let step = min(pause, 50)
                        usleep(useconds_t(step) * 1000)
                        pause -= step
                    }
                }
            }.detach()
        } catch {
            fatalError("cannot start a background loop: \(error)")
        }
    }

    /// Asks the loop to stop and waits up to `timeoutMilliseconds` for its pass to end.
    func stop(timeoutMilliseconds: Int) {
        stopping.store(true, ordering: .releasing)
        var waited = 0
        while !finished.load(ordering: .acquiring) && waited < timeoutMilliseconds {
            usleep(20_000)
            waited += 20
        }
    }
}
