import Foundation
import Testing
import XFSBuffer
import XFSFormat
import XFSTestSupport

/// The log state of the image at `path` (with its external log image).
private func logState(_ path: String, logImage: String? = nil) throws -> LogState {
    try XFSImage(path: path, logDevicePath: logImage).readLogState()
}

/// The first word of log block `block` of the image at `path`: its cycle (or the header magic).
private func firstWord(_ path: String, block: UInt32) throws -> UInt32 {
    let image = try XFSImage(path: path)
    let bytes = try ImageFile(path: path).read(at: UInt64(image.logLocation.start.byteOffset) + UInt64(block) * 512, count: 4)
    return bytes.reduce(0) { $0 << 8 | UInt32($1) }
}

@Suite("log head and tail, against xfs_logprint and xfs_repair", .serialized)
struct LogStateTests {
    @Test("every fixture's log is clean: head = tail = xfs_logprint's, after an unmount record of cycle 1",
          arguments: allFixtureImages)
    func fixturesAreClean(name: String) throws {
        let path = try Fixtures.imagePath(name)
        let state = try logState(path)
        #expect(state.isClean && state.endsWithUnmountRecord && !state.isZeroed, "\(state)")
        #expect(state.head == state.tail)
        let printed = try #require(try LogPrint.headAndTail(path))
        #expect(printed == LogPrint(tail: state.tail.block, head: state.head.block, clean: true), "\(state)")
        // The unmount record's data block, just before the head, carries the head's cycle.
        #expect(try firstWord(path, block: state.head.block - 1) == state.head.cycle)
        #expect(state.head.cycle == 1)
    }

    @Test("an unmount record's header decodes as xfs_logprint prints it")
    func unmountRecordHeader() throws {
        let path = try Fixtures.imagePath("mixed-4k")
        let image = try XFSImage(path: path)
        let bytes = try ImageFile(path: path).read(at: UInt64(image.logLocation.start.byteOffset) + 8201 * 512, count: 512)
        let header = try bytes.withUnsafeBytes { try LogRecordHeader.decode($0, location: "log block 8201") }
        #expect(header.magicnum == LogRecordHeader.magic)
        #expect(header.position == LogPosition(cycle: 1, block: 8201))
        #expect(header.tail == LogPosition(cycle: 1, block: 8199)) // the record before, not itself
        #expect(header.version == 2 && header.length == 512 && header.operationCount == 1 && header.size == 32768)
        #expect(header.headerBlocks == 1 && header.dataBlocks == 1)
        #expect(header.uuid == image.superblock.uuid)
        #expect(throws: XFSFormatError.self) { try bytes.prefix(300).withUnsafeBytes { try LogRecordHeader.decode($0, location: "short") } }
    }

    @Test("a log the kernel left dirty (written, synced, written, shut down) is dirty, head and tail as xfs_logprint's",
          .enabled(if: LoopMount.isAvailable, "\(LoopMount.unavailableReason ?? "")"),
          arguments: ["mixed-4k", "geo-4k-sect4k", "geo-1k-i512-sect1k", "mixed-1k"])
    func kernelDirtiedLogs(name: String) throws {
        let before = try logState(try Fixtures.imagePath(name))
        let path = try DirtyLogImages.make(from: name)
        defer { unlink(path) }
        let state = try logState(path)
        #expect(!state.isClean && !state.endsWithUnmountRecord, "\(state)")
        let printed = try #require(try LogPrint.headAndTail(path))
        #expect(printed == LogPrint(tail: state.tail.block, head: state.head.block, clean: false), "\(state)")
        // The mount began writing at the clean log's head, in the same cycle.
        #expect(state.tail.block >= before.head.block && state.head.block > state.tail.block)
        #expect(state.head.cycle == 1 && state.tail.cycle == 1)
        let repair = try Fixtures.runToolAnyStatus("xfs_repair", ["-n", path])
        #expect(repair.contains("valuable metadata changes in a log"), "\(repair.prefix(400))")
    }

