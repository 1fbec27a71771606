#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An operating-system thread running one closure, for work that blocks in C (libfcgi,
/// libpq, libcurl) and so must stay off Swift's cooperative pool.
///
/// Unlike Foundation's `Thread`, a thread that cannot start is an error the caller sees,
/// not a closure that silently never runs. Each thread must be joined or detached, once.
public struct OSThread: Sendable {
    private let handle: pthread_t

    /// Starts `body` on a new thread with the default attributes.
    ///
    /// `name` is what `top -H`, `ps -L` and gdb show (the kernel keeps its first 15 bytes);
    /// naming is best effort. Throws when the system has no thread to give (`EAGAIN`).
    public static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemCallError) -> OSThread {
        final class Start {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        #if canImport(Darwin)
        // Darwin's pthread_t is a pointer, and its start routine's argument is not optional.
        var created: pthread_t?
        let result = pthread_create(&created, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument).takeRetainedValue()
            start.body()
            return nil
        }, start)
        guard result == 0, let handle = created else {
            Unmanaged<Start>.fromOpaque(start).release()
            throw SystemCallError("pthread_create", errno: result)
        }
        #else
        var handle = pthread_t()
        let result = pthread_create(&handle, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            OSThread.nameCurrentThread(start.name)
            start.body()
            return nil
        }, start)
        guard result == 0 else {
            Unmanaged<Start>.fromOpaque(start).release()
            throw SystemCallError("pthread_create", errno: result)
        }
        #endif
        return OSThread(handle: handle)
    }

    /// Blocks until the thread's closure has returned.
    public func join() {
        pthread_join(handle, nil)
    }

    /// Lets the system reclaim the thread when its closure returns, with no `join`.
    public func detach() {
        pthread_detach(handle)
    }

    /// Names the calling thread through procfs, as `pthread_setname_np` does for another
    /// thread; Swift's Glibc module does not declare that GNU extension.
    private static func nameCurrentThread(_ name: String) {
        let descriptor = open("/proc/thread-self/comm", O_WRONLY)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        let bytes = Array(name.utf8.prefix(15))
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}
