import Testing
import XFSBTree

typealias KVStore = TestStore<UInt64>
typealias KVTree = BTree<KVFormat, KVStore>

/// The keys of every block, level by level from the root, left to right.
func shape(_ tree: KVTree) throws -> [[[UInt64]]] {
    var levels: [[[UInt64]]] = Array(repeating: [], count: tree.store.height)
    try tree.visitBlocks { info in
        let b = tree.store.block(UInt64(info.pointer))
        let keys = (0..<info.numrecs).map { i in
            info.level == 0 ? KVFormat.loadRecord(from: b.record(i, tree.layout)).key
                : KVFormat.loadKey(from: b.key(i, tree.layout))
        }
        levels[tree.store.height - 1 - info.level].append(keys)
        return .proceed
    }
    return levels
}

func makeKVTree(leafMax: Int = 4, nodeMax: Int = 4) throws -> KVTree {
    let store = KVStore(format: KVFormat.self, limits: BTreeRecordLimits(leafMax: leafMax, nodeMax: nodeMax))
    return try KVTree.createEmpty(in: store)
}

@Suite("Split, shift and join decisions")
struct ShapeTests {
    @Test("an empty tree is one empty leaf")
    func emptyTree() throws {
        let tree = try makeKVTree()
        #expect(try shape(tree) == [[[]]])
        var c = tree.makeCursor()
        #expect(try !c.lookup(5, .lessOrEqual))
        #expect(try !c.lookup(5, .greaterOrEqual))
        #expect(try !c.lookup(5, .equal))
        #expect(try !c.moveToFirst())
        #expect(c.record == nil)
        #expect(tree.verify().isClean)
        c.close()
        #expect(tree.store.holds == 0)
    }

    @Test("a full root leaf splits evenly and grows a root")
    func rootSplit() throws {
        let tree = try makeKVTree()
        var c = tree.makeCursor()
        for k: UInt64 in [10, 20, 30, 40, 50] { try c.insert(KV(key: k, value: k)) }
        #expect(try shape(tree) == [[[10, 30]], [[10, 20], [30, 40, 50]]])
        #expect(c.record == KV(key: 50, value: 50))
        #expect(tree.store.height == 2)
    }

    @Test("an odd entry goes to the half that receives the insert")
    func oddSplit() throws {
        let tree = try makeKVTree(leafMax: 5, nodeMax: 4)
        var c = tree.makeCursor()
        for k: UInt64 in [10, 20, 30, 40, 50] { try c.insert(KV(key: k, value: k)) }
        try c.insert(KV(key: 15, value: 0))  // pos 1 <= 2: right takes 3, left gets the insert
        #expect(try shape(tree) == [[[10, 30]], [[10, 15, 20], [30, 40, 50]]])
        let t2 = try makeKVTree(leafMax: 5, nodeMax: 4)
        var c2 = t2.makeCursor()
        for k: UInt64 in [10, 20, 30, 40, 50] { try c2.insert(KV(key: k, value: k)) }
        try c2.insert(KV(key: 45, value: 0))  // pos 4 > 3: left keeps 3, right gets the insert
        #expect(try shape(t2) == [[[10, 40]], [[10, 20, 30], [40, 45, 50]]])
    }

    @Test("a full leaf shifts its last entry right before splitting")
    func rightShift() throws {
        let tree = try makeKVTree()
        var c = tree.makeCursor()
        for k: UInt64 in [10, 20, 30, 40, 50, 25, 15] { try c.insert(KV(key: k, value: k)) }
        #expect(try shape(tree) == [[[10, 30]], [[10, 15, 20, 25], [30, 40, 50]]])
        try c.insert(KV(key: 12, value: 0))
        #expect(try shape(tree) == [[[10, 25]], [[10, 12, 15, 20], [25, 30, 40, 50]]])
        #expect(c.record?.key == 12)
        #expect(tree.verify().isClean)
    }

    @Test("a full leaf shifts its first entry left when the right sibling is full or absent")
    func leftShift() throws {
        let tree = try makeKVTree()
        var c = tree.makeCursor()
        for k: UInt64 in [10, 20, 30, 40, 50, 45] { try c.insert(KV(key: k, value: k)) }
        #expect(try shape(tree) == [[[10, 30]], [[10, 20], [30, 40, 45, 50]]])
        try c.insert(KV(key: 42, value: 0))
        #expect(try shape(tree) == [[[10, 40]], [[10, 20, 30], [40, 42, 45, 50]]])
        #expect(c.record?.key == 42)
    }

    @Test("underfull leaves borrow, then join, then the root collapses")
    func borrowJoinKillRoot() throws {
        let tree = try makeKVTree()
        var c = tree.makeCursor()
        for k: UInt64 in [10, 20, 30, 40, 50, 45, 42] { try c.insert(KV(key: k, value: k)) }
        #expect(try shape(tree) == [[[10, 40]], [[10, 20, 30], [40, 42, 45, 50]]])
        for k: UInt64 in [10, 20] {
            #expect(try c.lookup(k, .equal))
            try c.delete()
        }
        // [30] is below minrecs 2: borrow 40 from the right sibling.
        #expect(try shape(tree) == [[[30, 42]], [[30, 40], [42, 45, 50]]])
        for k: UInt64 in [50, 45] {
            #expect(try c.lookup(k, .equal))
            try c.delete()
        }
        // [42] cannot borrow (left has only 2): join into the left; the root has one child.
        #expect(try shape(tree) == [[[30, 40, 42]]])
        #expect(tree.store.height == 1)
        #expect(tree.store.liveBlocks == 1)
        #expect(tree.verify().isClean)
    }

    @Test("borrowing from the left sibling")
    func borrowLeft() throws {
        let tree = try makeKVTree()
        var c = tree.makeCursor()
        for k: UInt64 in [10, 20, 30, 40, 50, 25, 15] { try c.insert(KV(key: k, value: k)) }
        #expect(try shape(tree) == [[[10, 30]], [[10, 15, 20, 25], [30, 40, 50]]])
        for k: UInt64 in [40, 50] {
            #expect(try c.lookup(k, .equal))
            try c.delete()
        }
        #expect(try shape(tree) == [[[10, 25]], [[10, 15, 20], [25, 30]]])
        #expect(c.record?.key == 25 || c.record == nil)
    }

    @Test("delete leaves the cursor on the following record")
    func deletePosition() throws {
        let tree = try makeKVTree()
        var c = tree.makeCursor()
        for k in stride(from: UInt64(1), through: 60, by: 1) { try c.insert(KV(key: k * 10, value: k)) }
        for k in stride(from: UInt64(2), through: 58, by: 4) {
            #expect(try c.lookup(k * 10, .equal))
            try c.delete()
            #expect(c.record?.key == (k + 1) * 10)
            #expect(tree.verify().isClean)
        }
        #expect(try c.moveToLast())
        try c.delete()
        #expect(c.record == nil)
        c.close()
        #expect(tree.store.holds == 0)
    }
}
