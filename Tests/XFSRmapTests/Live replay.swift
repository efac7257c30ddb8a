import Foundation
import Testing
import XFSBTree
import XFSFormat
import XFSTestSupport
@testable import XFSRmap

// The kernel as the oracle of the live layer: the rmap of an unmounted image (the scan),
// plus every update traced while the image is mounted, written to by the writers script and
// unmounted, must equal the rmapbt the kernel left on disk, record for record. This proves
// the event set (nothing missing, nothing extra) and the unmap / convert semantics.

/// Why the live tests cannot run here, or nil: they need loop mounts and tracefs with the
/// xfs rmap events.
let liveUnavailableReason: String? = {
    if let reason = LoopMount.unavailableReason { return reason }
    if access("/sys/kernel/tracing/events/xfs", F_OK) != 0 {
        // Mount tracefs when it is not (root, as the loop mounts already need).
        _ = try? Fixtures.runTool("mount", ["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
    }
    do {
        _ = try TraceFS.find()
    } catch {
        return "\(error)"
    }
    return Fixtures.hasTool("python3") ? nil : "python3 (for scripts/online-writers.py) is not installed"
}()

/// `scripts/online-writers.py` in this checkout.
let writersScript: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("scripts/online-writers.py").path

/// The on-disk rmap records of every AG of the image at `path`.
func diskRecords(_ path: String) throws -> [[RmapRecord]] {
    let image = try XFSImage(path: path)
    return try (0..<image.geometry.agCount).map { agno in
        let agf = try image.agf(agno)
        var records: [RmapRecord] = []
        try image.withCursor(RmapFormat.self, AGBTreeRoot(.rmapbt, agno: agno, agf: agf)) { cursor in
            _ = try cursor.queryAll { records.append($0); return .proceed }
        }
        return records
    }
}

/// The lines where two record lists of AG `agno` differ (at most `limit`).
func recordDifferences(_ agno: UInt32, expected: [RmapRecord], actual: [RmapRecord], limit: Int = 20) -> [String] {
    let e = Set(expected), a = Set(actual)
    let missing = expected.filter { !a.contains($0) }.prefix(limit).map { "AG \(agno) missing \(RmapText.describe($0))" }
    let extra = actual.filter { !e.contains($0) }.prefix(limit).map { "AG \(agno) extra \(RmapText.describe($0))" }
    return Array(missing + extra)
}

/// Collects the updates of a trace and applies them to the scanner's trees, in order.
final class ReplaySubscriber: @unchecked Sendable {
    let lock = NSLock()
    let scanner: RmapScanner
    var applied = 0
    var byOperation: [RmapUpdate.Operation: Int] = [:]
    var errors: [String] = []

    init(scanner: RmapScanner) { self.scanner = scanner }

    func receive(_ item: RmapTraceItem) {
        guard case let .update(update) = item else { return }
        lock.withLock {
            guard update.agno < scanner.image.geometry.agCount else {
                errors.append("update of AG \(update.agno) past the last AG: \(update)")
                return
            }
            do {
                try scanner.tree(update.agno).apply(update)
                applied += 1
                byOperation[update.operation, default: 0] += 1
            } catch {
                if errors.count < 20 { errors.append("\(update): \(error)") }
            }
        }
    }
}

@Suite("Live: replaying the kernel's traced rmap updates", .serialized,
       .enabled(if: liveUnavailableReason == nil, "\(liveUnavailableReason ?? "")"))
struct LiveReplayTests {
    /// Scan, trace while mounted and written, unmount, compare the replayed trees with dump.
    func replay(fixture: String, seed: Int, seconds: Int) throws -> ReplaySubscriber {
        let path = try Fixtures.writableCopy(fixture)
        defer { unlink(path) }
        let scanner = try RmapScanner(image: try XFSImage(path: path))
        try scanner.scan(ags: Array(0..<scanner.image.geometry.agCount))
        #expect(scanner.problems.isEmpty, "\(scanner.problems)")
        let before = try diskRecords(path)
        for agno in 0..<scanner.image.geometry.agCount {
            #expect(try scanner.tree(agno).records() == before[Int(agno)], "the scan of unmounted \(fixture) equals dump")
        }

        let subscriber = ReplaySubscriber(scanner: scanner)
        let hooks = RmapHookRegistry()
        hooks.subscribe { subscriber.receive($0) }
        var session: RmapTraceSession?
        defer { session?.cancel() }
        let mount = try LoopMount(image: path) { device in
            session = try RmapTraceSession(device: try TraceFS.deviceNumber(of: device), hooks: hooks)
        }
        do {
            let report = try mount.shell("python3 '\(writersScript)' \"$M\" --seed \(seed) --writers 2 --seconds \(seconds)")
            print("writers on \(fixture): \(report)")
            try mount.unmount()
        } catch {
            try? mount.unmount()
            throw error
        }
        try #require(session).finish()
        print("replayed \(subscriber.applied) updates: \(subscriber.byOperation.map { "\($0.key.rawValue) \($0.value)" }.sorted())"
              + ", \(try #require(session).counts)")
        #expect(subscriber.errors.isEmpty, "\(subscriber.errors)")

        let after = try diskRecords(path)
        for agno in 0..<scanner.image.geometry.agCount {
            let replayed = try scanner.tree(agno).records()
            let differences = recordDifferences(agno, expected: after[Int(agno)], actual: replayed)
            #expect(differences.isEmpty, "\(fixture) AG \(agno): replayed trees differ from dump:\n\(differences.joined(separator: "\n"))")
        }
        return subscriber
    }

    @Test("a populated reflink image: the scan plus the traced updates equals dump afterwards, exactly")
    func replayMixed() throws {
        let subscriber = try replay(fixture: "mixed-4k", seed: 11, seconds: 6)
        #expect(subscriber.applied > 1000)
        for op in RmapUpdate.Operation.allCases {
            #expect(subscriber.byOperation[op, default: 0] > 0, "the writers made no \(op.rawValue) update")
        }
    }

    @Test("an empty image of another geometry (1k blocks): the same")
    func replayOneK() throws {
        let subscriber = try replay(fixture: "geo-1k-i512-sect1k", seed: 12, seconds: 4)
        #expect(subscriber.applied > 500)
    }
}
