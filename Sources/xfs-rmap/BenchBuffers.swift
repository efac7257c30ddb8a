import ArgumentParser
import CXFSShims
import XFSBuffer
import XFSMemoryFile
#if canImport(Glibc)
import Glibc
#endif

/// `xfs-rmap bench buffers`: the cost of getting and releasing a memory-target buffer
/// (a hot page; a million random pages, cold then steady; the miss path under the
/// default cache cap), the same access done the xfsprogs way (mmap + munmap of one page
/// per buffer), and CRC32c throughput over 4 KiB blocks.
struct BenchBuffers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "buffers",
        abstract: "Measure buffer get+release on the memory target, mmap-per-buffer, and CRC32c.",
        discussion: "Build with `swift build -c release`; debug builds measure the debugger, not the code.")

    @Flag(help: "Print the results as one JSON object.")
    var json = false

    @Option(help: "Pages in the random-access file (default 1M pages = 4 GiB with 4 KiB pages).")
    var pages = 1 << 20

    @Option(help: "Get+release pairs on the hot page.")
    var hotIterations = 20_000_000

    mutating func run() throws {
        precondition(pages > 0 && hotIterations > 0, "--pages and --hot-iterations must be positive")
        var results: [(String, Double, String)] = []
        func record(_ key: String, _ value: Double, _ unit: String) {
            results.append((key, value, unit))
            if !json { print("\(key.padding(58)) \(format(value)) \(unit)") }
        }
        let page = MemoryFile.pageSize
        if !json {
            print("xfs-rmap bench buffers: page \(page) B, \(pages) random pages, CRC32c hardware: \(CRC32C.isHardwareAccelerated)")
        }

        // 1. One hot page through the memory target.
        do {
            let target = try MemoryTarget(name: "bench-hot", maximumSize: 1 << 30)
            let address = DiskAddress(0)
            target.release(try target.getBuffer(at: address, length: page))
            var sink: UInt8 = 0
            let nanoseconds = try measure(operations: hotIterations) {
                for _ in 0..<hotIterations {
                    let buffer = try target.getBuffer(at: address, length: page)
                    sink &+= buffer.unsafeMutableBytes[0]
                    target.release(buffer)
                }
            }
            blackHole(sink)
            record("memory target get+release, hot page", nanoseconds, "ns/op")
        }

        // 2. The same through mmap + munmap of the page each time (what xfsprogs does).
        let memfd = cxfs_memfd_create("bench-mmap", CXFS_MFD_CLOEXEC)
        guard memfd >= 0, ftruncate(memfd, off_t(pages) * off_t(page)) == 0 else {
            throw ValidationError("memfd for the mmap comparison failed: errno \(errno)")
        }
        defer { close(memfd) }
        let mmapHotIterations = max(1, hotIterations / 20)
        let mmapHot = try measure(operations: mmapHotIterations) {
            var sink: UInt8 = 0
            for _ in 0..<mmapHotIterations { sink &+= try mapReadUnmap(memfd, offset: 0, page: page) }
            blackHole(sink)
        }
        record("mmap+munmap per buffer, hot page", mmapHot, "ns/op")

        // 3. A million random pages: cold first touch, then steady state, all cached.
        let order = randomOrder(count: pages, seed: 0x5EED)
        do {
            let target = try MemoryTarget(name: "bench-random", maximumSize: pages * page,
                                          cacheCapacity: pages * page)
            let cold = try measure(operations: pages) {
                for number in order {
                    let buffer = try target.getBuffer(at: DiskAddress(Int64(Int(number) * page / 512)), length: page)
                    buffer.unsafeMutableBytes[0] = UInt8(truncatingIfNeeded: number)
                    target.release(buffer)
                }
            }
            record("memory target, \(pages) random pages, first touch", cold, "ns/op")
            let rounds = 3
            var sink: UInt8 = 0
            let steady = try measure(operations: pages * rounds) {
                for round in 0..<rounds {
                    for index in 0..<pages {
                        let number = order[(index &* 7 &+ round &* 13) % pages]
                        let buffer = try target.getBuffer(at: DiskAddress(Int64(Int(number) * page / 512)), length: page)
                        sink &+= buffer.unsafeMutableBytes[0]
                        target.release(buffer)
                    }
                }
            }
            blackHole(sink)
            record("memory target, \(pages) random pages, steady (all cached)", steady, "ns/op")
            let resident = try target.residentBytes()
            if !json { print("  (memory file resident: \(resident >> 20) MiB)") }

            // The miss path: the same file through a target with the default cap, so most
            // lookups create a buffer (and evict one).
            let capped = MemoryTarget(file: target.file)
            let missCount = min(pages, 1 << 20)
            let misses = try measure(operations: missCount) {
                var sink: UInt8 = 0
                for index in 0..<missCount {
                    let number = order[(index &* 11) % pages]
                    let buffer = try capped.getBuffer(at: DiskAddress(Int64(Int(number) * page / 512)), length: page)
                    sink &+= buffer.unsafeMutableBytes[0]
                    capped.release(buffer)
                }
                blackHole(sink)
            }
            let statistics = capped.cache.statistics
            record("memory target, random pages, default cap (\(statistics.misses) misses)", misses, "ns/op")
        }

        // 4. mmap + munmap per buffer over the same random pages.
        do {
            for number in order { _ = try mapWriteUnmap(memfd, offset: Int(number) * page, page: page) }
            let count = min(pages, 1 << 19)
            let randomMmap = try measure(operations: count) {
                var sink: UInt8 = 0
                for index in 0..<count {
                    sink &+= try mapReadUnmap(memfd, offset: Int(order[index]) * page, page: page)
                }
                blackHole(sink)
            }
            record("mmap+munmap per buffer, random pages", randomMmap, "ns/op")
        }

        // 5. CRC32c over 4 KiB blocks.
        let blockCount = 16_384 // 64 MiB of blocks
        let blocks = UnsafeMutableRawBufferPointer.allocate(byteCount: blockCount * 4096, alignment: 4096)
        defer { blocks.deallocate() }
        var generator = SplitMix(state: 42)
        for index in 0..<(blockCount * 512) {
            blocks.storeBytes(of: generator.next(), toByteOffset: index * 8, as: UInt64.self)
        }
        let hardwareRounds = 8, portableRounds = 2
        var crcSink: UInt32 = 0
        let hardware = try measure(operations: blockCount * hardwareRounds) {
            for _ in 0..<hardwareRounds {
                for index in 0..<blockCount {
                    crcSink ^= CRC32C.checksum(UnsafeRawBufferPointer(rebasing: blocks[(index * 4096)..<((index + 1) * 4096)]))
                }
            }
        }
        let portable = try measure(operations: blockCount * portableRounds) {
            for _ in 0..<portableRounds {
                for index in 0..<blockCount {
                    crcSink ^= CRC32C.portableChecksum(UnsafeRawBufferPointer(rebasing: blocks[(index * 4096)..<((index + 1) * 4096)]))
                }
            }
        }
        blackHole(UInt8(truncatingIfNeeded: crcSink))
        record("CRC32c hardware, 4 KiB blocks", 4096 / hardware, "GB/s")
        record("CRC32c portable, 4 KiB blocks", 4096 / portable, "GB/s")

        if json {
            let fields = results.map { key, value, unit in
                "\"\(key)\": {\"value\": \(format(value)), \"unit\": \"\(unit)\"}"
            }
            print("{" + fields.joined(separator: ", ") + "}")
        }
    }
}

