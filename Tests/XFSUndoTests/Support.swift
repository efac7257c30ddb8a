import Foundation
import Synchronization
import Testing
import XFSBuffer
import XFSTestSupport
@testable import XFSUndo

/// An in-use check that never refuses (the images in these tests are plain files).
let notInUse: @Sendable (String) -> String? = { _ in nil }

/// A scratch copy of a real fixture image and a private directory for undo files; both are
/// removed when this value is freed.
final class Scratch {
    /// The fixture's name.
    let fixture: String
    /// The read-only decompressed fixture: the original to compare against.
    let original: String
    /// The writable copy.
    let image: String
    /// A fresh directory for undo files.
    let directory: String

    /// Copies `fixture` (empty-4k unless told: small, so its first fsync is cheap) and makes
    /// the directory.
    init(_ fixture: String = "empty-4k") throws {
        self.fixture = fixture
        original = try Fixtures.imagePath(fixture)
        image = try Fixtures.writableCopy(fixture)
        directory = NSTemporaryDirectory() + "/xfs-undo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
    }

    /// A path in the directory.
    func path(_ name: String) -> String { directory + "/" + name }

    /// A writer for this image with identity = the superblock UUID (32, 16 bytes).
    func writer(undo name: String = "rebuild.undo", blob: [UInt8] = [],
                systemCalls: UndoSystemCalls = .live) -> UndoableWriter {
        UndoableWriter(imagePath: image, undoFilePath: path(name), identityOffset: 32, identityLength: 16,
                       blob: blob, systemCalls: systemCalls)
    }

    /// Whether the copy is byte for byte the original.
    func isOriginal() throws -> Bool { try sameContents(image, original) }

    deinit {
        try? FileManager.default.removeItem(atPath: image)
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// `count` bytes of `path` at `offset`.
func readBytes(_ path: String, at offset: Int64, count: Int) throws -> [UInt8] {
    try ImageFile(path: path).read(at: UInt64(offset), count: count)
}

/// Writes `bytes` at `offset` of `path`.
func writeBytes(_ path: String, at offset: Int64, _ bytes: [UInt8]) throws {
    let handle = try #require(FileHandle(forUpdatingAtPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: bytes)
}

/// The size of `path` in bytes.
func fileSize(_ path: String) throws -> Int64 {
    try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber).int64Value
}

/// Sets the length of `path`.
func truncateFile(_ path: String, to length: Int64) throws {
    #expect(truncate(path, off_t(length)) == 0)
}

/// The whole of a (small) file.
func fileBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Whether two files hold the same bytes. Ranges that are holes in both (zeros) are
/// skipped with SEEK_DATA, so comparing sparse 1 GiB images reads only their data.
func sameContents(_ first: String, _ second: String) throws -> Bool {
    let a = open(first, O_RDONLY | O_CLOEXEC)
    let b = open(second, O_RDONLY | O_CLOEXEC)
    defer { close(a); close(b) }
    try #require(a >= 0 && b >= 0)
    let size = lseek(a, 0, SEEK_END)
    guard size == lseek(b, 0, SEEK_END) else { return false }
    /// The next offset at or after `position` holding data (the size when none).
    func nextData(_ descriptor: Int32, _ position: off_t) -> off_t {
        let found = lseek(descriptor, position, 3) // SEEK_DATA
        return found < 0 ? size : found
    }
    let chunk = 1 << 20
    var left = [UInt8](repeating: 0, count: chunk)
    var right = [UInt8](repeating: 0, count: chunk)
    var position: off_t = 0
    while position < size {
        let start = min(nextData(a, position), nextData(b, position))
        guard start < size else { break }
        let count = Int(min(off_t(chunk), size - start))
        let readLeft = left.withUnsafeMutableBytes { pread(a, $0.baseAddress, count, start) }
        let readRight = right.withUnsafeMutableBytes { pread(b, $0.baseAddress, count, start) }
        try #require(readLeft == count && readRight == count)
        let equal = left.withUnsafeBytes { l in right.withUnsafeBytes { r in memcmp(l.baseAddress!, r.baseAddress!, count) == 0 } }
        guard equal else { return false }
        position = start + off_t(count)
    }
    return true
}

/// A plan like a rebuild's, for any 4 KiB-block v5 image: (1) the superblock sector with
/// NEEDSREPAIR set; (2) new blocks (16 KiB at block 5, 4 KiB at block 12, 8 KiB in the
/// middle of the image); (3) the AGF and AGFL sectors and block 6 again (inside the 16 KiB
/// of phase 2); (4) the superblock sector with NEEDSREPAIR cleared and a new free-block
/// count. Eight writes; sector 0 and block 6 are written twice.
struct SamplePlan {
    /// The plan.
    let plan: ImageWritePlan
    /// What each byte range the plan writes holds after it: (offset, bytes), last write wins.
    let final: [(offset: Int64, bytes: [UInt8])]
    /// The superblock as the run leaves it (the blob a rebuild would keep).
    let finalSuperblock: [UInt8]
    /// Every distinct region's (offset, length), sorted.
    static let regions: [(offset: Int64, length: Int)] = [
        (0, 512), (512, 512), (1536, 512), (5 * 4096, 4096), (6 * 4096, 4096), (7 * 4096, 8192),
        (12 * 4096, 4096),
    ] // plus the one in the middle of the image, see `middle`

