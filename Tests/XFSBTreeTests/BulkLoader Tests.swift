import Testing
import XFSBTree
import XFSTestSupport

@Suite("Bulk loader")
struct BulkLoaderTests {
    @Test("XFS limits for 4 KiB blocks: 168/91 short (rmapbt), 167/83 long (in-memory rmapbt)")
    func limits() {
        let short = BTreeRecordLimits.computed(blockSize: 4096, format: ExtentFormat.self, pointer: UInt32.self)
        #expect(short == BTreeRecordLimits(leafMax: 168, leafMin: 84, nodeMax: 91, nodeMin: 45))
        let long = BTreeRecordLimits.computed(blockSize: 4096, format: ExtentFormat.self, pointer: UInt64.self)
        #expect(long == BTreeRecordLimits(leafMax: 167, leafMin: 83, nodeMax: 83, nodeMin: 41))
        let layout = BTreeLayout(format: ExtentFormat.self, pointer: UInt32.self, blockSize: 4096, limits: short)
        #expect(layout.pointerArrayOffset == 3696)  // 56 + 91 * 40, as xfs_db shows
    }

    @Test("geometry: default slack fills about 75%, extras go first, roots need one entry")
    func geometry() throws {
        let big = BTreeRecordLimits(leafMax: 167, nodeMax: 83)
        let g = try BTreeBulkGeometry(recordCount: 1000, limits: big, maxHeight: 5)
        #expect(g.leafSlack == 42 && g.nodeSlack == 21)
        #expect(g.levels.map(\.blocks) == [8, 1])
        #expect(g.levels[0].entriesPerBlock == 125 && g.levels[0].blocksWithExtra == 0)
        let tiny = BTreeRecordLimits(leafMax: 4, nodeMax: 4)
        let t = try BTreeBulkGeometry(recordCount: 10, limits: tiny, maxHeight: 8)
        #expect(t.levels.map(\.blocks) == [3, 1])
        #expect((0..<3).map { t.levels[0].entries(inBlock: $0) } == [4, 3, 3])
        let five = try BTreeBulkGeometry(recordCount: 5, limits: tiny, maxHeight: 8)
        #expect((0..<2).map { five.levels[0].entries(inBlock: $0) } == [3, 2])
        let full = try BTreeBulkGeometry(recordCount: 4, limits: tiny, maxHeight: 8)
        #expect(full.levels.map(\.blocks) == [1] && full.height == 1)
        let zeroSlack = try BTreeBulkGeometry(recordCount: 100, limits: tiny, leafSlack: 0, nodeSlack: 0, maxHeight: 8)
        #expect(zeroSlack.levels.map(\.blocks) == [25, 7, 2, 1])
        let capped = try BTreeBulkGeometry(recordCount: 100, limits: tiny, leafSlack: 9, maxHeight: 8)
        #expect(capped.leafSlack == 2)
        #expect(throws: BTreeError.self) {
            try BTreeBulkGeometry(recordCount: 100, limits: tiny, leafSlack: 0, nodeSlack: 0, maxHeight: 3)
        }
    }

    func loadAndCheck<Pointer: BTreePointer>(_ store: TestStore<Pointer>, count: Int, slack: Int?) throws {
        let records = (0..<count).map { KV(key: UInt64($0) * 3 + 1, value: UInt64($0)) }
        let g = try BTreeBulkLoader<KVFormat, TestStore<Pointer>>.load(
            records, count: count, into: store, leafSlack: slack, nodeSlack: slack
        ) {
            guard let p = try store.allocateBlock() else { throw BTreeError.noSpace(btree: "test") }
            return p
        }
        let tree = BTree<KVFormat, TestStore<Pointer>>(store: store)
        let report = tree.verify()
        #expect(report.isClean, "\(count) records, slack \(String(describing: slack)): \(report.faults.prefix(3))")
        #expect(report.records == count && report.blocks == g.totalBlocks && store.height == g.height)
        var back: [KV] = []
        try tree.queryAll { back.append($0); return .proceed }
        #expect(back == records)
        #expect(try tree.countBlocks() == g.totalBlocks)
        #expect(store.holds == 0)
        // The loaded tree takes ordinary updates afterwards.
        var c = tree.makeCursor()
        for r in records.prefix(50) where r.key % 2 == 0 {
            #expect(try c.lookup(r.key, .equal))
            try c.delete()
        }
        try c.insert(KV(key: 2, value: 0))
        c.close()
        #expect(tree.verify().isClean)
    }

    @Test("loaded trees verify and read back identical",
          arguments: [0, 1, 4, 5, 16, 17, 100, 1000, 5000], [nil, 0, 1, 2] as [Int?])
    func tinyLoads(count: Int, slack: Int?) throws {
        try loadAndCheck(TestStore<UInt64>(format: KVFormat.self, limits: BTreeRecordLimits(leafMax: 4, nodeMax: 4)), count: count, slack: slack)
        try loadAndCheck(TestStore<UInt32>(format: KVFormat.self, limits: BTreeRecordLimits(leafMax: 5, nodeMax: 3)), count: count, slack: slack)
    }

    @Test("4 KiB loads, including a three-level tree", arguments: [0, 1, 251, 252, 40_000, 100_000])
    func bigLoads(count: Int) throws {
        try loadAndCheck(TestStore<UInt64>(blockSize: 4096), count: count, slack: nil)
    }

    @Test("overlapping loads keep every high key")
    func overlappingLoad() throws {
        var g = SeededRandom(seed: 99)
        var records: [Extent] = []
        var start: UInt32 = 0
        for _ in 0..<3000 {
            start += UInt32(g.next() % 3)
            records.append(Extent(start: start, length: UInt32(1 + g.next() % 50), owner: g.next() % 1000, offset: 0))
        }
        records.sort { ExtentFormat.lowKey(of: $0) < ExtentFormat.lowKey(of: $1) }
        var unique: [Extent] = []
        for r in records where unique.last.map({ ExtentFormat.lowKey(of: $0) < ExtentFormat.lowKey(of: r) }) ?? true { unique.append(r) }
        let store = TestStore<UInt32>(format: ExtentFormat.self, limits: BTreeRecordLimits(leafMax: 6, nodeMax: 5))
        try BTreeBulkLoader<ExtentFormat, TestStore<UInt32>>.load(unique, count: unique.count, into: store) { try store.allocateBlock()! }
        let tree = BTree<ExtentFormat, TestStore<UInt32>>(store: store)
        #expect(tree.verify().isClean)
        let lo = ExtentKey(start: 500, owner: 0, offset: 0), hi = ExtentKey(start: 900, owner: .max, offset: .max)
        var got: [Extent] = []
        try tree.query(from: lo, through: hi) { got.append($0); return .proceed }
        #expect(got == unique.filter { !(ExtentFormat.highKey(of: $0) < lo) && !(hi < ExtentFormat.lowKey(of: $0)) })
    }
}
