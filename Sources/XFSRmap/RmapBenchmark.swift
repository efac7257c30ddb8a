import XFSBTree
import XFSBuffer
import XFSFormat
import XFSInMemoryBTree
import XFSTransaction

// The btree benchmark: one workload (random rmap records and probe keys from a seed) and
// the in-memory rmap btree's runner over it. Public so that `xfs-rmap bench btree` and the
// separate Benchmarks package (which runs SQLite and LMDB on the same workload) measure
// exactly the same thing.

/// A seeded benchmark workload: rmap records in random order with distinct keys, and probe
/// keys for "greatest record <= key" lookups.
///
/// Records look like file data of many small files: start block uniform in [0, 2^31),
/// length 1...16, an inode-like owner uniform in [128, 2^20), an offset below 2^30, no
/// flags. Probes are drawn the same way (without length).
public struct RmapBenchWorkload: Sendable {
    /// The records, in insertion order.
    public let records: [RmapRecord]
    /// The lookup keys, one per record.
    public let probes: [RmapKey]

    /// Generates `count` records with distinct keys and `count` probes from `seed`.
    public init(records count: Int, seed: UInt64) {
        precondition(count > 0, "a workload needs at least one record, not \(count)")
        var random = SplitMix64(seed: seed)
        func nextRecord() -> RmapRecord {
            RmapRecord(startBlock: UInt32(truncatingIfNeeded: random.next() & 0x7FFF_FFFF),
                       blockCount: UInt32(truncatingIfNeeded: random.next() % 16 + 1),
                       owner: 128 + random.next() % ((1 << 20) - 128),
                       offset: random.next() & ((1 << 30) - 1))
        }
        var records = (0..<count).map { _ in nextRecord() }
        // Distinct keys: replace every later duplicate by a fresh record until none is left
        // (with 2^31 start blocks a duplicate key is rare; the loop almost never runs twice).
        while true {
            let sorted = records.sorted { RmapFormat.lowKey(of: $0) < RmapFormat.lowKey(of: $1) }
            var duplicates = Set<RmapKey>()
            for i in sorted.indices.dropFirst() where RmapFormat.lowKey(of: sorted[i - 1]) == RmapFormat.lowKey(of: sorted[i]) {
                duplicates.insert(RmapFormat.lowKey(of: sorted[i]))
            }
            if duplicates.isEmpty { break }
            var seen = Set<RmapKey>()
            for i in records.indices where duplicates.contains(RmapFormat.lowKey(of: records[i])) {
                if !seen.insert(RmapFormat.lowKey(of: records[i])).inserted { records[i] = nextRecord() }
            }
        }
        self.records = records
        self.probes = (0..<count).map { _ in
            RmapKey(startBlock: UInt32(truncatingIfNeeded: random.next() & 0x7FFF_FFFF),
                    owner: 128 + random.next() % ((1 << 20) - 128),
                    packedOffset: random.next() & ((1 << 30) - 1))
        }
    }

    /// The records in key order.
    public func sortedRecords() -> [RmapRecord] {
        records.sorted { RmapFormat.lowKey(of: $0) < RmapFormat.lowKey(of: $1) }
    }
}

/// What the in-memory rmap btree measured on one workload.
public struct RmapBenchMeasurement: Sendable {
    /// Records inserted.
    public var records: Int
    /// Nanoseconds per insert, each in its own committed transaction.
    public var insertNanoseconds: Double
    /// Nanoseconds per "greatest record <= key" lookup, record read included.
    public var lookupNanoseconds: Double
    /// Nanoseconds per record of one full in-order scan.
    public var scanNanoseconds: Double
    /// Resident bytes of the memory target after the inserts, per record.
    public var bytesPerRecord: Double
    /// Tree height after the inserts.
    public var height: Int
    /// Blocks in use after the inserts.
    public var blocks: UInt64
    /// The digest of the lookups' results then the scan's records (see `RmapBenchDigest`).
    public var digest: UInt64

