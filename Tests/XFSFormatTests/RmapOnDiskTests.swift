import Testing
import XFSFormat
import XFSTestSupport

@Suite("rmapbt on real images")
struct RmapOnDiskTests {
    @Test("leaf records reached from the AGF root equal the corpus dump", arguments: cleanImages)
    func leavesMatchCorpus(name: String) throws {
        let image = try TestImage(name)
        let expected = try RmapText.parse(document: try Fixtures.rmapText(name))
        var found: [(agno: UInt32, record: RmapRecord)] = []
        for agno in 0 ..< image.geometry.agCount {
            let agf = try image.agf(agno)
            let records = try image.leafRecords(RmapFormat.self, agno: agno, root: agf.rmapRoot, height: agf.rmapLevel)
            for r in records {
                #expect(RmapFormat.check(r) == nil, "AG \(agno) record \(r): \(RmapFormat.check(r) ?? "")")
            }
            for (a, b) in zip(records, records.dropFirst()) {
                #expect(RmapFormat.lowKey(of: a) < RmapFormat.lowKey(of: b), "AG \(agno): \(a) before \(b)")
            }
            found += records.map { (agno, $0) }
        }
        #expect(found.count == expected.count)
        #expect(found.map(\.agno) == expected.map(\.agno))
        #expect(found.map(\.record) == expected.map(\.record))
        // And the text of what we read is the corpus file, byte for byte.
        #expect(RmapText.format(found) == (try Fixtures.rmapText(name)))
        let count = try #require(try Fixtures.metadata(name)["rmap_records"] as? Int)
        #expect(found.count == count)
    }

