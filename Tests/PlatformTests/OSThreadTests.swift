import Platform
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct OSThreadTests {
    @Test func joinWaitsForTheClosureToReturn() throws {
        let done = Atomic<Bool>(false)
        let thread = try OSThread.spawn(name: "join-test") {
            usleep(20_000)
            done.store(true, ordering: .releasing)
        }
        thread.join()
        let finished = done.load(ordering: .acquiring)
        #expect(finished)
    }

    @Test func theThreadCarriesItsNameCutToWhatTheKernelKeeps() throws {
        let names = Mutex<[String]>([])
        for name in ["worker", "a-name-longer-than-fifteen-bytes"] {
            let thread = try OSThread.spawn(name: name) {
                let name = currentThreadName()
                names.withLock { $0.append(name) }
            }
            thread.join()
        }
        #expect(names.withLock { $0 } == ["worker", "a-name-longer-t"])
    }

    @Test func aDetachedThreadRuns() throws {
        let done = Atomic<Bool>(false)
        try OSThread.spawn(name: "detach-test") { done.store(true, ordering: .releasing) }.detach()
        var waited = 0
        while !done.load(ordering: .acquiring) && waited < 5000 {
            usleep(1000)
            waited += 1
        }
        let finished = done.load(ordering: .acquiring)
        #expect(finished)
    }
}

/// `/proc/thread-self/comm` without its newline.
private func currentThreadName() -> String {
    let descriptor = open("/proc/thread-self/comm", O_RDONLY)
    guard descriptor >= 0 else { return "" }
    defer { close(descriptor) }
    var buffer = [UInt8](repeating: 0, count: 64)
    let count = read(descriptor, &buffer, buffer.count)
    return String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self).trimmingSuffix("\n")
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
