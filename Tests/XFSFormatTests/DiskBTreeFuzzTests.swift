import Dispatch
import Foundation
import Synchronization
import Testing
import XFSBuffer
import XFSFormat
import XFSTestSupport

/// One piece of metadata the fuzzer damages: where it is, how long, and where its CRC sits.
struct FuzzTarget: Sendable, CustomStringConvertible {
    /// Byte offset in the image.
    var offset: UInt64
    /// Its length (a sector, a block or an inode).
    var length: Int
    /// The CRC field's offset inside it.
    var crcOffset: Int
    /// How far into it the header fields reach (flips there reach the most checks).
    var headerSpan: Int
    /// What it is: "AG 1 AGF", "AG 0 rmapbt block 8", "inode 133", …
    var what: String

    var description: String { "\(what) @\(offset)+\(length)" }
}

/// The metadata of a fixture image the fuzzer aims at, and the inodes each case reads.
struct FuzzPlan {
    var targets: [FuzzTarget] = []
    var inodes: [UInt64] = []

    /// Enumerates the AG headers, every block of every AG btree, the bmbt blocks and some
    /// inodes of the image at `path`, through the library.
    init(path: String) throws {
        let image = try XFSImage(path: path)
        let g = image.geometry
        let sector = Int(g.sectorSize)
        let block = Int(g.blockSize)
        var chunks: [UInt64] = []
        for agno in 0 ..< g.agCount {
            targets.append(FuzzTarget(offset: g.superblockByteOffset(agno), length: sector, crcOffset: 224, headerSpan: 264, what: "AG \(agno) superblock"))
            targets.append(FuzzTarget(offset: g.agfByteOffset(agno), length: sector, crcOffset: 216, headerSpan: 224, what: "AG \(agno) AGF"))
            targets.append(FuzzTarget(offset: g.agiByteOffset(agno), length: sector, crcOffset: 312, headerSpan: 344, what: "AG \(agno) AGI"))
            targets.append(FuzzTarget(offset: g.agflByteOffset(agno), length: sector, crcOffset: 32, headerSpan: 64, what: "AG \(agno) AGFL"))
            let headers = try image.agHeaders(agno)
            var trees: [(String, [UInt32])] = [
                ("bnobt", try image.blocks(FreeSpaceByBlockFormat.self, .bnobt, in: headers)),
                ("cntbt", try image.blocks(FreeSpaceByCountFormat.self, .cntbt, in: headers)),
                ("inobt", try image.inodeBTreeBlocks(.inobt, in: headers)),
                ("rmapbt", try image.blocks(RmapFormat.self, .rmapbt, in: headers)),
            ]
            if g.hasFinobt { trees.append(("finobt", try image.inodeBTreeBlocks(.finobt, in: headers))) }
            if g.hasReflink { trees.append(("refcountbt", try image.blocks(RefcountFormat.self, .refcountbt, in: headers))) }
            for (name, blocks) in trees {
                for agbno in blocks {
                    targets.append(FuzzTarget(offset: g.byteOffset(agno: agno, agbno: agbno), length: block, crcOffset: 52,
                                              headerSpan: 96, what: "AG \(agno) \(name) block \(agbno)"))
                }
            }
            for record in try image.inodeBTreeRecords(.inobt, in: headers) {
                chunks += g.allocatedInodes(record, agno: agno)
            }
        }
        // Every inode whose fork is a btree (their bmbt blocks are targets), and an even
        // spread of the others; at most 32 in all, read in every case.
        var withBTree: [UInt64] = []
        for ino in chunks {
            let inode = try image.inode(ino)
            var isBTree = false
            for fork in [InodeFork.Which.data, .attr] {
                let mappings = try image.mappings(of: inode, fork: fork)
                for fsb in mappings.bmbtBlocks {
                    isBTree = true
                    targets.append(FuzzTarget(offset: g.byteOffset(fsBlock: fsb), length: block, crcOffset: 64,
                                              headerSpan: 112, what: "inode \(ino) bmbt block \(fsb)"))
                }
            }
            if isBTree && withBTree.count < 16 { withBTree.append(ino) }
        }
        let step = max(1, chunks.count / (32 - withBTree.count))
        inodes = withBTree + stride(from: 0, to: chunks.count, by: step).map { chunks[$0] }.filter { !withBTree.contains($0) }
        inodes = Array(inodes.prefix(32))
        for ino in inodes {
            if let at = g.byteOffset(ofInode: ino) {
                targets.append(FuzzTarget(offset: at, length: Int(g.inodeSize), crcOffset: 100, headerSpan: 176 + 64, what: "inode \(ino)"))
            }
        }
    }
}

