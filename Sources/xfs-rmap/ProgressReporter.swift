import Dispatch
import Glibc
import XFSRmap

/// A progress line on stderr while a scan runs: AGs done, inodes scanned, observations,
/// rate and time left. Shown when stderr is a terminal (or when asked); otherwise nothing
/// extra is printed.
enum ProgressReporter {
    static func run(enabled: Bool, scanner: RmapScanner, _ body: () throws -> Void) throws {
        guard enabled || isatty(2) != 0 else { return try body() }
        let start = DispatchTime.now()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            while done.wait(timeout: .now() + .milliseconds(200)) == .timedOut {
                draw(scanner.progress, since: start)
            }
            draw(scanner.progress, since: start)
            var stderr = StandardError()
            stderr.write("\n")
        }
        thread.start()
        defer {
            done.signal()
            thread.join()
        }
        try body()
    }

    private static func draw(_ p: ScanProgress, since start: DispatchTime) {
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        let rate = seconds > 0 ? Double(p.inodes) / seconds : 0
        let left = rate > 0 && p.inodesExpected > p.inodes ? Double(p.inodesExpected - p.inodes) / rate : 0
        let fraction = p.inodesExpected > 0 ? min(1, Double(p.inodes) / Double(p.inodesExpected)) : 0
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        var stderr = StandardError()
        stderr.write("\r[\(bar)] AGs \(p.agsDone)/\(p.agCount)  inodes \(p.inodes)/\(p.inodesExpected)  records \(p.observations)  blocks \(p.blocks)  \(Int(rate)) inodes/s  \(Int(left.rounded(.up)))s left \u{1B}[K")
    }
}

/// A detached pthread running a closure, joinable.
final class Thread: @unchecked Sendable {
    private let body: () -> Void
    private var thread = pthread_t()

    init(_ body: @escaping () -> Void) { self.body = body }

    func start() {
        let box = Unmanaged.passRetained(self)
        pthread_create(&thread, nil, { raw in
            let me = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
            me.body()
            return nil
        }, box.toOpaque())
    }

    func join() { pthread_join(thread, nil) }
}
