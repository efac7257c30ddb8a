import XFSInMemoryBTrees

// The record index (RecordIndex) on the btree benchmark's workload, for `xfs-rmap bench
// btree --api both`: the same records and probes as RmapBenchmark.run, written the way a
// user of the library writes them (an IndexRecord with a compound IndexKey, no pointers),
// so that the two runs measure what the high-level API costs over the raw format API.

/// An rmap record as a library user would declare it: 24 bytes, keyed by (start block,
/// owner, offset), covering its blocks as an interval, like the rmapbt's records.
struct BenchExtent: IndexRecord {
    var startBlock: UInt32
    var blockCount: UInt32
    var owner: UInt64
    var offset: UInt64

    var key: BenchExtentKey { BenchExtentKey(startBlock: startBlock, owner: owner, offset: offset) }
    var lastKey: BenchExtentKey {
        BenchExtentKey(startBlock: startBlock &+ blockCount &- 1, owner: owner, offset: offset)
    }
    static var coversKeyInterval: Bool { true }
    static var encodedSize: Int { 24 }

    func encode(to writer: inout RecordWriter) {
        writer.write(startBlock)
        writer.write(blockCount)
        writer.write(owner)
        writer.write(offset)
    }

    init(startBlock: UInt32, blockCount: UInt32, owner: UInt64, offset: UInt64) {
        self.startBlock = startBlock
        self.blockCount = blockCount
        self.owner = owner
        self.offset = offset
    }

    init(from reader: inout RecordReader) {
        startBlock = reader.read()
        blockCount = reader.read()
        owner = reader.read()
        offset = reader.read()
    }

    /// The key's three fields, skipping the block count (as the rmapbt format does).
    static func decodeKey(from reader: inout RecordReader) -> BenchExtentKey {
        let startBlock: UInt32 = reader.read()
        reader.skip(4)
        return BenchExtentKey(startBlock: startBlock, owner: reader.read(), offset: reader.read())
    }
}

/// The key of a `BenchExtent`: 20 bytes, compared field by field.
struct BenchExtentKey: IndexKey {
    var startBlock: UInt32
    var owner: UInt64
    var offset: UInt64

    static func < (a: BenchExtentKey, b: BenchExtentKey) -> Bool {
        (a.startBlock, a.owner, a.offset) < (b.startBlock, b.owner, b.offset)
    }
    static var encodedSize: Int { 20 }

    func encode(to writer: inout RecordWriter) {
        writer.write(startBlock)
        writer.write(owner)
        writer.write(offset)
    }

    init(startBlock: UInt32, owner: UInt64, offset: UInt64) {
        self.startBlock = startBlock
        self.owner = owner
        self.offset = offset
    }

    init(from reader: inout RecordReader) {
        startBlock = reader.read()
        owner = reader.read()
        offset = reader.read()
    }

    /// Start blocks spread evenly, as the rmapbt format says of its keys.
    var interpolationPosition: UInt64? { UInt64(startBlock) }
}

/// Runs the btree benchmark's workload through a `RecordIndex`.
enum IndexBenchmark {
    /// Inserts every record (each committed before the next), then one "last record at or
    /// before" lookup per probe, then one in-order iteration; the same measurements and
    /// digest as `RmapBenchmark.run`.
    static func run(_ workload: RmapBenchWorkload) throws -> RmapBenchMeasurement {
        let count = workload.records.count
        let records = workload.records.map {
            BenchExtent(startBlock: $0.startBlock, blockCount: $0.blockCount, owner: $0.owner, offset: $0.packedOffset)
        }
        let probes = workload.probes.map { BenchExtentKey(startBlock: $0.startBlock, owner: $0.owner, offset: $0.packedOffset) }
        let index = try RecordIndex<BenchExtent>(maximumSize: RmapBenchmark.targetSize(records: count), name: "bench-index")

        let insertStart = ContinuousClock.now
        for record in records { try index.insert(record) }
        let insertTime = ContinuousClock.now - insertStart

        let lookupStart = ContinuousClock.now
        var digest = RmapBenchDigest()
        for probe in probes {
            if let r = try index.lastRecord(atOrBefore: probe) {
                digest.mix(startBlock: r.startBlock, owner: r.owner, offset: r.offset, blockCount: r.blockCount)
            }
        }
        let lookupTime = ContinuousClock.now - lookupStart

        let scanStart = ContinuousClock.now
        var scanned = 0
        for r in index {
            digest.mix(startBlock: r.startBlock, owner: r.owner, offset: r.offset, blockCount: r.blockCount)
            scanned += 1
        }
        let scanTime = ContinuousClock.now - scanStart
        guard scanned == count, index.count == count else {
            throw ToolFailure(description: "index iteration saw \(scanned) of \(count) records")
        }
        return RmapBenchMeasurement(
            records: count,
            insertNanoseconds: nanoseconds(insertTime) / Double(count),
            lookupNanoseconds: nanoseconds(lookupTime) / Double(probes.count),
            scanNanoseconds: nanoseconds(scanTime) / Double(count),
            bytesPerRecord: Double(try index.residentBytes()) / Double(count),
            height: index.height, blocks: UInt64(index.blockCount), digest: digest.value)
    }

    static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}
