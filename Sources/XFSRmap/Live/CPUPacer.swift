// The online check's pace: at most a given share of one CPU, averaged over the check.
//
// Design note. Running in the idle scheduling class (`--background`) gives the check only
// CPU time nobody else wants, but on a machine whose writers leave one CPU idle now and
// then, the check still fills that CPU, and a busy neighbour CPU slows the writers (a
// shared core or cache, the hypervisor): measured on a 2-vCPU VM, a plain hashing loop in
// the idle class, touching no filesystem, cost two CPU-bound writers 16-38 % of their
// operations. Only using less CPU costs them less.
//
// The pacer keeps the process's CPU time (every thread, user and system: the kernel's work
// in GETBMAPX and GETFSMAP is most of a check's) at or below `share` of the wall time since
// the check began, by sleeping the thread that issues the scan's and the comparison's
// system calls at checkpoints between them. The trace reader never sleeps: it must keep up
// with the filesystem's updates, or the check ends with lost events. Its work counts
// against the share (it builds the trees from what the scan read), but when busy writers
// make it need more than the whole share, counting it all would starve the scan: the
// pauses would grow without end. So one pause is at most four times the paced thread's own
// work since the last checkpoint divided by the share; the scan then still goes on at
// about a quarter of its paced speed or more, and the check ends.

#if canImport(Glibc)
import Glibc
#endif

/// Sleeps the calling thread at checkpoints so that the process uses at most `share` of one
/// CPU since the pacer was made, each pause capped (see the design note). Make it and call
/// `pace()` on the same thread.
struct CPUPacer {
    /// The most CPU time per second of wall time: 0.1 is 10 % of one CPU.
    let share: Double
    /// The process's and the pacing thread's CPU time, and the wall clock, when pacing
    /// began.
    let startCPU: Double
    let startThreadCPU: Double
    let startWall: ContinuousClock.Instant
    /// The pacing thread's CPU time at the last checkpoint.
    private var threadCPUAtLastPace: Double
    /// Seconds slept so far.
    private(set) var pausedSeconds = 0.0

    /// The most a pause may be, in multiples of the pacing thread's own work since the last
    /// checkpoint divided by the share (see the design note).
    static let pauseCap = 4.0

    /// A pacer from now on, for the calling thread.
    ///
    /// - Precondition: `share` is in 0 < share ≤ 1.
    init(share: Double) {
        precondition(share > 0 && share <= 1, "a CPU share of \(share) is not in (0, 1]")
        self.share = share
        startCPU = Self.processCPUSeconds()
        startThreadCPU = Self.threadCPUSeconds()
        threadCPUAtLastPace = startThreadCPU
        startWall = .now
    }

    /// CPU seconds the process has used since the pacer was made.
    var cpuSeconds: Double { Self.processCPUSeconds() - startCPU }

    /// CPU seconds the pacing thread has used since the pacer was made.
    var threadCPUSeconds: Double { Self.threadCPUSeconds() - startThreadCPU }

    /// Sleeps until the process's CPU time is at most `share` of the wall time since the
    /// pacer was made, or for `pauseCap` times the pacing thread's work since the last
    /// checkpoint divided by the share, whichever is shorter. Call it on the thread that
    /// made the pacer.
    mutating func pace() {
        let threadCPU = Self.threadCPUSeconds()
        let ownWork = threadCPU - threadCPUAtLastPace
        threadCPUAtLastPace = threadCPU
        let (seconds, attoseconds) = (ContinuousClock.now - startWall).components
        let elapsed = Double(seconds) + Double(attoseconds) * 1e-18
        let pause = min(cpuSeconds / share - elapsed, Self.pauseCap * ownWork / share)
        guard pause > 0 else { return }
        var request = timespec(tv_sec: Int(pause), tv_nsec: Int((pause - Double(Int(pause))) * 1e9))
        var left = timespec()
        while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
        pausedSeconds += pause
    }

    /// The process's CPU time (every thread, user and system), in seconds.
    static func processCPUSeconds() -> Double { seconds(of: CLOCK_PROCESS_CPUTIME_ID) }

    /// The calling thread's CPU time (user and system), in seconds.
    static func threadCPUSeconds() -> Double { seconds(of: CLOCK_THREAD_CPUTIME_ID) }

    private static func seconds(of clock: clockid_t) -> Double {
        var now = timespec()
        clock_gettime(clock, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
    }
}