    @Test("a log reformatted to cycle 5 (xfs_db logformat) is clean at cycle 5, then dirty after a shutdown",
          .enabled(if: LoopMount.isAvailable, "\(LoopMount.unavailableReason ?? "")"))
    func wrappedCycles() throws {
        let path = try Fixtures.writableCopy("mixed-1k")
        defer { unlink(path) }
        try Fixtures.runTool("xfs_db", ["-x", "-c", "logformat -c 5", path])
        let size = UInt32(try XFSImage(path: path).logLocation.basicBlocks)
        // logformat leaves cycle 5 at the start and cycle 4 everywhere else, as a log that
        // has gone round four times.
        #expect(try firstWord(path, block: size - 1) == 4)
        let clean = try logState(path)
        #expect(clean.isClean && clean.head.cycle == 5, "\(clean)")
        #expect(try LogPrint.headAndTail(path) == LogPrint(tail: clean.tail.block, head: clean.head.block, clean: true))
        try DirtyLogImages.dirty(path)
        let dirty = try logState(path)
        #expect(!dirty.isClean && dirty.head.cycle == 5 && dirty.tail.cycle == 5, "\(dirty)")
        #expect(try LogPrint.headAndTail(path) == LogPrint(tail: dirty.tail.block, head: dirty.head.block, clean: false))
    }

