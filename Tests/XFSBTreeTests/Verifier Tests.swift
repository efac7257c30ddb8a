import Testing
import XFSBTree

/// A four-level plain tree (leaf/node max 4, 60 records) built by inserts.
func corruptibleTree() throws -> KVTree {
    let tree = try makeKVTree()
    var c = tree.makeCursor()
    for k in 0..<60 { try c.insert(KV(key: UInt64(k) * 10, value: UInt64(k))) }
    c.close()
    #expect(tree.store.height >= 3)
    #expect(tree.verify().isClean)
    return tree
}

/// Blocks by level (0 = leaves), each level left to right.
func blocksByLevel<F: BTreeRecordFormat, P: BTreePointer>(_ tree: BTree<F, TestStore<P>>) throws -> [[P]] {
    var levels = [[P]](repeating: [], count: tree.store.height)
    try tree.visitBlocks { levels[$0.level].append(P($0.pointer)); return .proceed }
    return levels
}

func has(_ report: BTreeVerifyReport, _ check: BTreeCheck, pointer: UInt64?, level: Int?, index: Int? = nil) -> Bool {
    report.faults.contains { $0.check == check && $0.pointer == pointer && $0.level == level && (index == nil || $0.index == index) }
}

@Suite("Verifier and corrupt trees")
struct VerifierTests {
    @Test("records out of order inside a leaf")
    func keyOrder() throws {
        let tree = try corruptibleTree()
        let leaf = try blocksByLevel(tree)[0][2]
        let b = tree.store.block(leaf)
        let r1 = KVFormat.loadRecord(from: b.record(1, tree.layout)), r2 = KVFormat.loadRecord(from: b.record(2, tree.layout))
        KVFormat.storeRecord(r2, to: b.record(1, tree.layout))
        KVFormat.storeRecord(r1, to: b.record(2, tree.layout))
        let report = tree.verify()
        #expect(has(report, .keyOrder, pointer: leaf, level: 0, index: 2))
    }

    @Test("a parent key that differs from its child's first key")
    func parentKey() throws {
        let tree = try corruptibleTree()
        let node = try blocksByLevel(tree)[1][1]
        let b = tree.store.block(node)
        let k = KVFormat.loadKey(from: b.key(1, tree.layout))
        KVFormat.storeKey(k - 1, to: b.key(1, tree.layout))
        let report = tree.verify()
        #expect(has(report, .parentKey, pointer: node, level: 1, index: 1))
        #expect(report.faults.count == 1)
    }

    @Test("an overlapping parent whose high key is not its child's largest")
    func highKey() throws {
        let store = TestStore<UInt32>(format: ExtentFormat.self, limits: BTreeRecordLimits(leafMax: 4, nodeMax: 4))
        let tree = try BTree<ExtentFormat, TestStore<UInt32>>.createEmpty(in: store)
        var c = tree.makeCursor()
        for i in 0..<40 { try c.insert(Extent(start: UInt32(i * 3), length: UInt32(1 + i % 7), owner: 1, offset: 0)) }
        c.close()
        #expect(tree.verify().isClean)
        let node = try blocksByLevel(tree)[1][0]
        let b = store.block(node)
        var hk = ExtentFormat.loadKey(from: b.highKey(1, tree.layout))
        hk.start += 1
        ExtentFormat.storeKey(hk, to: b.highKey(1, tree.layout))
        let report = tree.verify()
        #expect(has(report, .highKey, pointer: UInt64(node), level: 1, index: 1))
    }

    @Test("numrecs below min and above max")
    func numrecs() throws {
        let tree = try corruptibleTree()
        let leaves = try blocksByLevel(tree)[0]
        tree.store.block(leaves[1]).numrecs = 1
        tree.store.block(leaves[3]).numrecs = 9
        let report = tree.verify()
        #expect(has(report, .numrecs, pointer: leaves[1], level: 0))
        #expect(has(report, .numrecs, pointer: leaves[3], level: 0))
        var c = tree.makeCursor()
        #expect(throws: BTreeError.self) { try c.queryAll { _ in .proceed } }
    }

    @Test("a sibling loop and a self-sibling are reported, and walks stop")
    func siblingLoops() throws {
        let tree = try corruptibleTree()
        let leaves = try blocksByLevel(tree)[0]
        tree.store.block(leaves.last!).setRightSibling(leaves[0])
        var report = tree.verify()
        #expect(has(report, .siblings, pointer: leaves.last!, level: 0))
        #expect(throws: BTreeError.self) { try tree.countBlocks() }
        tree.store.block(leaves[2]).setRightSibling(leaves[2])
        report = tree.verify()
        #expect(report.faults.contains { $0.check == .siblings && $0.pointer == leaves[2] && $0.detail.contains("itself") })
    }