/// The library's whole read path on one image, in-process, opened afresh (the file
/// target caches buffers). Returns the errors thrown, one per step that failed.
func readEverything(path: String, inodes: [UInt64]) -> [any Error] {
    var errors: [any Error] = []
    func step(_ body: () throws -> Void) {
        do { try body() } catch { errors.append(error) }
    }
    let image: XFSImage
    do { image = try XFSImage(path: path) } catch { return [error] }
    for agno in 0 ..< image.geometry.agCount {
        let headers: AGHeaders
        do { headers = try image.agHeaders(agno) } catch {
            errors.append(error)
            continue
        }
        step { _ = try image.rmapRecords(in: headers) }
        step { _ = try image.inodeBTreeRecords(.inobt, in: headers) }
        if image.geometry.hasFinobt { step { _ = try image.inodeBTreeRecords(.finobt, in: headers) } }
        step { _ = try image.records(FreeSpaceByBlockFormat.self, .bnobt, in: headers) }
        step { _ = try image.records(FreeSpaceByCountFormat.self, .cntbt, in: headers) }
        if image.geometry.hasReflink { step { _ = try image.records(RefcountFormat.self, .refcountbt, in: headers) } }
    }
    for ino in inodes {
        step {
            let inode = try image.inode(ino)
            _ = try image.mappings(of: inode, fork: .data)
            _ = try image.mappings(of: inode, fork: .attr)
        }
    }
    return errors
}

/// A private writable copy of a fixture, changed in place with pwrite and restored after
/// each case (copying a 1 GiB sparse image per case would cost far more than the case).
final class PatchableImage {
    let path: String
    private let descriptor: Int32

    init(_ name: String) throws {
        path = try Fixtures.writableCopy(name)
        descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else { throw Fixtures.Failure(description: "open \(path): errno \(errno)") }
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    func read(_ t: FuzzTarget) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: t.length)
        let n = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, t.length, off_t(t.offset)) }
        guard n == t.length else { throw Fixtures.Failure(description: "pread \(t): \(n)") }
        return bytes
    }

    func write(_ bytes: [UInt8], _ t: FuzzTarget) throws {
        let n = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, t.length, off_t(t.offset)) }
        guard n == t.length else { throw Fixtures.Failure(description: "pwrite \(t): \(n)") }
    }
}

@Suite("disk btrees and headers under random damage", .serialized)
struct DiskBTreeFuzzTests {
    /// Cases per image; `XFS_FUZZ_CASES` overrides (e.g. 20000 for a long soak).
    static let casesPerImage = ProcessInfo.processInfo.environment["XFS_FUZZ_CASES"].flatMap(Int.init) ?? 1000

