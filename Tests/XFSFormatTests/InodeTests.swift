import Testing
import XFSBuffer
import XFSFormat
import XFSTestSupport

@Suite("Inodes")
struct InodeTests {
    /// Inodes to compare: the root, and the allocated inodes of the first inobt leaf of each
    /// AG (at most `perAG` of them, spread over the leaf).
    func sampleInodes(_ image: TestImage, perAG: Int) throws -> [UInt64] {
        var inodes: [UInt64] = [image.superblock.rootIno]
        for agno in 0 ..< image.geometry.agCount {
            let agi = try image.agi(agno)
            let records = try image.leafRecords(SparseInodeBTreeFormat.self, agno: agno, root: agi.root, height: agi.level)
            let all = records.flatMap { image.geometry.allocatedInodes($0, agno: agno) }
            guard !all.isEmpty else { continue }
            let step = max(1, all.count / perAG)
            inodes += stride(from: 0, to: all.count, by: step).map { all[$0] }
        }
        return inodes
    }

    @Test("core fields and extents match xfs_db", arguments: cleanImages)
    func matchXFSDB(name: String) throws {
        let image = try TestImage(name)
        try #require(XFSDB.isAvailable, "xfs_db is not installed")
        for ino in try sampleInodes(image, perAG: 6) {
            let inode = try image.inode(ino)
            let c = inode.core
            let out = try XFSDB.run(image.path, ["inode \(ino)", "p"])
            let db = XFSDB.fields(out)
            let expected: [(String, UInt64)] = [
                ("core.magic", UInt64(c.magicnum)), ("core.mode", UInt64(c.mode)), ("core.version", UInt64(c.version)),
                ("core.format", UInt64(c.format)), ("core.uid", UInt64(c.uid)), ("core.gid", UInt64(c.gid)),
                ("core.nlinkv2", UInt64(c.nlink)), ("core.size", c.size), ("core.nblocks", c.nblocks),
                ("core.extsize", UInt64(c.extsize)), ("core.nextents", c.dataExtentCount),
                ("core.naextents", UInt64(c.attrExtentCount)), ("core.forkoff", UInt64(c.forkOffset)),
                ("core.aformat", UInt64(c.attrFormat)), ("core.gen", UInt64(c.gen)),
                ("v3.crc", UInt64(c.crc.byteSwapped)), ("v3.change_count", c.changeCount), ("v3.lsn", c.lsn),
                ("v3.flags2", c.flags2), ("v3.cowextsize", UInt64(c.cowExtSize)), ("v3.inumber", c.ino),
                ("core.realtime", c.isRealtime ? 1 : 0), ("v3.nrext64", c.hasNrext64 ? 1 : 0),
            ]
            for (field, value) in expected {
                #expect(XFSDB.number(db[field]) == value, "\(name) inode \(ino) \(field): xfs_db says \(db[field] ?? "nothing")")
            }
            #expect(db["v3.uuid"] == c.uuid.description)
            // Extent lists: xfs_db prints "N:[startoff,startblock,blockcount,extentflag]" lines.
            let lines = out.split(separator: "\n")
            func extents(after marker: String) -> [FileExtent] {
                guard let start = lines.firstIndex(where: { $0.hasPrefix(marker) }) else { return [] }
                return lines[(start + 1)...].prefix { $0.first?.isNumber == true && $0.contains(":[") }.compactMap { line in
                    let inner = line.split(separator: "[").last?.dropLast() ?? ""
                    let v = inner.split(separator: ",").compactMap { UInt64($0) }
                    guard v.count == 4 else { return nil }
                    return FileExtent(startOffset: v[0], startBlock: v[1], blockCount: UInt32(v[2]), isUnwritten: v[3] != 0)
                }
            }
            #expect(extents(after: "u3.bmx") == inode.dataFork.extents, "inode \(ino) data extents")
            #expect(extents(after: "a.bmx") == (inode.attrFork?.extents ?? []), "inode \(ino) attr extents")
            if case let .btree(root) = inode.dataFork {
                #expect(XFSDB.number(db["u3.bmbt.level"]) == UInt64(root.level))
                #expect(XFSDB.number(db["u3.bmbt.numrecs"]) == UInt64(root.numRecords))
            }
        }
    }

