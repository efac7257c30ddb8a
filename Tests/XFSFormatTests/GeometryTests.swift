import Testing
import XFSFormat
import XFSTestSupport

@Suite("Geometry")
struct GeometryTests {
    @Test("address conversions agree with xfs_db convert", arguments: ["mixed-4k", "mixed-1k"])
    func conversions(name: String) throws {
        let image = try TestImage(name)
        let g = image.geometry
        try #require(XFSDB.isAvailable, "xfs_db is not installed")
        let agno = g.agCount - 1
        let agbno = g.agLength(agno) - 3
        let fsb = g.fsBlock(agno: agno, agbno: agbno)
        let out = try XFSDB.run(image.path, ["convert agno \(agno) agbno \(agbno) fsb", "convert fsb \(fsb) daddr"])
        let values = out.split(separator: "\n").compactMap { XFSDB.number(String($0.split(separator: " ").first ?? "")) }
        #expect(values == [fsb, g.daddr(fsBlock: fsb)])
        #expect(g.split(fsBlock: fsb)! == (agno, agbno))
        #expect(g.byteOffset(fsBlock: fsb) == g.byteOffset(agno: agno, agbno: agbno))
        let ino = g.inodeNumber(agno: 1, agino: 130)
        let conv = try XFSDB.run(image.path, ["convert ino \(ino) agno", "convert ino \(ino) agbno", "convert ino \(ino) offset"])
        let parts = conv.split(separator: "\n").compactMap { XFSDB.number(String($0.split(separator: " ").first ?? "")) }
        let loc = try #require(g.location(ofInode: ino))
        #expect(parts == [1, UInt64(loc.agbno), UInt64(loc.offsetInBlock / g.inodeSize)])
        #expect(g.split(inode: ino)! == (1, 130))
        #expect(!g.isValidFSBlock(g.fsBlock(agno: g.agCount, agbno: 0)))
        #expect(!g.isValidFSBlock(fsb + 3)) // one past the last block of the last AG
        #expect(!g.isValidInode(g.inodeNumber(agno: g.agCount, agino: 0)))
    }

    @Test("the format notes' worked facts")
    func facts() throws {
        let image = try TestImage("mixed-4k")
        let g = image.geometry
        #expect(g.agflSize == 119 && g.agflBlock == 0 && g.ownFSLength == 1)
        #expect(g.inodeNumber(agno: 1, agino: 128) == 262_272 || g.agBlockLog + g.inodesPerBlockLog != 18)
        #expect(g.blocksPerChunk == 8)
        #expect(g.maxRmapBTreeLevels >= Int(try image.agf(0).rmapLevel))
        #expect(Geometry.ceilLog2(163_840) == 18 && Geometry.ceilLog2(65536) == 16 && Geometry.ceilLog2(1) == 0)
        #expect(Geometry.maxLevels(minLeaf: 84, minNode: 45, records: 1) == 1)
        let onek = try TestImage("mixed-1k").geometry
        #expect(onek.agflSize == 119 && onek.agflBlock == 1 && onek.ownFSLength == 2)
        #expect(onek.blocksPerChunk == 32)
    }

    @Test("rmapbt height limit: 4 for 32768 blocks of 4K with reflink")
    func rmapMaxLevels() throws {
        var sb = try TestImage("mixed-4k").superblock
        sb.agBlocks = 32768
        sb.agBlockLog = 15
        sb.dataBlocks = UInt64(sb.agCount) * 32768
        #expect(sb.geometry.maxRmapBTreeLevels == 4)
    }

    @Test("OWN_INODES extents from inobt records equal the corpus -7 records", arguments: cleanImages)
    func ownInodes(name: String) throws {
        let image = try TestImage(name)
        let g = image.geometry
        let corpus = try RmapText.parse(document: try Fixtures.rmapText(name))
        for agno in 0 ..< g.agCount {
            let agi = try image.agi(agno)
            let records = try image.leafRecords(SparseInodeBTreeFormat.self, agno: agno, root: agi.root, height: agi.level)
            var merged: [(UInt32, UInt32)] = []
            for (start, length) in records.compactMap(g.inodeChunkExtent) {
                if let last = merged.last, last.0 + last.1 == start {
                    merged[merged.count - 1].1 += length
                } else {
                    merged.append((start, length))
                }
            }
            let expected = corpus.filter { $0.agno == agno && $0.record.owner == RmapOwner.inodes }
                .map { ($0.record.startBlock, $0.record.blockCount) }
            #expect(merged.map(\.0) == expected.map(\.0) && merged.map(\.1) == expected.map(\.1), "\(name) AG \(agno)")
        }
    }

    @Test("a sparse chunk's extent starts at its first present inode")
    func sparseChunkExtent() throws {
        let g = try TestImage("mixed-1k").geometry // 1K blocks, 512-byte inodes: 2 per block
        let upperHalf = InodeBTreeRecord(startIno: 256, holeMask: 0x00FF, count: 32, freeCount: 0, free: 0x0000_0000_FFFF_FFFF)
        #expect(g.inodeChunkExtent(upperHalf)! == (UInt32(256 + 32) >> 1, 16))
        let full = InodeBTreeRecord(startIno: 256, freeCount: 0, free: 0)
        #expect(g.inodeChunkExtent(full)! == (128, 32))
    }
}
