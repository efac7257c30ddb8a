import ArgumentParser
import Glibc
import XFSBTree
import XFSBuffer
import XFSFormat
import XFSInMemoryBTree
import XFSMemoryFile
import XFSTransaction

/// `xfs-rmap bench large`: an in-memory rmap btree larger than memory would allow, built
/// and scanned with its memory file in a directory (on a disk) and, for comparison, in a
/// memfd: the time of each phase and the process's memory split into anonymous, file-backed
/// and shared (memfd) pages.
///
/// The records are generated in key order from a seed as the loader asks for them, so the
/// workload itself takes no memory; the engine's bulk loader builds the tree bottom-up in
/// one pass, full blocks, in one transaction.
struct BenchLarge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "large",
        abstract: "Build and scan an in-memory rmap btree with its memory file on disk, and in memory.",
        discussion: """
            Runs --records records (default 200 million) through the bulk loader into an \
            in-memory rmap btree whose memory file is an unnamed file in --memory-dir, then \
            scans it in key order; then the same with a memfd, unless --skip-memfd. Prints \
            each phase's time and the process's resident memory after it: anonymous (the heap), \
            file-backed (the memory file's pages in the page cache, which the kernel can write \
            back and drop) and shared (memfd pages, which only swap can take).
            """)

    @Option(help: "Records in the tree.")
    var records = 200_000_000

    @Option(help: ArgumentHelp("Directory for the disk-backed memory file.", valueName: "dir"))
    var memoryDir: String

    @Option(help: "Most bytes of blocks the target's buffer cache keeps.")
    var cache = 64 << 20

    @Flag(help: "Only the disk-backed run.")
    var skipMemfd = false

    @Option(help: "Seed of the generated records.")
    var seed: UInt64 = 0x5EED

    func validate() throws {
        guard records > 0 else { throw ValidationError("--records must be positive, not \(records)") }
        guard records <= Int(UInt32.max) / 2 else { throw ValidationError("--records must be at most \(UInt32.max / 2)") }
        guard isDirectory(memoryDir) else { throw ValidationError("--memory-dir \(memoryDir): not a directory") }
    }

    func run() throws {
        print("xfs-rmap bench large: \(records) rmap records generated in key order, seed \(seed); cache \(cache >> 20) MiB")
        var backings: [(String, MemoryFile.BackingChoice)] = [("file in \(memoryDir)", .only(.temporaryFile(directory: memoryDir)))]
        if !skipMemfd { backings.append(("memfd", .only(.memfd))) }
        var digests: Set<UInt64> = []
        for (name, backing) in backings {
            let result = try measure(backing)
            digests.insert(result)
            print("  (\(name) done)")
        }
        if digests.count > 1 { throw ToolFailure(description: "the runs' scans differ") }
    }

    /// The `i`-th record: start blocks two apart (strictly increasing keys), lengths 1 or
    /// 2, owners and offsets from a mixing of `i` and the seed.
    static func record(_ i: Int, seed: UInt64) -> RmapRecord {
        var x = UInt64(i) &+ seed
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        return RmapRecord(startBlock: UInt32(i * 2), blockCount: 1 + UInt32(x & 1), owner: 128 + (x >> 8) % 1_000_000,
                          offset: (x >> 32) % (1 << 30))
    }

    /// Builds and scans one tree on `backing`; prints the phases; returns the scan's digest.
    func measure(_ backing: MemoryFile.BackingChoice) throws -> UInt64 {
        let size = max(64 << 20, records * 32) / MemoryTarget.blockSize * MemoryTarget.blockSize + MemoryTarget.blockSize
        let file = try MemoryFile(name: "bench-large", maximumSize: size, backing: backing)
        print("\(file.backing):")
        let target = MemoryTarget(file: file, cacheCapacity: cache, exclusive: true)
        let tree = try InMemoryBTree<RmapFormat>(target: target)
        let transaction = Transaction()
        // The options in locals: a property wrapper's getter is not free per record.
        let count = records, seed = self.seed
        let start = ContinuousClock.now
        try tree.bulkLoad((0..<count).lazy.map { Self.record($0, seed: seed) }, count: count, in: transaction)
        try tree.commit(transaction)
        let built = ContinuousClock.now - start
        report("  build", built, extra: "height \(tree.height), \(tree.blockCount) blocks")

        let scanStart = ContinuousClock.now
        var digest: UInt64 = 0
        var index = 0
        var mismatch = false
        try tree.withCursor(in: transaction) { cursor in
            _ = try cursor.queryAll { r in
                if index % 4096 == 0 && r != Self.record(index, seed: seed) { mismatch = true }
                digest = digest &* 31 &+ UInt64(r.startBlock) &+ r.owner
                index += 1
                return .proceed
            }
        }
        try tree.commit(transaction)
        guard !mismatch, index == count else {
            throw ToolFailure(description: "the scan read \(index) records, or not the ones loaded")
        }
        report("  scan ", ContinuousClock.now - scanStart, extra: "digest \(String(digest, radix: 16))")
        return digest
    }

    /// One phase's line: its time, per record, and the resident memory split.
    func report(_ phase: String, _ time: Duration, extra: String) {
        let records = self.records
        let seconds = Double(time.components.seconds) + Double(time.components.attoseconds) / 1e18
        let memory = ResidentMemory.now()
        print("\(phase) \(decimal(seconds, places: 2)) s (\(decimal(seconds * 1e9 / Double(records), places: 2)) ns/record); resident: anonymous "
            + "\(memory.anonymous >> 20) MiB, file-backed \(memory.file >> 20) MiB, shared \(memory.shared >> 20) MiB; \(extra)")
    }
}

/// The process's resident memory by kind, from /proc/self/status (RssAnon, RssFile,
/// RssShmem), in bytes.
struct ResidentMemory {
    var anonymous = 0
    var file = 0
    var shared = 0

    static func now() -> ResidentMemory {
        var result = ResidentMemory()
        guard let handle = fopen("/proc/self/status", "r") else { return result }
        defer { fclose(handle) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), handle) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            guard fields.count >= 2, let kb = Int(fields[1]) else { continue }
            switch fields[0] {
            case "RssAnon:": result.anonymous = kb << 10
            case "RssFile:": result.file = kb << 10
            case "RssShmem:": result.shared = kb << 10
            default: break
            }
        }
        return result
    }
}