    /// A measurement of another implementation of the same workload.
    public init(records: Int, insertNanoseconds: Double, lookupNanoseconds: Double, scanNanoseconds: Double,
                bytesPerRecord: Double, height: Int, blocks: UInt64, digest: UInt64) {
        self.records = records
        self.insertNanoseconds = insertNanoseconds
        self.lookupNanoseconds = lookupNanoseconds
        self.scanNanoseconds = scanNanoseconds
        self.bytesPerRecord = bytesPerRecord
        self.height = height
        self.blocks = blocks
        self.digest = digest
    }
}

/// What a bulk load of the sorted records measured.
public struct RmapBulkMeasurement: Sendable {
    /// The leaf slack asked for (nil: the loader's default, about 75% full).
    public var leafSlack: Int?
    /// Nanoseconds per record of the load (commit included).
    public var loadNanoseconds: Double
    /// Resident bytes of the memory target after the load, per record.
    public var bytesPerRecord: Double
    /// Tree height.
    public var height: Int
    /// Blocks the load claimed.
    public var blocks: Int
}

/// The order-sensitive digest the benchmark's implementations agree on: FNV-style mixing
/// of (startblock, owner, offset word, blockcount) per record.
public struct RmapBenchDigest: Sendable, Equatable {
    /// The running value.
    public var value: UInt64 = 0xCBF2_9CE4_8422_2325

    /// An empty digest.
    public init() {}

    /// Mixes in one record.
    @inlinable @inline(__always)
    public mutating func mix(startBlock: UInt32, owner: UInt64, offset: UInt64, blockCount: UInt32) {
        value = (value ^ UInt64(startBlock)) &* 0x100_0000_01B3
        value = (value ^ owner) &* 0x100_0000_01B3
        value = (value ^ offset) &* 0x100_0000_01B3
        value = (value ^ UInt64(blockCount)) &* 0x100_0000_01B3
    }

    /// Mixes in one rmap record (its packed offset word).
    @inlinable @inline(__always)
    public mutating func mix(_ r: RmapRecord) {
        mix(startBlock: r.startBlock, owner: r.owner, offset: r.packedOffset, blockCount: r.blockCount)
    }
}

/// Why the benchmark stopped.
public struct RmapBenchFailure: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String
}

/// Runs the workload on in-memory rmap btrees.
public enum RmapBenchmark {
    /// The name each growth policy's results go by: "xfbtree-swift" for the kernel's,
    /// "xfbtree-swift-batched" for `.batchedShifts`.
    public static func implementationName(_ policy: BTreeGrowthPolicy) -> String {
        switch policy {
        case .kernel: "xfbtree-swift"
        case .batchedShifts: "xfbtree-swift-batched"
        }
    }

    /// The memory target size for `records` records: max(64 MiB, 64 B per record), in pages.
    public static func targetSize(records: Int) -> Int {
        let page = MemoryTarget.blockSize
        let bytes = max(64 << 20, records * 64)
        return (bytes + page - 1) / page * page
    }

    /// A fresh memory target for `records` records whose cache never evicts; one thread
    /// uses it, so its cache takes no lock.
    static func makeTarget(records: Int, name: String) throws -> MemoryTarget {
        let size = targetSize(records: records)
        return try MemoryTarget(name: name, maximumSize: size, cacheCapacity: size, exclusive: true)
    }