/// Nanoseconds per operation of `body`, which performs `operations` operations.
private func measure(operations: Int, _ body: () throws -> Void) throws -> Double {
    let start = ContinuousClock.now
    try body()
    let elapsed = ContinuousClock.now - start
    let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
    return nanoseconds / Double(operations)
}

/// Maps one page of `descriptor`, reads its first byte, unmaps it: one xfsprogs buffer.
private func mapReadUnmap(_ descriptor: Int32, offset: Int, page: Int) throws -> UInt8 {
    guard let mapped = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, off_t(offset)),
          mapped != MAP_FAILED else {
        throw ValidationError("mmap at \(offset) failed: errno \(errno)")
    }
    let byte = mapped.load(as: UInt8.self)
    munmap(mapped, page)
    return byte
}

/// Maps one page, writes its first byte (allocating it), unmaps it.
private func mapWriteUnmap(_ descriptor: Int32, offset: Int, page: Int) throws -> UInt8 {
    guard let mapped = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, off_t(offset)),
          mapped != MAP_FAILED else {
        throw ValidationError("mmap at \(offset) failed: errno \(errno)")
    }
    mapped.storeBytes(of: 1, as: UInt8.self)
    munmap(mapped, page)
    return 1
}

/// A permutation of 0..<count, seeded.
private func randomOrder(count: Int, seed: UInt64) -> [UInt32] {
    var order = (0..<count).map { UInt32($0) }
    var generator = SplitMix(state: seed)
    order.shuffle(using: &generator)
    return order
}

/// SplitMix64, for reproducible benchmark inputs.
private struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Keeps a value alive so the optimizer cannot delete the loop that made it.
@inline(never)
private func blackHole(_ value: UInt8) {
    if value == 0xFF && getpid() == -1 { print(value) }
}

/// Two decimals.
private func format(_ value: Double) -> String {
    let scaled = (value * 100).rounded() / 100
    return "\(scaled)"
}

extension String {
    /// The string padded with spaces to `width`.
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
