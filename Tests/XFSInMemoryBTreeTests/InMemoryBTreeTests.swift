import Testing
import XFSBTree
import XFSBuffer
import XFSFormat
import XFSTestSupport
import XFSTransaction
@testable import XFSInMemoryBTree

/// Random rmap-like records with unique keys, some overlapping physically (as on reflink
/// filesystems), so the overlapping-key machinery is exercised.
private func randomRecord(_ random: inout SeededRandom, blocks: UInt32 = 4096) -> RmapRecord {
    RmapRecord(startBlock: UInt32.random(in: 0..<blocks, using: &random),
               blockCount: UInt32.random(in: 1...16, using: &random),
               owner: UInt64.random(in: 128..<160, using: &random),
               offset: UInt64.random(in: 0..<1024, using: &random),
               isAttrFork: UInt8.random(in: 0..<8, using: &random) == 0)
}

private func makeTree(pages: Int = 4096, limits: BTreeRecordLimits? = BTreeRecordLimits(leafMax: 6, nodeMax: 4),
                      growthPolicy: BTreeGrowthPolicy = .batchedShifts) throws -> InMemoryBTree<RmapFormat> {
    let target = try MemoryTarget(name: "xfbtree-test", maximumSize: pages * MemoryTarget.blockSize)
    return try InMemoryBTree<RmapFormat>(target: target, owner: 7, recordLimits: limits, growthPolicy: growthPolicy)
}

private func allRecords(_ tree: InMemoryBTree<RmapFormat>) throws -> [RmapRecord] {
    let transaction = Transaction()
    var records: [RmapRecord] = []
    try tree.withCursor(in: transaction) { cursor in
        _ = try cursor.queryAll { records.append($0); return .proceed }
    }
    try tree.commit(transaction)
    return records
}

private func sortedByKey(_ records: [RmapRecord]) -> [RmapRecord] {
    records.sorted { RmapFormat.lowKey(of: $0) < RmapFormat.lowKey(of: $1) }
}

@Suite("In-memory btree")
struct InMemoryBTreeTests {
    @Test("trees grow with batched shifts unless told otherwise")
    func defaultGrowthPolicy() throws {
        let target = try MemoryTarget(name: "xfbtree-test", maximumSize: 16 * MemoryTarget.blockSize)
        #expect(try InMemoryBTree<RmapFormat>(target: target).store.growthPolicy == .batchedShifts)
        let kernel = try MemoryTarget(name: "xfbtree-test", maximumSize: 16 * MemoryTarget.blockSize)
        #expect(try InMemoryBTree<RmapFormat>(target: kernel, growthPolicy: .kernel).store.growthPolicy == .kernel)
    }

    @Test("a new tree is one empty leaf at block 0, height 1")
    func emptyTree() throws {
        let tree = try makeTree()
        #expect(tree.root == 0)
        #expect(tree.height == 1)
        #expect(tree.blockCount == 1)
        #expect(try allRecords(tree).isEmpty)
        #expect(tree.verify().isClean)
    }