    @Test("node keys: low key is the child's first key, high key the maximum below it", arguments: ["mixed-4k", "mixed-1k"])
    func nodeKeys(name: String) throws {
        let image = try TestImage(name)
        let g = image.geometry
        let bs = Int(g.blockSize)
        let hdr = ShortBTreeBlockHeader.size
        let maxNode = OnDiskBTreeBlock.maxNodeRecords(blockSize: bs, headerSize: hdr, keySlotSize: 40, pointerSize: 4)
        for agno in 0 ..< g.agCount {
            let agf = try image.agf(agno)
            guard agf.rmapLevel == 2 else { continue }
            let root = try image.block(agno: agno, agbno: agf.rmapRoot)
            let header = try root.withUnsafeBytes { try ShortBTreeBlockHeader.decode($0, location: "root") }
            #expect(header.level == 1)
            try root.withUnsafeBytes { raw in
                for i in 0 ..< Int(header.numRecords) {
                    let keyAt = OnDiskBTreeBlock.keyOffset(i, headerSize: hdr, keySlotSize: 40)
                    let low = RmapFormat.loadKey(from: raw.baseAddress! + keyAt)
                    let high = RmapFormat.loadKey(from: raw.baseAddress! + keyAt + 20)
                    let ptrAt = OnDiskBTreeBlock.pointerOffset(i, headerSize: hdr, keySlotSize: 40, pointerSize: 4, maxRecords: maxNode)
                    let child = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: ptrAt, as: UInt32.self))
                    let leaf = try image.block(agno: agno, agbno: child)
                    let n = Int(try leaf.withUnsafeBytes { try ShortBTreeBlockHeader.decode($0, location: "leaf") }.numRecords)
                    let records = leaf.withUnsafeBytes { l in
                        (0 ..< n).map { RmapFormat.loadRecord(from: l.baseAddress! + hdr + 24 * $0) }
                    }
                    #expect(low == RmapFormat.lowKey(of: records[0]))
                    #expect(high == records.map(RmapFormat.highKey(of:)).max())
                    #expect(!low.hasUnwrittenBit && !high.hasUnwrittenBit)
                }
            }
        }
    }

    @Test("a 4K rmapbt root keeps its pointers at byte 3696")
    func pointerPlacement() {
        let maxNode = OnDiskBTreeBlock.maxNodeRecords(blockSize: 4096, headerSize: 56, keySlotSize: 40, pointerSize: 4)
        #expect(maxNode == 91)
        #expect(OnDiskBTreeBlock.pointerOffset(0, headerSize: 56, keySlotSize: 40, pointerSize: 4, maxRecords: maxNode) == 3696)
        #expect(OnDiskBTreeBlock.maxLeafRecords(blockSize: 4096, headerSize: 56, recordSize: 24) == 168)
        #expect(OnDiskBTreeBlock.maxLeafRecords(blockSize: 1024, headerSize: 56, recordSize: 24) == 40)
        #expect(OnDiskBTreeBlock.maxNodeRecords(blockSize: 1024, headerSize: 56, keySlotSize: 40, pointerSize: 4) == 22)
        #expect(OnDiskBTreeBlock.maxLeafRecords(blockSize: 4096, headerSize: 72, recordSize: 16) == 251)
    }

    @Test("header checks report which check failed")
    func headerChecks() throws {
        let image = try TestImage("mixed-4k")
        let g = image.geometry
        let agf = try image.agf(1)
        var block = try image.block(agno: 1, agbno: agf.rmapRoot)
        let header = try block.withUnsafeBytes { try ShortBTreeBlockHeader.decode($0, location: "AG 1 rmapbt root") }
        var expected = BTreeBlockExpectation(magic: RmapFormat.magic, uuid: g.metaUUID, daddr: g.daddr(agno: 1, agbno: agf.rmapRoot),
                                             owner: 1, level: UInt16(agf.rmapLevel - 1), maxRecordsLeaf: 168,
                                             maxRecordsNode: 91, agLength: g.agLength(1), agbno: agf.rmapRoot)
        #expect(header.check(expected) == nil)
        #expect(block.withUnsafeBytes { OnDiskBTreeBlock.verifyCRC($0, isLongForm: false) })
        expected.owner = 2
        #expect(header.check(expected) == .owner(found: 1, expected: 2))
        expected.owner = 1
        expected.daddr += 8
        #expect(header.check(expected) == .blkno(found: expected.daddr - 8, expected: expected.daddr))
        expected.daddr -= 8
        expected.magic = FreeSpaceByBlockFormat.magic
        #expect(header.check(expected)?.description.hasPrefix("bad magic 0x524d4233") == true)
        expected.magic = RmapFormat.magic
        expected.level = 0
        #expect(header.check(expected) == .level(found: UInt16(agf.rmapLevel - 1), expected: 0))

        // Store → decode is the identity, and the CRC can be refreshed.
        var changed = header
        changed.rightSibling = 77
        block.withUnsafeMutableBytes { changed.store(to: $0) }
        #expect(!block.withUnsafeBytes { OnDiskBTreeBlock.verifyCRC($0, isLongForm: false) })
        block.withUnsafeMutableBytes { OnDiskBTreeBlock.updateCRC($0, isLongForm: false) }
        #expect(block.withUnsafeBytes { OnDiskBTreeBlock.verifyCRC($0, isLongForm: false) })
        var decoded = try block.withUnsafeBytes { try ShortBTreeBlockHeader.decode($0, location: "x") }
        decoded.crc = changed.crc
        #expect(decoded == changed)
        #expect(throws: XFSFormatError(.truncated, "AG 0 bnobt block 1",
                                       "short btree block header at byte 0 (56 bytes) lies outside the 55-byte buffer")) {
            try [UInt8](repeating: 0, count: 55).withUnsafeBytes {
                try ShortBTreeBlockHeader.decode($0, location: "AG 0 bnobt block 1")
            }
        }
    }

    @Test("free-space, inode and refcount trees of real images decode and check", arguments: cleanImages)
    func otherTrees(name: String) throws {
        let image = try TestImage(name)
        let g = image.geometry
        for agno in 0 ..< g.agCount {
            let agf = try image.agf(agno)
            let agi = try image.agi(agno)
            let bno = try image.leafRecords(FreeSpaceByBlockFormat.self, agno: agno, root: agf.bnoRoot, height: agf.bnoLevel)
            let cnt = try image.leafRecords(FreeSpaceByCountFormat.self, agno: agno, root: agf.cntRoot, height: agf.cntLevel)
            #expect(bno.allSatisfy { FreeSpaceByBlockFormat.check($0) == nil })
            #expect(Set(bno) == Set(cnt))
            #expect(cnt.map(FreeSpaceByCountFormat.lowKey(of:)) == cnt.map(FreeSpaceByCountFormat.lowKey(of:)).sorted())
            #expect(bno.reduce(0) { $0 + UInt64($1.blockCount) } == UInt64(agf.freeBlocks))
            #expect(bno.map(\.blockCount).max() ?? 0 == agf.longest)
            let inodes = try image.leafRecords(SparseInodeBTreeFormat.self, agno: agno, root: agi.root, height: agi.level)
            #expect(inodes.allSatisfy { SparseInodeBTreeFormat.check($0) == nil })
            #expect(inodes.reduce(0) { $0 + UInt32($1.count) } == agi.count)
            #expect(inodes.reduce(0) { $0 + $1.freeCount } == agi.freeCount)
            let free = try image.leafRecords(SparseFreeInodeBTreeFormat.self, agno: agno, root: agi.freeRoot, height: agi.freeLevel)
            #expect(free == inodes.filter { $0.freeCount > 0 })
            let refc = try image.leafRecords(RefcountFormat.self, agno: agno, root: agf.refcountRoot, height: agf.refcountLevel)
            #expect(refc.allSatisfy { RefcountFormat.check($0) == nil && $0.domain == .shared })
        }
    }
}