    @Test("random byte flips (CRC often recomputed) are read or refused, never a trap or a hang",
          arguments: [("mixed-4k", UInt64(0x4b_f00d)), ("mixed-1k", UInt64(0x1b_f00d))])
    func fuzz(name: String, seed: UInt64) throws {
        let image = try PatchableImage(name)
        let plan = try FuzzPlan(path: image.path)
        #expect(readEverything(path: image.path, inodes: plan.inodes).isEmpty, "the undamaged image reads cleanly")
        var rng = SeededRandom(seed: seed)
        var cleanCases = 0
        var refusedCases = 0
        var kinds: [String: Int] = [:]
        var slowest: (Double, String) = (0, "")
        // The case being run, for a post-mortem if the process dies in it.
        let breadcrumb = NSTemporaryDirectory() + "xfs-rmap-fuzz-\(name)-current.txt"
        for index in 0 ..< Self.casesPerImage {
            let target = plan.targets[Int.random(in: 0 ..< plan.targets.count, using: &rng)]
            let original = try image.read(target)
            var damaged = original
            let flips = Int.random(in: 1 ... 4, using: &rng)
            var changes: [String] = []
            for _ in 0 ..< flips {
                if Bool.random(using: &rng) {
                    // An interesting 32-bit value at an aligned offset in the header.
                    let at = Int.random(in: 0 ..< min(target.headerSpan, target.length) / 4, using: &rng) * 4
                    let value: UInt32 = [0, 1, 2, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, UInt32.random(in: 0 ... 64, using: &rng),
                                         UInt32.random(in: 0 ... .max, using: &rng)][Int.random(in: 0 ..< 8, using: &rng)]
                    withUnsafeBytes(of: value.bigEndian) { damaged.replaceSubrange(at ..< at + 4, with: $0) }
                    changes.append("u32@\(at)=\(value)")
                } else {
                    let span = Bool.random(using: &rng) ? min(target.headerSpan, target.length) : target.length
                    let at = Int.random(in: 0 ..< span, using: &rng)
                    damaged[at] ^= UInt8.random(in: 1 ... 255, using: &rng)
                    changes.append("xor@\(at)")
                }
            }
            let fixCRC = Int.random(in: 0 ..< 10, using: &rng) < 7
            if fixCRC {
                damaged.withUnsafeMutableBytes { CRC32C.update($0, crcFieldAt: target.crcOffset) }
            }
            let label = "\(name) case \(index) (seed \(seed)): \(target) \(changes.joined(separator: " "))\(fixCRC ? " +crc" : "")"
            try? label.write(toFile: breadcrumb, atomically: false, encoding: .utf8)
            try image.write(damaged, target)

            // The read path runs on its own thread so a hang fails this test instead of
            // stalling it; a trap kills the process, which fails the run.
            let done = DispatchSemaphore(value: 0)
            let result = Mutex<[String]?>(nil)
            let path = image.path
            let inodes = plan.inodes
            let start = DispatchTime.now()
            DispatchQueue.global().async {
                let errors = readEverything(path: path, inodes: inodes).map { "\($0)" }
                result.withLock { $0 = errors }
                done.signal()
            }
            guard done.wait(timeout: .now() + 10) == .success else {
                Issue.record("hang (over 10 s): \(label)")
                return
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            if seconds > slowest.0 { slowest = (seconds, label) }
            try image.write(original, target)

            let errors = result.withLock { $0 } ?? []
            if errors.isEmpty { cleanCases += 1 } else { refusedCases += 1 }
            for message in errors {
                #expect(!message.isEmpty && !message.contains("\n"), "one-line message: \(message.debugDescription) in \(label)")
                let kind = message.split(separator: ":").first.map { String($0).replacing(/\d+/, with: "N") } ?? message
                kinds[kind, default: 0] += 1
            }
        }
        try? FileManager.default.removeItem(atPath: breadcrumb)
        #expect(readEverything(path: image.path, inodes: plan.inodes).isEmpty, "every case was undone")
        #expect(refusedCases > 0 && cleanCases > 0)
        #expect(slowest.0 < 5, "slowest case \(slowest.0) s: \(slowest.1)")
        print("fuzz \(name): \(Self.casesPerImage) cases over \(plan.targets.count) targets and \(plan.inodes.count) inodes: "
            + "\(cleanCases) read cleanly, \(refusedCases) refused; slowest \(String(format: "%.3f", slowest.0)) s; "
            + "errors by place: \(kinds.sorted { $0.value > $1.value }.prefix(12).map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))")
    }
}