    @Test("seeded inserts and deletes, one committed transaction each, match a sorted-array model",
          arguments: [BTreeRecordLimits(leafMax: 4, nodeMax: 4), BTreeRecordLimits(leafMax: 9, nodeMax: 5), nil],
          [BTreeGrowthPolicy.batchedShifts, .kernel])
    func differential(limits: BTreeRecordLimits?, growthPolicy: BTreeGrowthPolicy) throws {
        let tree = try makeTree(limits: limits, growthPolicy: growthPolicy)
        var random = SeededRandom(seed: 0x5EED_0001)
        var model: [RmapRecord] = []
        var maxHeight = 0
        for step in 0..<6000 {
            let transaction = Transaction()
            if model.isEmpty || Int.random(in: 0..<10, using: &random) < 6 {
                let record = randomRecord(&random)
                let key = RmapFormat.lowKey(of: record)
                let exists = model.contains { RmapFormat.lowKey(of: $0) == key }
                try tree.withCursor(in: transaction) { cursor in
                    #expect(try cursor.lookup(key, .equal) == exists)
                    if !exists { try cursor.insert(record) }
                }
                if !exists { model.append(record) }
            } else {
                let victim = model.remove(at: Int.random(in: 0..<model.count, using: &random))
                try tree.withCursor(in: transaction) { cursor in
                    #expect(try cursor.lookup(RmapFormat.lowKey(of: victim), .equal))
                    #expect(cursor.record == victim)
                    try cursor.delete()
                }
            }
            try tree.commit(transaction)
            maxHeight = max(maxHeight, tree.height)
            if step % 500 == 499 {
                let report = tree.verify()
                #expect(report.isClean, "step \(step): \(report.faults.prefix(3))")
                #expect(try allRecords(tree) == sortedByKey(model), "step \(step)")
            }
        }
        #expect(try allRecords(tree) == sortedByKey(model))
        if limits != nil { #expect(maxHeight >= 4, "small blocks should make a deep tree") }
    }

    @Test("inserting at a cursor positioned by LE lookup and increment (the kernel's way) matches the model",
          arguments: [BTreeRecordLimits(leafMax: 4, nodeMax: 4), BTreeRecordLimits(leafMax: 5, nodeMax: 4)])
    func insertAtCursor(limits: BTreeRecordLimits) throws {
        let tree = try makeTree(limits: limits)
        var random = SeededRandom(seed: 0xC0_5E7)
        var model: [RmapRecord] = []
        for step in 0..<5000 {
            let transaction = Transaction()
            if model.isEmpty || Int.random(in: 0..<10, using: &random) < 7 {
                let record = randomRecord(&random, blocks: 600)
                let key = RmapFormat.lowKey(of: record)
                if model.contains(where: { RmapFormat.lowKey(of: $0) == key }) {
                    try tree.commit(transaction)
                    continue
                }
                try tree.withCursor(in: transaction) { cursor in
                    if try cursor.lookup(key, .lessOrEqual) {
                        _ = try cursor.increment()
                    } else {
                        _ = try cursor.lookup(key, .greaterOrEqual)
                    }
                    try cursor.insertAtCursor(record)
                    #expect(cursor.record == record)
                }
                model.append(record)
            } else {
                let victim = model.remove(at: Int.random(in: 0..<model.count, using: &random))
                try tree.withCursor(in: transaction) { cursor in
                    #expect(try cursor.lookup(RmapFormat.lowKey(of: victim), .equal))
                    try cursor.delete()
                }
            }
            try tree.commit(transaction)
            if step % 250 == 249 {
                let report = tree.verify()
                #expect(report.isClean, "step \(step): \(report.faults.prefix(3))")
                #expect(try allRecords(tree) == sortedByKey(model), "step \(step)")
                if !report.isClean { return }
            }
        }
    }

    @Test("freed blocks are reused: a tree that empties and refills does not grow its file")
    func freedBlocksAreReused() throws {
        let tree = try makeTree()
        var random = SeededRandom(seed: 42)
        var records: [RmapRecord] = []
        for _ in 0..<800 {
            let record = randomRecord(&random, blocks: 1 << 30)
            let transaction = Transaction()
            try tree.withCursor(in: transaction) { try $0.insert(record) }
            try tree.commit(transaction)
            records.append(record)
        }
        let peakBlocks = tree.store.allocator.nextUnused
        let residentFull = try tree.target.residentBytes()
        for record in records {
            let transaction = Transaction()
            try tree.withCursor(in: transaction) { cursor in
                _ = try cursor.lookup(RmapFormat.lowKey(of: record), .equal)
                try cursor.delete()
            }
            try tree.commit(transaction)
        }
        #expect(tree.height == 1)
        #expect(tree.blockCount == 1)
        let residentEmpty = try tree.target.residentBytes()
        #expect(residentEmpty < residentFull / 4, "freed pages are punched: \(residentEmpty) of \(residentFull)")
        for record in records {
            let transaction = Transaction()
            try tree.withCursor(in: transaction) { try $0.insert(record) }
            try tree.commit(transaction)
        }
        #expect(tree.store.allocator.nextUnused <= peakBlocks + 2, "refill reused freed blocks")
        #expect(tree.verify().isClean)
        #expect(try allRecords(tree) == sortedByKey(records))
    }

    @Test("cancelling an undoable transaction restores records, root, height, allocator and pages")
    func cancelRollsBack() throws {
        let tree = try makeTree()
        var random = SeededRandom(seed: 7)
        var records: [RmapRecord] = []
        for _ in 0..<300 {
            let record = randomRecord(&random, blocks: 1 << 30)
            records.append(record)
            let transaction = Transaction()
            try tree.withCursor(in: transaction) { try $0.insert(record) }
            try tree.commit(transaction)
        }
        let before = try allRecords(tree)
        let (root, height, blocks) = (tree.root, tree.height, tree.blockCount)
        let nextUnused = tree.store.allocator.nextUnused

        // One big transaction that splits, joins and changes the root, then is cancelled.
        let transaction = Transaction(keepingBeforeImages: true)
        for record in records.prefix(250) {
            try tree.withCursor(in: transaction) { cursor in
                _ = try cursor.lookup(RmapFormat.lowKey(of: record), .equal)
                try cursor.delete()
            }
        }
        for _ in 0..<400 {
            let record = randomRecord(&random, blocks: 1 << 30)
            try tree.withCursor(in: transaction) { try $0.insert(record) }
        }
        #expect(tree.blockCount != blocks || tree.root != root)
        tree.cancel(transaction)

        #expect(!tree.isLost)
        #expect(tree.root == root && tree.height == height && tree.blockCount == blocks)
        #expect(tree.store.allocator.nextUnused == nextUnused)
        #expect(tree.verify().isClean)
        #expect(try allRecords(tree) == before)
        // And the tree goes on working.
        let more = randomRecord(&random, blocks: 1 << 30)
        let next = Transaction()
        try tree.withCursor(in: next) { try $0.insert(more) }
        try tree.commit(next)
        #expect(try allRecords(tree) == sortedByKey(before + [more]))
    }

    @Test("a cancel without before-images leaves the tree lost, as the kernel's does")
    func cancelWithoutBeforeImagesLosesTheTree() throws {
        let tree = try makeTree()
        let transaction = Transaction()
        try tree.withCursor(in: transaction) { try $0.insert(RmapRecord(startBlock: 1, blockCount: 1, owner: 200)) }
        tree.cancel(transaction)
        #expect(tree.isLost)
    }

    /// One damaged header field of the root leaf (block 0 of a 4,096-block target): where,
    /// how wide, the value written, and what the failure must say.
    struct HeaderDamage: Sendable, CustomStringConvertible {
        let field: String, offset: Int, width: Int, value: UInt64, says: String
        var description: String { field }
    }

    @Test("commit runs the block verifier on dirty blocks and names the failed check", arguments: [
        HeaderDamage(field: "magic", offset: 0, width: 4, value: 0xDEAD_BEEF, says: "magic 0xdeadbeef is not rmapbt's"),
        HeaderDamage(field: "level", offset: 4, width: 2, value: 200, says: "level 200 is not below the height limit"),
        HeaderDamage(field: "numrecs", offset: 6, width: 2, value: 60_000, says: "60000 entries exceed the maximum"),
        HeaderDamage(field: "left sibling", offset: 8, width: 8, value: 1 << 40, says: "left sibling 1099511627776 is outside"),
        HeaderDamage(field: "right sibling", offset: 16, width: 8, value: 0, says: "right sibling points at the block itself"),
        HeaderDamage(field: "blkno", offset: 24, width: 8, value: 8, says: "header blkno 0x8 is not the block's own address"),
        HeaderDamage(field: "uuid", offset: 40, width: 8, value: 1, says: "header uuid does not match"),
    ])
    func commitVerifies(_ damage: HeaderDamage) throws {
        let tree = try makeTree()
        let transaction = Transaction()
        try tree.withCursor(in: transaction) { cursor in
            try cursor.insert(RmapRecord(startBlock: 1, blockCount: 1, owner: 200))
            #expect(tree.root == 0)
            let root = try tree.store.readBlock(tree.root)
            let bytes = tree.store.memory(of: root) + damage.offset
            switch damage.width {
            case 2: bytes.storeBytes(of: UInt16(damage.value).bigEndian, as: UInt16.self)
            case 4: bytes.storeBytes(of: UInt32(damage.value).bigEndian, as: UInt32.self)
            default: bytes.storeBytes(of: damage.value.bigEndian, as: UInt64.self)
            }
            tree.store.markDirty(root, range: damage.offset..<(damage.offset + damage.width))
            tree.store.release(root)
        }
        #expect {
            try tree.commit(transaction)
        } throws: { error in
            "\(error)".contains("rmapbt (in memory) verifier") && "\(error)".contains(damage.says)
        }
    }

    @Test("blocks carry the v5 long header: magic, their own disk address, owner and uuid, no CRC")
    func blockHeaders() throws {
        let target = try MemoryTarget(name: "xfbtree-header", maximumSize: 64 * MemoryTarget.blockSize)
        let uuid = BTreeUUID(high: 0x0102_0304_0506_0708, low: 0x090A_0B0C_0D0E_0F10)
        let tree = try InMemoryBTree<RmapFormat>(target: target, owner: 99, uuid: uuid)
        let transaction = Transaction()
        try tree.withCursor(in: transaction) { _ in
            let root = try tree.store.readBlock(tree.root)
            defer { tree.store.release(root) }
            let block = BTreeBlock(tree.store.memory(of: root))
            #expect(block.magic == RmapFormat.magic)
            #expect(block.blkno(.long) == tree.store.diskAddress(of: tree.root))
            #expect(block.owner(.long) == 99)
            #expect(block.uuid(.long) == uuid)
        }
        try tree.commit(transaction)
    }
}
