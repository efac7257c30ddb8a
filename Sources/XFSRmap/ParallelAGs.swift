import Dispatch
import Glibc

/// Runs one job per AG on all cores and returns the results in AG order.
///
/// XFS's allocation groups are independent by design; every per-AG phase here (reading
/// the rmapbt, scanning, checking) runs this way. Jobs may throw; every job runs, and the
/// results keep each job's error.
public enum ParallelAGs {
    /// The result of `body` for each of `ags`, in the same order.
    public static func results<T>(_ ags: [UInt32], _ body: @Sendable (UInt32) throws -> T) -> [Result<T, any Error>] {
        ParallelJobs.results(ags.count) { i in try body(ags[i]) }
    }
}

/// Runs numbered jobs on all cores (Dispatch's `concurrentPerform`).
enum ParallelJobs {
    /// The result of `body` for each of `0..<count`, in order. Every job runs, and the
    /// results keep each job's error.
    static func results<T>(_ count: Int, _ body: @Sendable (Int) throws -> T) -> [Result<T, any Error>] {
        let slots = Slots<Result<T, any Error>>(count: count)
        DispatchQueue.concurrentPerform(iterations: count) { i in
            slots.set(i, Result { try body(i) })
        }
        return slots.values
    }
}

/// Values written once each by concurrent jobs.
final class Slots<T>: @unchecked Sendable {
    private let lock = Mutex()
    private var slots: [T?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ value: T) { lock.withLock { slots[i] = value } }

    /// Every value; each slot must have been set.
    var values: [T] { lock.withLock { slots.map { $0! } } }
}

/// A pthread mutex (Synchronization's `Mutex` is invisible to Thread Sanitizer on Linux,
/// as the buffer layer found; this one is plain and visible).
final class Mutex: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    /// Runs `body` holding the lock.
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}