    /// The byte offset of the 8 KiB write in the middle of the image.
    static func middle(_ imageSize: Int64) -> Int64 { imageSize / 2 / 4096 * 4096 + 40 * 4096 }

    /// Builds the plan from the image's current superblock sector.
    init(image: String, seed: UInt64 = 7) throws {
        var random = SeededRandom(seed: seed)
        func noise(_ count: Int) -> [UInt8] { (0 ..< count).map { _ in UInt8.random(in: 0 ... 255, using: &random) } }
        let sector0 = try readBytes(image, at: 0, count: 512)
        let imageSize = try fileSize(image)
        var flagged = sector0
        flagged[219] |= 0x10 // sb_features_incompat (big-endian at 216): NEEDSREPAIR
        flagged.withUnsafeMutableBytes { CRC32C.update($0, crcFieldAt: 224) }
        var cleared = sector0
        cleared[151] &+= 3 // sb_fdblocks (big-endian at 144): a new count
        cleared.withUnsafeMutableBytes { CRC32C.update($0, crcFieldAt: 224) }
        let newRun = noise(16384), block12 = noise(4096), middle = noise(8192)
        let agf = noise(512), agfl = noise(512), block6 = noise(4096)
        typealias W = ImageWritePlan.Write
        plan = ImageWritePlan(phases: [
            [W(offset: 0, bytes: flagged)],
            [W(offset: 5 * 4096, bytes: newRun), W(offset: Self.middle(imageSize), bytes: middle),
             W(offset: 12 * 4096, bytes: block12)],
            [W(offset: 1536, bytes: agfl), W(offset: 6 * 4096, bytes: block6), W(offset: 512, bytes: agf)],
            [W(offset: 0, bytes: cleared)],
        ])
        final = [(0, cleared), (512, agf), (1536, agfl), (5 * 4096, Array(newRun[0 ..< 4096])),
                 (6 * 4096, block6), (7 * 4096, Array(newRun[8192...])), (12 * 4096, block12),
                 (Self.middle(imageSize), middle)]
        finalSuperblock = cleared
    }

    /// Expects the image to hold what the plan leaves.
    func expectFinal(in image: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for (offset, bytes) in final {
            #expect(try readBytes(image, at: offset, count: bytes.count) == bytes,
                    "bytes at \(offset) after the run", sourceLocation: sourceLocation)
        }
    }
}

/// A system-call table that records, in order, the calls `base` makes: "open PATH",
/// "pwrite PATH OFFSET", "fsync PATH" (descriptors named by the path they were opened at).
final class CallRecorder: Sendable {
    /// The recorded calls and the open descriptors' paths.
    final class Log: Sendable {
        /// The calls, and the path of each open descriptor.
        let state = Mutex<(calls: [String], paths: [Int32: String])>(([], [:]))
    }

    /// The log the table writes.
    private let log: Log
    /// The recording table.
    let systemCalls: UndoSystemCalls

    /// Records what `base` is asked.
    init(base: UndoSystemCalls = .live) {
        let log = Log()
        var calls = base
        calls.open = { path, flags, mode in
            let result = base.open(path, flags, mode)
            if case let .success(descriptor) = result {
                log.state.withLock { $0.paths[descriptor] = path; $0.calls.append("open \(path)") }
            }
            return result
        }
        calls.pwrite = { descriptor, bytes, offset in
            log.state.withLock { $0.calls.append("pwrite \($0.paths[descriptor] ?? "?") \(offset)") }
            return base.pwrite(descriptor, bytes, offset)
        }
        calls.fsync = { descriptor in
            log.state.withLock { $0.calls.append("fsync \($0.paths[descriptor] ?? "?")") }
            return base.fsync(descriptor)
        }
        calls.close = { descriptor in
            log.state.withLock { _ = $0.paths.removeValue(forKey: descriptor) }
            base.close(descriptor)
        }
        self.log = log
        systemCalls = calls
    }

    /// The calls so far.
    var calls: [String] { log.state.withLock { $0.calls } }
}

/// A thread-safe counter for system-call closures.
final class Counter: Sendable {
    /// The count.
    private let value = Atomic<Int>(0)

    /// Counts one more and returns the new count (the first call returns 1).
    func next() -> Int { value.add(1, ordering: .relaxed).newValue }
}
