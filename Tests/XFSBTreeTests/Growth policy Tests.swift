import Testing
import XFSBTree
import XFSTestSupport

/// `.batchedShifts`: inserts at the end of a full block split it there, without shifts.
@Suite("Growth policy: ascending runs")
struct GrowthPolicyTests {
    func makeTree(leafMax: Int = 4, nodeMax: Int = 4) throws -> KVTree {
        let store = KVStore(format: KVFormat.self, limits: BTreeRecordLimits(leafMax: leafMax, nodeMax: nodeMax))
        store.growthPolicy = .batchedShifts
        return try KVTree.createEmpty(in: store)
    }

    @Test("appends shift a blockful at once into the left sibling")
    func appendsShiftBlockfuls() throws {
        let tree = try makeTree()
        var c = tree.makeCursor()
        for k in stride(from: UInt64(10), through: 130, by: 10) { try c.insert(KV(key: k, value: k)) }
        #expect(try shape(tree) == [
            [[10, 50, 90, 110]],
            [[10, 20, 30, 40], [50, 60, 70, 80], [90, 100], [110, 120, 130]],
        ])
        #expect(c.record?.key == 130)
        #expect(tree.verify().isClean)
        c.close()
        #expect(tree.store.holds == 0)
    }

    @Test("ascending runs build the kernel's full blocks with a fraction of the writes",
          arguments: [0, 1, 3])
    func fewerWrites(tail: Int) throws {
        var dirtyBytes: [BTreeGrowthPolicy: Int] = [:]
        for policy in [BTreeGrowthPolicy.kernel, .batchedShifts] {
            let store = KVStore(format: KVFormat.self, limits: BTreeRecordLimits(leafMax: 64, nodeMax: 16))
            store.growthPolicy = policy
            let tree = try KVTree.createEmpty(in: store)
            var c = tree.makeCursor()
            // A few large records first: the run then goes in just before them.
            for i in 0..<tail { try c.insert(KV(key: 1_000_000 + UInt64(i), value: 0)) }
            store.dirtyBytes = 0
            for k in 0..<UInt64(6_000) { try c.insert(KV(key: k, value: k)) }
            dirtyBytes[policy] = store.dirtyBytes
            let report = tree.verify()
            #expect(report.isClean, "\(policy): \(report.faults.prefix(3))")
            // Every leaf but the last three is full, either way.
            let leaves = try shape(tree).last ?? []
            #expect(leaves.dropLast(3).allSatisfy { $0.count == 64 }, "\(policy): \(leaves.map(\.count))")
            c.close()
        }
        let kernel = dirtyBytes[.kernel] ?? 0, runs = dirtyBytes[.batchedShifts] ?? 0
        #expect(runs * 3 < kernel, "bytes logged: kernel \(kernel), ascending runs \(runs)")
    }

    @Test("inserts away from the end still shift and split the kernel's way")
    func middleInsertsAsKernel() throws {
        let tree = try makeTree()
        var c = tree.makeCursor()
        for k: UInt64 in [10, 20, 30, 40, 50, 25, 15] { try c.insert(KV(key: k, value: k)) }
        try c.insert(KV(key: 12, value: 0))
        let kernel = try makeKVTree()
        var k = kernel.makeCursor()
        for key: UInt64 in [10, 20, 30, 40, 50, 25, 15, 12] { try k.insert(KV(key: key, value: key)) }
        #expect(try shape(tree).last?.first == [10, 12, 15, 20])
        #expect(try shape(kernel).last?.first == [10, 12, 15, 20])
    }

    @Test("overlapping keys stay exact through runs, deletes and random inserts",
          arguments: [(UInt64(41), 4, 4), (42, 5, 3), (43, 3, 3), (44, 7, 5)])
    func overlappingRuns(seed: UInt64, leafMax: Int, nodeMax: Int) throws {
        let store = TestStore<UInt32>(format: ExtentFormat.self, limits: BTreeRecordLimits(leafMax: leafMax, nodeMax: nodeMax), maxHeight: 24)
        store.growthPolicy = .batchedShifts
        let tree = try BTree<ExtentFormat, TestStore<UInt32>>.createEmpty(in: store)
        var model: [Extent] = []
        var random = SeededRandom(seed: seed)
        var c = tree.makeCursor()
        var next: UInt32 = 0
        for op in 1...6_000 {
            let record: Extent
            if random.next() % 4 == 0 {
                // A random record anywhere.
                record = Extent(start: UInt32(random.next() % 3_000), length: UInt32(1 + random.next() % 16),
                                owner: random.next() % 4, offset: random.next() % 64)
            } else {
                // The next record of an ascending run.
                next = next >= 3_000 ? UInt32(random.next() % 100) : next + UInt32(1 + random.next() % 3)
                record = Extent(start: next, length: UInt32(1 + random.next() % 16), owner: random.next() % 4, offset: 0)
            }
            let key = ExtentFormat.lowKey(of: record)
            let i = model.firstIndex { !(ExtentFormat.lowKey(of: $0) < key) } ?? model.count
            if i < model.count && ExtentFormat.lowKey(of: model[i]) == key {
                #expect(try c.lookup(key, .equal))
                try c.delete()
                model.remove(at: i)
            } else {
                try c.insert(record)
                model.insert(record, at: i)
            }
            if op % 250 == 0 {
                let report = tree.verify()
                #expect(report.isClean, "seed \(seed) op \(op): \(report.faults.prefix(3))")
                var all: [Extent] = []
                try c.queryAll { all.append($0); return .proceed }
                #expect(all == model, "seed \(seed) op \(op)")
            }
        }
        c.close()
        #expect(store.holds == 0)
    }
}
