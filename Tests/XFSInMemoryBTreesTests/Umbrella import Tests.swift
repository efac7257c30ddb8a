import Testing
import XFSInMemoryBTrees

// This file imports the umbrella module alone: every name below comes from a layer it
// re-exports.

@Suite("Umbrella module")
struct UmbrellaImportTests {
    @Test("import XFSInMemoryBTrees brings every layer's API")
    func reExports() throws {
        let target = try MemoryTarget(name: "umbrella", maximumSize: 1 << 20)         // XFSBuffer
        let tree = try InMemoryBTree<RmapFormat>(target: target)                      // XFSInMemoryBTree, XFSFormat
        let transaction = Transaction()                                               // XFSTransaction
        try tree.withCursor(in: transaction) { cursor in
            try cursor.insert(RmapRecord(startBlock: 1, blockCount: 2, owner: 130, offset: 0))
        }
        try tree.commit(transaction)
        #expect(tree.verify().isClean)                                                // XFSBTree
        #expect(tree.store.growthPolicy == BTreeGrowthPolicy.batchedShifts)
        #expect(MemoryFile.pageSize > 0)                                              // XFSMemoryFile
        _ = RmapChecker.self                                                          // XFSRmap
        _ = UndoFile.self                                                             // XFSUndo
    }
}