    @Test("a shift refuses a right sibling that is not the parent's next child", arguments: [false, true])
    func shiftIntoWrongSibling(lendsBlocks: Bool) throws {
        let tree = try corruptibleTree()
        tree.store.lendsBlocks = lendsBlocks
        let node = try blocksByLevel(tree)[1][0]
        let nb = tree.store.block(node)
        #expect(nb.numrecs >= 2)
        let leaf = nb.pointer(0, tree.layout, as: UInt64.self), next = nb.pointer(1, tree.layout, as: UInt64.self)
        // Fill the leaf (keys between its first and its neighbour's first, gaps left), so
        // that the next insert into its middle must shift.
        let first = KVFormat.loadRecord(from: tree.store.block(leaf).record(0, tree.layout)).key
        var c = tree.makeCursor()
        var key = first + 2
        while tree.store.block(leaf).numrecs < 4 {
            try c.insert(KV(key: key, value: 0))
            key += 2
        }
        // Make room in the last leaf (60 ascending inserts leave every leaf full).
        #expect(try c.lookup(590, .equal))
        try c.delete()
        c.close()
        #expect(tree.verify().isClean)
        // Point the full leaf's right sibling at another leaf with room.
        let other = try #require(try blocksByLevel(tree)[0].first {
            $0 != leaf && $0 != next && tree.store.block($0).numrecs < 4
        })
        tree.store.block(leaf).setRightSibling(other)
        expectShiftRefused(tree, inserting: first + 1, saying: "not the next block under the parent")
    }

    @Test("a shift refuses a left sibling that is not the parent's previous child", arguments: [false, true])
    func shiftIntoWrongLeftSibling(lendsBlocks: Bool) throws {
        let tree = try corruptibleTree()
        tree.store.lendsBlocks = lendsBlocks
        let node = try blocksByLevel(tree)[1][0]
        let nb = tree.store.block(node)
        #expect(nb.numrecs >= 3)
        let previous = nb.pointer(0, tree.layout, as: UInt64.self)
        let leaf = nb.pointer(1, tree.layout, as: UInt64.self), next = nb.pointer(2, tree.layout, as: UInt64.self)
        // 60 ascending inserts leave every leaf full: the leaf and its right sibling have no
        // room, so an insert into the leaf's middle must shift left. Make room in the last
        // leaf, and point the leaf's left sibling there.
        #expect(tree.store.block(leaf).numrecs == 4 && tree.store.block(next).numrecs == 4)
        var c = tree.makeCursor()
        #expect(try c.lookup(590, .equal))
        try c.delete()
        c.close()
        #expect(tree.verify().isClean)
        let other = try #require(try blocksByLevel(tree)[0].first {
            $0 != leaf && $0 != previous && $0 != next && tree.store.block($0).numrecs < 4
        })
        tree.store.block(leaf).setLeftSibling(other)
        let first = KVFormat.loadRecord(from: tree.store.block(leaf).record(0, tree.layout)).key
        expectShiftRefused(tree, inserting: first + 1, saying: "not the previous block under the parent")
    }

    /// Inserts `key`, which must shift into a damaged sibling, and expects the sibling check.
    func expectShiftRefused(_ tree: KVTree, inserting key: UInt64, saying detail: String) {
        var c = tree.makeCursor()
        do {
            try c.insert(KV(key: key, value: 0))
            Issue.record("the insert went through a wrong sibling")
        } catch BTreeError.corrupt(_, let fault) {
            #expect(fault.check == .siblings && fault.detail.contains(detail))
        } catch {
            Issue.record("unexpected error \(error)")
        }
        c.close()
    }

    @Test("pointer cycles: a child pointing at the root, a child shared by two slots")
    func cycles() throws {
        let tree = try corruptibleTree()
        let levels = try blocksByLevel(tree)
        let node = levels[1][0]
        tree.store.block(node).setPointer(tree.store.root, 1, tree.layout)
        var report = tree.verify()
        #expect(report.faults.contains { $0.check == .cycle || $0.check == .level })
        var c = tree.makeCursor()
        #expect(throws: BTreeError.self) {
            try c.queryAll { _ in .proceed }
        }
        c.close()
        let tree2 = try corruptibleTree()
        let node2 = try blocksByLevel(tree2)[1][0]
        let b = tree2.store.block(node2)
        b.setPointer(b.pointer(0, tree2.layout, as: UInt64.self), 1, tree2.layout)
        report = tree2.verify()
        #expect(has(report, .cycle, pointer: node2, level: 1, index: 1))
    }

    @Test("absurd heights stop before any walk")
    func heights() throws {
        let tree = try corruptibleTree()
        let real = tree.store.height
        tree.store.height = tree.store.maxHeight + 1
        #expect(tree.verify().faults.map(\.check) == [.height])
        var c = tree.makeCursor()
        #expect(throws: BTreeError.self) { try c.lookup(5, .equal) }
        tree.store.height = 0
        #expect(tree.verify().faults.map(\.check) == [.height])
        tree.store.height = real + 1
        #expect(tree.verify().faults.map(\.check) == [.level])
        #expect(throws: BTreeError.self) { try c.lookup(5, .equal) }
    }

    @Test("magic, blkno, owner, uuid, bad records and unreadable blocks")
    func headerFields() throws {
        let tree = try corruptibleTree()
        let leaves = try blocksByLevel(tree)[0]
        tree.store.block(leaves[0]).magic = 0x1234_5678
        tree.store.block(leaves[1]).base.storeBytes(of: UInt64(77).bigEndian, toByteOffset: 24, as: UInt64.self)
        tree.store.block(leaves[2]).base.storeBytes(of: UInt64(9).bigEndian, toByteOffset: 56, as: UInt64.self)
        tree.store.block(leaves[3]).base.storeBytes(of: UInt64(9).bigEndian, toByteOffset: 40, as: UInt64.self)
        KVFormat.storeRecord(KV(key: KVFormat.loadRecord(from: tree.store.block(leaves[4]).record(0, tree.layout)).key, value: .max),
                             to: tree.store.block(leaves[4]).record(0, tree.layout))
        tree.store.failingRead = leaves[5]
        let report = tree.verify()
        #expect(has(report, .magic, pointer: leaves[0], level: 0))
        #expect(has(report, .blkno, pointer: leaves[1], level: 0))
        #expect(has(report, .owner, pointer: leaves[2], level: 0))
        #expect(has(report, .uuid, pointer: leaves[3], level: 0))
        #expect(has(report, .record, pointer: leaves[4], level: 0, index: 0))
        #expect(has(report, .read, pointer: leaves[5], level: 0))
        #expect(tree.store.holds == 0)
    }

    @Test("cursor reads throw a fault naming the block")
    func cursorThrows() throws {
        let tree = try corruptibleTree()
        let leaves = try blocksByLevel(tree)[0]
        tree.store.block(leaves[3]).level = 2
        var c = tree.makeCursor()
        var seen: BTreeFault? = nil
        do {
            try c.queryAll { _ in .proceed }
        } catch BTreeError.corrupt(_, let fault) {
            seen = fault
        }
        #expect(seen?.check == .level && seen?.pointer == UInt64(leaves[3]) && seen?.level == 0)
        c.close()
        #expect(tree.store.holds == 0)
    }

    @Test("a node visited unheld (a store that lends its blocks) is checked like a read one")
    func visitedNodeThrows() throws {
        let tree = try corruptibleTree()
        tree.store.lendsBlocks = true
        let nodes = try blocksByLevel(tree)[1]
        tree.store.block(nodes[1]).magic = 0x1234_5678
        var c = tree.makeCursor()
        var seen: BTreeFault? = nil
        // Every key reaches the damaged node through the root; some lookup must meet it.
        for k in stride(from: UInt64(0), to: 600, by: 10) where seen == nil {
            do {
                _ = try c.lookup(k, .equal)
            } catch BTreeError.corrupt(_, let fault) {
                seen = fault
            }
        }
        #expect(seen?.check == .magic && seen?.pointer == UInt64(nodes[1]) && seen?.level == 1)
        c.close()
        #expect(tree.store.holds == 0)
    }

    @Test("out of space during a split throws and leaves a valid tree")
    func noSpace() throws {
        let tree = try makeKVTree()
        tree.store.blockLimit = 3
        var c = tree.makeCursor()
        var failed = false
        for k in 0..<40 {
            do { try c.insert(KV(key: UInt64(k), value: 0)) } catch BTreeError.noSpace { failed = true; break }
        }
        #expect(failed)
        c.close()
        #expect(tree.store.holds == 0)
    }
}
