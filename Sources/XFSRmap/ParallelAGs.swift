import Dispatch
import Glibc
import Synchronization

/// Runs one job per AG on up to `threads` threads and returns the results in AG order.
///
/// XFS's allocation groups are independent by design; every per-AG phase here (reading
/// the rmapbt, scanning, checking) runs this way. Jobs may throw; every job runs, and the
/// results keep each job's error.
public enum ParallelAGs {
    /// The threads a parallel phase uses unless told otherwise: one per online core.
    public static var defaultThreads: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// The result of `body` for each of `ags`, in the same order, on up to `threads`
    /// threads (at most one per core; 1 runs the jobs in order on the caller's thread).
    public static func results<T>(_ ags: [UInt32], threads: Int = ParallelAGs.defaultThreads,
                                  _ body: @Sendable (UInt32) throws -> T) -> [Result<T, any Error>] {
        ParallelJobs.results(ags.count, threads: threads) { i in try body(ags[i]) }
    }
}

/// Runs numbered jobs on up to a given number of threads: Dispatch's `concurrentPerform`
/// runs that many workers (never more than the cores), each taking the next job number
/// until none is left.
enum ParallelJobs {
    /// The result of `body` for each of `0..<count`, in order, on up to `threads` threads.
    /// Every job runs, and the results keep each job's error.
    static func results<T>(_ count: Int, threads: Int = ParallelAGs.defaultThreads,
                           _ body: @Sendable (Int) throws -> T) -> [Result<T, any Error>] {
        precondition(threads >= 1, "a parallel phase needs at least one thread, not \(threads)")
        let workers = min(threads, count)
        if workers <= 1 { return (0..<count).map { i in Result { try body(i) } } }
        let slots = Slots<Result<T, any Error>>(count: count)
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                guard i < count else { return }
                slots.set(i, Result { try body(i) })
            }
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
