// Locks, waits, a thread and a directory listing for the live layer, on the C library alone.
//
// Design note. The live layer has one thread of its own (the trace reader) and waits for
// what it reads (markers coming through the trace). A pthread mutex with a condition
// variable whose waits run on CLOCK_MONOTONIC (so a change of the wall clock cannot end or
// stretch a wait) does both; the thread is a pthread. These few wrappers keep the tool off
// Foundation, which would cost every command of the tool several megabytes of resident
// memory for what the C library already has.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CXFSShims

/// A mutex with a condition variable (pthread); waits time out on the monotonic clock.
final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// A new, unlocked lock.
    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Takes the lock.
    func lock() { pthread_mutex_lock(mutex) }

    /// Lets the lock go.
    func unlock() { pthread_mutex_unlock(mutex) }

    /// Runs `body` with the lock held.
    func withLock<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes every thread waiting on the lock's condition.
    func broadcast() { pthread_cond_broadcast(condition) }

    /// Waits (with the lock held) until woken or `deadline` passes; false when it passed.
    /// Callers re-check what they wait for: a wait may also end without a wake-up.
    func wait(until deadline: MonotonicDeadline) -> Bool {
        var time = deadline.time
        return pthread_cond_timedwait(condition, mutex, &time) != ETIMEDOUT
    }
}

/// A moment of CLOCK_MONOTONIC, for `ConditionLock.wait(until:)`.
struct MonotonicDeadline: Sendable {
    let time: timespec

    /// The moment `seconds` from now.
    init(secondsFromNow seconds: Double) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let whole = Int(seconds)
        var nanoseconds = now.tv_nsec + Int((seconds - Double(whole)) * 1e9)
        var secs = now.tv_sec + whole
        if nanoseconds >= 1_000_000_000 {
            nanoseconds -= 1_000_000_000
            secs += 1
        }
        time = timespec(tv_sec: secs, tv_nsec: nanoseconds)
    }
}

/// Seconds from `start` to now, on the continuous clock.
func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// Runs `body` on a new thread named `name` (at most 15 bytes show), detached.
func startThread(named name: String, _ body: @escaping @Sendable () -> Void) throws {
    final class Box: @unchecked Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
    let box = Unmanaged.passRetained(Box(name, body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(&thread, nil, { argument in
        let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        box.name.withCString { _ = cxfs_set_thread_name($0) }
        box.body()
        return nil
    }, box)
    guard status == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        throw LiveCheckError.tracing(path: "pthread_create", detail: "cannot start the \(name) thread: \(String(cString: strerror(status)))")
    }
    pthread_detach(thread)
}

/// The names in directory `path` (without "." and ".."), or nil when it cannot be read.
func directoryEntries(_ path: String) -> [String]? {
    guard let directory = opendir(path) else { return nil }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}
