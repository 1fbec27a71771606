#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable whose timed waits run on the monotonic clock (a wall
/// clock step can neither cut a wait short nor stretch it), for threads that block until
/// another thread says something changed.
public final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        #if canImport(Darwin)
        // Darwin has no pthread_condattr_setclock: `wait` waits a relative time instead.
        pthread_cond_init(condition, nil)
        #else
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        #endif
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` holding the mutex.
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes every waiter; call with the mutex held (inside `withLock`).
    public func broadcast() {
        pthread_cond_broadcast(condition)
    }

    /// Waits for a broadcast or until `deadline` (`MonotonicClock.milliseconds()`); call with
    /// the mutex held. Returns false when the deadline passed. May wake spuriously: callers
    /// check their own condition in a loop.
    public func wait(untilMilliseconds deadline: Int) -> Bool {
        #if canImport(Darwin)
        let left = max(0, deadline - MonotonicClock.milliseconds())
        var time = timespec(tv_sec: left / 1000, tv_nsec: (left % 1000) * 1_000_000)
        return pthread_cond_timedwait_relative_np(condition, mutex, &time) == 0
        #else
        var time = timespec(tv_sec: deadline / 1000, tv_nsec: (deadline % 1000) * 1_000_000)
        return pthread_cond_timedwait(condition, mutex, &time) == 0
        #endif
    }
}