    @Test("a zeroed log is clean, with head and tail at cycle 1 block 0")
    func zeroedLog() throws {
        let path = try Fixtures.writableCopy("geo-4k-sect4k")
        defer { unlink(path) }
        let size = Int(try XFSImage(path: path).logLocation.basicBlocks)
        try SyntheticLog(size: size, uuid: .zero).write(into: path)
        let state = try logState(path)
        #expect(state == LogState(head: LogPosition(cycle: 1, block: 0), tail: LogPosition(cycle: 1, block: 0),
                                  isZeroed: true, endsWithUnmountRecord: false))
        #expect(state.isClean)
        #expect(try LogPrint.headAndTail(path) == LogPrint(tail: 0, head: 0, clean: true))
    }

    /// A layout of records, and what is special about it.
    struct Layout: CustomTestStringConvertible, Sendable {
        var name: String
        /// Builds the log for a log of `size` blocks and filesystem `uuid`.
        var build: @Sendable (Int, FSUUID) -> SyntheticLog
        /// The head cycle expected, when the layout fixes it.
        var headCycle: UInt32?
        var testDescription: String { name }
    }

    static let layouts: [Layout] = [
        Layout(name: "records then zeros, an unmount record last", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(0, 1000, cycle: 1, tail: LogPosition(cycle: 1, block: 990), endWithUnmount: true)
            return log
        }, headCycle: 1),
        Layout(name: "records then zeros, no unmount record", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(0, 1000, cycle: 1, tail: LogPosition(cycle: 1, block: 500))
            return log
        }, headCycle: 1),
        Layout(name: "one operation that is not an unmount", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(0, 992, cycle: 1, tail: LogPosition(cycle: 1, block: 500))
            log.record(at: 992, cycle: 1, dataBlocks: 7, tail: LogPosition(cycle: 1, block: 992), operations: 1)
            return log
        }, headCycle: 1),
        Layout(name: "an unmount record, then a transaction", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(0, 900, cycle: 1, tail: LogPosition(cycle: 1, block: 0), endWithUnmount: true)
            log.records(900, 1000, cycle: 1, tail: LogPosition(cycle: 1, block: 900))
            return log
        }, headCycle: 1),
        Layout(name: "one full cycle ending at the last block with an unmount record", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(0, n, cycle: 1, tail: LogPosition(cycle: 1, block: UInt32(n - 8)), endWithUnmount: true)
            return log
        }, headCycle: 2),
        Layout(name: "wrapped: cycle 3 up to block 5000, cycle 2 after, an unmount record last", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(5000, n, cycle: 2, tail: LogPosition(cycle: 2, block: 5000))
            log.records(0, 5000, cycle: 3, tail: LogPosition(cycle: 2, block: UInt32(n - 100)), endWithUnmount: true)
            return log
        }, headCycle: 3),
        Layout(name: "wrapped, the tail in the cycle before", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(5000, n, cycle: 2, tail: LogPosition(cycle: 2, block: 5000))
            log.records(0, 5000, cycle: 3, tail: LogPosition(cycle: 2, block: 90000))
            return log
        }, headCycle: 3),
        Layout(name: "a write of the newest cycle torn 20 blocks before its end", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(5000, n, cycle: 2, tail: LogPosition(cycle: 2, block: 5000))
            log.records(0, 5000, cycle: 3, tail: LogPosition(cycle: 2, block: 90000))
            log.stamp(4980 ..< 4985, cycle: 2)
            return log
        }, headCycle: 3),
        Layout(name: "a record cut short at the head", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(0, 3000, cycle: 1, tail: LogPosition(cycle: 1, block: 2000))
            log.record(at: 3000, cycle: 1, dataBlocks: 20, tail: LogPosition(cycle: 1, block: 2000))
            log.stamp(3006 ..< 3021, cycle: 0)
            return log
        }, headCycle: 1),
        Layout(name: "a record cut short at the head of a wrapped log", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(5000, n, cycle: 2, tail: LogPosition(cycle: 2, block: 5000))
            log.records(0, 4980, cycle: 3, tail: LogPosition(cycle: 2, block: 60000))
            log.record(at: 4980, cycle: 3, dataBlocks: 30, tail: LogPosition(cycle: 2, block: 60000))
            log.stamp(4990 ..< 5011, cycle: 2) // the rest of it never reached the disk
            return log
        }, headCycle: 3),
        Layout(name: "a record wrapping round the end, an unmount record", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(0, n - 3, cycle: 1, tail: LogPosition(cycle: 1, block: 0))
            log.record(at: n - 3, cycle: 1, dataBlocks: 6, tail: LogPosition(cycle: 1, block: UInt32(n - 3)), unmount: true)
            log.stamp(0 ..< 4, cycle: 2) // the part past the end is written in the next cycle
            return log
        }, headCycle: 2),
        Layout(name: "a record wrapping round the end, a transaction", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(0, n - 3, cycle: 1, tail: LogPosition(cycle: 1, block: 0))
            log.record(at: n - 3, cycle: 1, dataBlocks: 6, tail: LogPosition(cycle: 1, block: UInt32(n - 200)))
            log.stamp(0 ..< 4, cycle: 2)
            return log
        }, headCycle: 2),
        Layout(name: "one cycle with a hole of the cycle before near the end", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(0, n, cycle: 2, tail: LogPosition(cycle: 2, block: 100))
            log.stamp(n - 1000 ..< n - 990, cycle: 1)
            return log
        }, headCycle: 2),
        Layout(name: "cycle 2 in the first 100 blocks, a hole of cycle 0 at the end", build: { n, u in
            var log = SyntheticLog(size: n, uuid: u)
            log.records(100, n - 50, cycle: 1, tail: LogPosition(cycle: 1, block: 100))
            log.records(0, 100, cycle: 2, tail: LogPosition(cycle: 1, block: 40000))
            log.stamp(n - 50 ..< n, cycle: 0) // never written in cycle 1: a hole of the cycle before
            return log
        }, headCycle: nil),
    ]

    @Test("synthetic layouts give xfs_logprint's head, tail and verdict", arguments: layouts)
    func syntheticLayouts(layout: Layout) throws {
        let path = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(path) }
        let image = try XFSImage(path: path)
        let log = layout.build(Int(image.logLocation.basicBlocks), image.superblock.uuid)
        try log.write(into: path)
        let printed = try LogPrint.headAndTail(path)
        let state: LogState
        do {
            state = try logState(path)
        } catch {
            #expect(printed == nil, "xfs_logprint found \(printed.map(String.init(describing:)) ?? "") but: \(error)")
            return
        }
        #expect(printed == LogPrint(tail: state.tail.block, head: state.head.block, clean: state.isClean), "\(state)")
        if let cycle = layout.headCycle { #expect(state.head.cycle == cycle, "\(state)") }
    }

    @Test("a record header of another filesystem is named")
    func foreignUUID() throws {
        let path = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(path) }
        let image = try XFSImage(path: path)
        var log = SyntheticLog(size: Int(image.logLocation.basicBlocks), uuid: FSUUID(high: 1, low: 2))
        log.records(0, 100, cycle: 1, tail: LogPosition(cycle: 1, block: 0), endWithUnmount: true)
        try log.write(into: path)
        let error = try #require(throws: XFSFormatError.self) { try logState(path) }
        #expect(error.description.contains("belongs to filesystem 00000000-0000-0001-0000-000000000002"), "\(error)")
    }

    /// Kinds of garbage written over a whole log.
    enum Garbage: String, CaseIterable, Sendable {
        /// Random bytes.
        case randomBytes
        /// Each block stamped with a random cycle from 1 to 3, the rest random.
        case randomCycles
        /// Every block a record header with random fields (this filesystem's uuid, so the
        /// uuid check does not end the search at once).
        case headersEverywhere
        /// Headers of random length at random places among blocks of two cycles.
        case scatteredHeaders
    }

    @Test("garbage over the log gives a verdict or an error naming the log, quickly",
          arguments: Garbage.allCases, [1, 2, 3] as [UInt64])
    func garbage(kind: Garbage, seed: UInt64) throws {
        let path = try Fixtures.writableCopy("geo-1k-i512-sect1k")
        defer { unlink(path) }
        let image = try XFSImage(path: path)
        let size = Int(image.logLocation.basicBlocks)
        var rng = SeededRandom(seed: seed &* 0x9E37 &+ UInt64(kind.rawValue.count))
        var log = SyntheticLog(size: size, uuid: image.superblock.uuid)
        // Each block: 512 random bytes from a random place in a 1 MiB random pool (a debug
        // build makes 64 MiB of generator output slowly).
        let pool = (0 ..< (1 << 17)).map { _ in rng.next() }
        log.bytes.withUnsafeMutableBytes { raw in
            pool.withUnsafeBytes { source in
                for block in 0 ..< size {
                    let from = Int(rng.next() % UInt64(source.count - 512))
                    (raw.baseAddress! + block * 512).copyMemory(from: source.baseAddress! + from, byteCount: 512)
                }
            }
        }
        switch kind {
        case .randomBytes:
            break
        case .randomCycles:
            for block in 0 ..< size { log.put(UInt32.random(in: 1 ... 3, using: &rng), block: block, at: 0) }
        case .headersEverywhere:
            for block in 0 ..< size {
                log.record(at: block, cycle: UInt32.random(in: 1 ... 2, using: &rng), dataBlocks: 0,
                           tail: LogPosition(lsn: rng.next()), unmount: rng.next() & 1 == 0)
                log.put(UInt32(truncatingIfNeeded: rng.next()), block: block, at: 12) // length
                log.put(UInt32(truncatingIfNeeded: rng.next()), block: block, at: 320) // size
            }
        case .scatteredHeaders:
            log.stamp(0 ..< size / 2, cycle: 2)
            log.stamp(size / 2 ..< size, cycle: 1)
            for _ in 0 ..< 2000 {
                let block = Int.random(in: 0 ..< size, using: &rng)
                log.record(at: block, cycle: block < size / 2 ? 2 : 1, dataBlocks: Int.random(in: 0 ... 8, using: &rng),
                           tail: LogPosition(cycle: UInt32.random(in: 0 ... 3, using: &rng), block: UInt32(truncatingIfNeeded: rng.next())),
                           unmount: rng.next() & 3 == 0, version: UInt32.random(in: 1 ... 3, using: &rng))
            }
        }
        try log.write(into: path)
        let clock = ContinuousClock()
        let start = clock.now
        do {
            let state = try logState(path)
            #expect(state.head.block < size && state.tail.block < size, "\(state)")
        } catch let error as XFSFormatError {
            #expect(error.location == "log" && !error.detail.isEmpty, "\(error)")
        }
        #expect(clock.now - start < .seconds(10), "\(kind) seed \(seed) took \(clock.now - start)")
    }

    @Test("a log larger than XFS allows is refused without being read")
    func oversizedLog() throws {
        let file = TemporaryFile(contents: [])
        let bytes = Int((LogState.maximumBlocks + 1) * 512)
        #expect(truncate(file.path, off_t(bytes)) == 0)
        let location = LogLocation(target: try FileTarget(path: file.path), start: DiskAddress(0),
                                   basicBlocks: LogState.maximumBlocks + 1, isExternal: true)
        let error = try #require(throws: XFSFormatError.self) { try LogState.read(location, filesystemUUID: .zero) }
        #expect(error.description == "external log: 4194305 basic blocks is larger than the largest log (4194304)")
    }
}