    @Test("bmbt roots in inode forks lead to BMA3 blocks owned by the inode", arguments: ["mixed-4k", "mixed-1k"])
    func bmbtRoots(name: String) throws {
        let image = try TestImage(name)
        let g = image.geometry
        let corpus = try RmapText.parse(document: try Fixtures.rmapText(name))
        let bmbtOwners = Set(corpus.filter { $0.record.isBmbtBlock }.map(\.record.owner))
        #expect(!bmbtOwners.isEmpty)
        var checked = 0
        for ino in bmbtOwners.sorted().prefix(8) {
            let inode = try image.inode(ino)
            if case let .btree(root) = inode.dataFork, XFSDB.isAvailable {
                let db = XFSDB.fields(try XFSDB.run(image.path, ["inode \(ino)", "p u3.bmbt.ptrs"]))
                let printed = try #require(db.first { $0.key.hasPrefix("u3.bmbt.ptrs") }?.value)
                let ptrs = printed.split(separator: " ").compactMap { XFSDB.number(String($0.split(separator: ":").last ?? "")) }
                #expect(ptrs == root.pointers, "inode \(ino) bmbt root pointers")
            }
            for fork in [inode.dataFork, inode.attrFork].compactMap({ $0 }) {
                guard case let .btree(root) = fork else { continue }
                for ptr in root.pointers {
                    let (agno, agbno) = try #require(g.split(fsBlock: ptr))
                    let block = try image.block(agno: agno, agbno: agbno)
                    let header = try block.withUnsafeBytes { try LongBTreeBlockHeader.decode($0, location: "bmbt") }
                    let maxrecs = OnDiskBTreeBlock.maxLeafRecords(blockSize: Int(g.blockSize), headerSize: 72, recordSize: 16)
                    let expected = BTreeBlockExpectation(magic: BmbtFormat.magic, uuid: g.metaUUID, daddr: g.daddr(fsBlock: ptr),
                                                         owner: ino, level: root.level - 1, maxRecordsLeaf: maxrecs,
                                                         maxRecordsNode: maxrecs)
                    #expect(header.check(expected, geometry: g, fsBlock: ptr) == nil)
                    #expect(block.withUnsafeBytes { OnDiskBTreeBlock.verifyCRC($0, isLongForm: true) })
                    // An rmap record (agbno, 1, ino, bmbt) covers the block.
                    #expect(corpus.contains { $0.agno == agno && $0.record.owner == ino && $0.record.isBmbtBlock
                            && $0.record.startBlock <= agbno && agbno < $0.record.startBlock + $0.record.blockCount })
                    if header.level == 0 {
                        let recs = block.withUnsafeBytes { raw in
                            (0 ..< Int(header.numRecords)).map { BmbtFormat.loadRecord(from: raw.baseAddress! + 72 + 16 * $0) }
                        }
                        #expect(recs.allSatisfy { BmbtFormat.check($0) == nil })
                        #expect(recs.map(\.startOffset) == recs.map(\.startOffset).sorted())
                    }
                    checked += 1
                }
            }
        }
        #expect(checked > 0)
    }

    @Test("bad inodes give errors naming the inode and the check")
    func badInodes() throws {
        let image = try TestImage("mixed-4k")
        let g = image.geometry
        let ino = image.superblock.rootIno
        let offset = try #require(g.byteOffset(ofInode: ino))
        let good = try image.bytes(at: offset, count: Int(g.inodeSize))
        func load(_ edit: (inout [UInt8]) -> Void, fixCRC: Bool = true, as number: UInt64? = nil) -> XFSFormatError? {
            var bytes = good
            edit(&bytes)
            if fixCRC { bytes.withUnsafeMutableBytes { CRC32C.update($0, crcFieldAt: InodeCore.crcOffset) } }
            return bytes.withUnsafeBytes { raw in
                formatError { () throws(XFSFormatError) in _ = try Inode.load(from: raw, ino: number ?? ino, geometry: g) }
            }
        }
        #expect(load({ _ in }) == nil)
        #expect(load({ $0[200] ^= 1 }, fixCRC: false)?.description == "inode 128: bad CRC")
        #expect(load({ $0[0] = 0 })?.kind == .badMagic)
        #expect(load({ $0[4] = 2 })?.description == "inode 128: inode version 2 is not 3")
        #expect(load({ _ in }, as: 129)?.description == "inode 129: ino field 128 is not the inode's number")
        #expect(load({ $0[79] = 40 })?.description == "inode 128: data fork extent count 40 exceeds fork size")
        #expect(load({ $0[5] = 0 })?.detail.contains("not legal for a directory") == true)
        #expect(load({ $0[82] = 60 })?.detail.contains("forkoff 60") == true)
        #expect(load({ $0[2] = 0; $0[3] = 0 })?.detail == "mode is 0 (the inode is free)")
        #expect(load({ $0[170] ^= 1 })?.detail.hasPrefix("uuid") == true)
        #expect(good.prefix(100).withUnsafeBytes { raw in
            formatError { () throws(XFSFormatError) in _ = try Inode.load(from: raw, ino: ino, geometry: g) }
        }?.kind == .truncated)
        // Random bytes never trap.
        var rng = SeededRandom(seed: 11)
        for _ in 0 ..< 300 {
            var bytes = good
            for _ in 0 ..< 8 { bytes[Int.random(in: 0 ..< bytes.count, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng) }
            bytes.withUnsafeMutableBytes { CRC32C.update($0, crcFieldAt: InodeCore.crcOffset) }
            _ = bytes.withUnsafeBytes { raw in
                formatError { () throws(XFSFormatError) in _ = try Inode.load(from: raw, ino: ino, geometry: g) }
            }
        }
    }

    @Test("nrext64 counters are read from bytes 24 and 76 when the inode says so")
    func nrext64() throws {
        var bytes = [UInt8](repeating: 0, count: 176)
        bytes[127] = 0x18 // flags2: BIGTIME | NREXT64
        bytes[31] = 7 // big_nextents = 7
        bytes[79] = 3 // big_anextents = 3
        bytes[81] = 9 // pad in nrext64 form
        let core = try bytes.withUnsafeBytes { try InodeCore.decode($0, location: "inode 1") }
        #expect(core.hasNrext64 && core.dataExtentCount == 7 && core.attrExtentCount == 3)
        bytes[127] = 0x08
        let legacy = try bytes.withUnsafeBytes { try InodeCore.decode($0, location: "inode 1") }
        #expect(!legacy.hasNrext64 && legacy.dataExtentCount == 3 && legacy.attrExtentCount == 9)
    }

    @Test("fork geometry follows forkoff, even with an empty attr fork")
    func forkGeometry() {
        let none = InodeForkGeometry(inodeSize: 512, forkOffset: 0)
        #expect(none.literalSize == 336 && none.dataForkSize == 336 && none.attrForkSize == 0)
        let quirk = InodeForkGeometry(inodeSize: 512, forkOffset: 24)
        #expect(quirk.dataForkSize == 192 && quirk.attrForkStart == 368 && quirk.attrForkSize == 144)
        #expect(BmbtRoot.maxRecords(forkSize: 192) == 11)
        #expect(!InodeForkGeometry(inodeSize: 256, forkOffset: 10).isValid)
    }
}
