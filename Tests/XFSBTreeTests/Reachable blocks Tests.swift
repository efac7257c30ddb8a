import Testing
import XFSBTree

/// The blocks of `tree` as `reachableBlocks()` walks them, with its faults.
private func reachable(_ tree: KVTree) -> BTreeReachableBlocks {
    let cursor = tree.makeCursor()
    return cursor.reachableBlocks()
}

@Suite("The walk of a tree's blocks through child pointers")
struct ReachableBlocksTests {
    @Test("on a sound tree: every block once, the root first, no fault")
    func soundTree() throws {
        let tree = try corruptibleTree()
        let walk = reachable(tree)
        let levels = try blocksByLevel(tree)
        #expect(walk.faults.isEmpty, "\(walk.faults)")
        #expect(walk.pointers.first == UInt64(tree.store.root))
        #expect(walk.pointers.sorted() == levels.joined().map { UInt64($0) }.sorted())
    }

    @Test("whole-tree walks ask the store to read ahead every block below the root, before reading it")
    func readAhead() throws {
        let tree = try corruptibleTree()
        let levels = try blocksByLevel(tree)
        let belowRoot = levels.dropLast().joined().map { UInt64($0) }.sorted()
        for walk in ["reachableBlocks", "visitBlocks", "queryAll"] {
            tree.store.readAheads = []
            switch walk {
            case "reachableBlocks": _ = reachable(tree)
            case "visitBlocks": try tree.visitBlocks { _ in .proceed }
            default: _ = try tree.queryAll { _ in .proceed }
            }
            #expect(tree.store.readAheads.map { UInt64($0) }.sorted() == belowRoot, "\(walk)")
        }
        // A lookup reads no more than its path.
        tree.store.readAheads = []
        var cursor = tree.makeCursor()
        _ = try cursor.lookup(250, .equal)
        cursor.close()
        #expect(tree.store.readAheads.isEmpty)
    }

    @Test("a right sibling pointing back loses no block: one sibling fault, where visitBlocks throws")
    func siblingPointingBack() throws {
        let tree = try corruptibleTree()
        let levels = try blocksByLevel(tree)
        let leaves = levels[0]
        tree.store.block(leaves[3]).setRightSibling(leaves[1])
        #expect(throws: BTreeError.self) { try tree.countBlocks() }
        let walk = reachable(tree)
        #expect(walk.pointers.sorted() == levels.joined().map { UInt64($0) }.sorted())
        #expect(walk.faults.count == 1, "\(walk.faults)")
        let fault = try #require(walk.faults.first)
        #expect(fault.check == .siblings && fault.pointer == UInt64(leaves[3]) && fault.level == 0)
        #expect(fault.detail == "right sibling \(leaves[1]), expected \(leaves[4])")
    }

    @Test("a null right sibling in the middle of a level is named null")
    func nullSibling() throws {
        let tree = try corruptibleTree()
        let leaves = try blocksByLevel(tree)[0]
        tree.store.block(leaves[2]).setRightSibling(UInt64.null)
        let walk = reachable(tree)
        #expect(walk.faults.map(\.detail) == ["right sibling null, expected \(leaves[3])"])
        #expect(tree.verify().faults.map(\.detail) == ["right sibling null, expected \(leaves[3])"])
    }

    @Test("a node with a bad magic is listed with its fault; its children are not, and its neighbours' siblings are not blamed")
    func badNode() throws {
        let tree = try corruptibleTree()
        let levels = try blocksByLevel(tree)
        let node = levels[1][1]
        var children: [UInt64] = []
        let b = tree.store.block(node)
        for i in 0..<b.numrecs { children.append(UInt64(b.pointer(i, tree.layout, as: UInt64.self))) }
        b.magic = 0x1234_5678
        let walk = reachable(tree)
        #expect(walk.faults.count == 1, "\(walk.faults)")
        #expect(walk.faults.first?.check == .magic && walk.faults.first?.pointer == UInt64(node))
        #expect(walk.pointers.contains(UInt64(node)))
        let expected = Set(levels.joined().map { UInt64($0) }).subtracting(children)
        #expect(Set(walk.pointers) == expected && walk.pointers.count == expected.count)
    }

    @Test("a child pointer to a block already visited is a cycle fault, and no block is listed twice")
    func pointerCycle() throws {
        let tree = try corruptibleTree()
        let levels = try blocksByLevel(tree)
        let node = levels[1][0]
        let b = tree.store.block(node)
        b.setPointer(b.pointer(0, tree.layout, as: UInt64.self), 1, tree.layout)
        let walk = reachable(tree)
        #expect(walk.faults.contains { $0.check == .cycle && $0.pointer == UInt64(node) && $0.level == 1 && $0.index == 1 },
                "\(walk.faults)")
        #expect(Set(walk.pointers).count == walk.pointers.count)
    }
}