    /// Inserts every record one at a time, each with a new cursor in its own committed
    /// transaction (as repair stashes observations); then one lookup (LE, record read)
    /// per probe in one read-only transaction; then one full in-order scan. The tree grows
    /// by `growthPolicy` (batched shifts, the in-memory btree's default, unless told otherwise).
    public static func run(_ workload: RmapBenchWorkload, growthPolicy: BTreeGrowthPolicy = .batchedShifts) throws -> RmapBenchMeasurement {
        let count = workload.records.count
        let tree = try InMemoryBTree<RmapFormat>(target: try makeTarget(records: count, name: "bench-rmap"),
                                                 growthPolicy: growthPolicy)
        let transaction = Transaction()

        let insertStart = ContinuousClock.now
        for record in workload.records {
            try tree.withCursor(in: transaction) { cursor in try cursor.insert(record) }
            try tree.commit(transaction)
        }
        let insertTime = ContinuousClock.now - insertStart

        // The loops keep their digests in locals of the closures: a variable captured from
        // here would be checked for exclusive access on every record.
        let lookupStart = ContinuousClock.now
        let lookupDigest = try tree.withCursor(in: transaction) { cursor in
            var digest = RmapBenchDigest()
            for probe in workload.probes where try cursor.lookup(probe, .lessOrEqual) {
                guard let record = cursor.record else { throw RmapBenchFailure(description: "LE lookup found no record") }
                digest.mix(record)
            }
            return digest
        }
        try tree.commit(transaction)
        let lookupTime = ContinuousClock.now - lookupStart

        let scanStart = ContinuousClock.now
        let (digest, scanned) = try tree.withCursor(in: transaction) { cursor in
            var digest = lookupDigest
            var scanned = 0
            _ = try cursor.queryAll { record in
                digest.mix(record)
                scanned += 1
                return .proceed
            }
            return (digest, scanned)
        }
        try tree.commit(transaction)
        let scanTime = ContinuousClock.now - scanStart
        guard scanned == count else { throw RmapBenchFailure(description: "scan saw \(scanned) of \(count) records") }

        return RmapBenchMeasurement(
            records: count,
            insertNanoseconds: nanoseconds(insertTime) / Double(count),
            lookupNanoseconds: nanoseconds(lookupTime) / Double(workload.probes.count),
            scanNanoseconds: nanoseconds(scanTime) / Double(count),
            bytesPerRecord: Double(try tree.target.residentBytes()) / Double(count),
            height: tree.height, blocks: tree.blockCount, digest: digest.value)
    }

    /// Builds a tree from `sorted` (records in key order) with the engine's bulk loader at
    /// `leafSlack` (nil: the default, about 75% full; 0: full leaves), in one committed
    /// transaction, and checks that a scan gives the records back unchanged.
    public static func bulkLoad(_ sorted: [RmapRecord], leafSlack: Int?) throws -> RmapBulkMeasurement {
        let tree = try InMemoryBTree<RmapFormat>(target: try makeTarget(records: sorted.count, name: "bench-rmap-bulk"))
        let store = tree.store
        let transaction = Transaction()
        let start = ContinuousClock.now
        let geometry = try tree.withCursor(in: transaction) { _ in
            try BTreeBulkLoader<RmapFormat, InMemoryBlockStore<RmapFormat>>.load(
                sorted, count: sorted.count, into: store, leafSlack: leafSlack, nodeSlack: leafSlack
            ) {
                guard let block = try store.allocateBlock() else { throw BTreeError.noSpace(btree: RmapFormat.name) }
                return block
            }
        }
        try tree.commit(transaction)
        let loadTime = ContinuousClock.now - start

        var index = 0
        _ = try tree.withCursor(in: transaction) { cursor in
            try cursor.queryAll { record in
                guard index < sorted.count, record == sorted[index] else {
                    throw RmapBenchFailure(description: "bulk-loaded tree differs from the input at record \(index)")
                }
                index += 1
                return .proceed
            }
        }
        try tree.commit(transaction)
        guard index == sorted.count else {
            throw RmapBenchFailure(description: "bulk-loaded tree holds \(index) of \(sorted.count) records")
        }
        return RmapBulkMeasurement(
            leafSlack: leafSlack, loadNanoseconds: nanoseconds(loadTime) / Double(sorted.count),
            bytesPerRecord: Double(try tree.target.residentBytes()) / Double(sorted.count),
            height: geometry.height, blocks: geometry.totalBlocks)
    }

    static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}

/// A small, fast, seedable generator (SplitMix64), so that every implementation sees the
/// same workload from the same seed.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
