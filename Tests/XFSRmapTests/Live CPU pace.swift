import Testing
@testable import XFSRmap

@Suite("Live: the CPU pacer")
struct CPUPacerTests {
    /// Burns about `seconds` of this thread's CPU time.
    func spin(_ seconds: Double) -> UInt64 {
        let until = CPUPacer.threadCPUSeconds() + seconds
        var x: UInt64 = 1
        while CPUPacer.threadCPUSeconds() < until {
            for _ in 0..<10_000 { x = x &* 6364136223846793005 &+ 1442695040888963407 }
        }
        return x
    }

    // The process's CPU time counts every thread, other tests' too: the pacer may sleep
    // longer than this thread's bursts call for (up to its cap), never shorter.
    @Test("after each burst of CPU time the pacer sleeps until the process used at most its share")
    func keepsShare() {
        var pacer = CPUPacer(share: 0.25)
        let started = ContinuousClock.now
        var sink: UInt64 = 0
        for _ in 0..<3 {
            sink ^= spin(0.05)
            pacer.pace()
            let (s, atto) = (ContinuousClock.now - started).components
            let elapsed = Double(s) + Double(atto) * 1e-18
            #expect(pacer.threadCPUSeconds <= 0.25 * elapsed + 0.01, "cpu \(pacer.threadCPUSeconds) s in \(elapsed) s")
        }
        #expect(pacer.pausedSeconds >= 0.3, "three bursts of 0.05 s at a quarter share sleep 0.45 s in all: \(pacer.pausedSeconds)")
        // The cap: no pause is longer than four times the thread's own burst over the share.
        #expect(pacer.pausedSeconds <= 3 * 4 * 0.06 / 0.25, "\(pacer.pausedSeconds)")
        #expect(sink != 0)
    }
}
