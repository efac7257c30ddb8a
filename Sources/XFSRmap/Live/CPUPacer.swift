// The online check's pace: at most a given share of one CPU, averaged over the check.
//
// Design note. Running in the idle scheduling class (`--background`) gives the check only
// CPU time nobody else wants, but on a machine whose writers leave one CPU idle now and
// then, the check still fills that CPU, and a busy neighbour CPU slows the writers (a
// shared core or cache, the hypervisor): measured on a 2-vCPU VM, a plain hashing loop in
// the idle class, touching no filesystem, cost two CPU-bound writers 16-38 % of their
// operations. Only using less CPU costs them less. The pacer keeps the process's CPU time
// (every thread's, user and system: the kernel's work in GETBMAPX and GETFSMAP is most of
// a check's) at or below `share` of the wall time since the check began, by sleeping the
// calling thread at checkpoints between system calls. Only the thread that issues the
// scan's and the comparison's calls sleeps; the trace reader never does (it must keep up
// with the writers' updates), and what it spends counts against the budget.

#if canImport(Glibc)
import Glibc
#endif

/// Sleeps the calling thread at checkpoints so that the process uses at most `share` of one
/// CPU since the pacer was made.
struct CPUPacer {
    /// The most CPU time per second of wall time: 0.1 is 10 % of one CPU.
    let share: Double
    /// The process's CPU time and the wall clock when pacing began.
    let startCPU: Double
    let startWall: ContinuousClock.Instant
    /// Seconds slept so far.
    private(set) var pausedSeconds = 0.0

    /// A pacer from now on.
    ///
    /// - Precondition: `share` is in 0 < share ≤ 1.
    init(share: Double) {
        precondition(share > 0 && share <= 1, "a CPU share of \(share) is not in (0, 1]")
        self.share = share
        startCPU = Self.processCPUSeconds()
        startWall = .now
    }

    /// CPU seconds the process has used since the pacer was made.
    var cpuSeconds: Double { Self.processCPUSeconds() - startCPU }

    /// Sleeps until the process's CPU time is at most `share` of the wall time since the
    /// pacer was made.
    mutating func pace() {
        let due = cpuSeconds / share
        let (seconds, attoseconds) = (ContinuousClock.now - startWall).components
        let elapsed = Double(seconds) + Double(attoseconds) * 1e-18
        guard due > elapsed else { return }
        let pause = due - elapsed
        var request = timespec(tv_sec: Int(pause), tv_nsec: Int((pause - Double(Int(pause))) * 1e9))
        var left = timespec()
        while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
        pausedSeconds += pause
    }

    /// The process's CPU time (every thread, user and system), in seconds.
    static func processCPUSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
    }
}
