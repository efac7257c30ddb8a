import XFSBTree
import XFSFormat
import XFSTestSupport

/// A fixture image opened for decoding: its verified superblock and geometry, and readers
/// for sectors, blocks and inodes. (The real image reader lives elsewhere; this is the
/// smallest thing the format tests need.)
struct TestImage {
    let name: String
    let path: String
    let file: ImageFile
    let superblock: Superblock
    let geometry: Geometry

    init(_ name: String) throws {
        self.name = name
        path = try Fixtures.imagePath(name)
        file = try ImageFile(path: path)
        let sector = try file.read(at: 0, count: 65536)
        superblock = try sector.withUnsafeBytes { try Superblock.load(from: $0) }
        geometry = superblock.geometry
    }

    func bytes(at offset: UInt64, count: Int) throws -> [UInt8] { try file.read(at: offset, count: count) }

    func sector(_ offset: UInt64) throws -> [UInt8] { try bytes(at: offset, count: Int(geometry.sectorSize)) }

    func block(agno: UInt32, agbno: UInt32) throws -> [UInt8] {
        try bytes(at: geometry.byteOffset(agno: agno, agbno: agbno), count: Int(geometry.blockSize))
    }

    func agf(_ agno: UInt32) throws -> AGF {
        try sector(geometry.agfByteOffset(agno)).withUnsafeBytes { try AGF.load(from: $0, agno: agno, geometry: geometry) }
    }

    func agi(_ agno: UInt32) throws -> AGI {
        try sector(geometry.agiByteOffset(agno)).withUnsafeBytes { try AGI.load(from: $0, agno: agno, geometry: geometry) }
    }

    func agfl(_ agno: UInt32) throws -> AGFL {
        try sector(geometry.agflByteOffset(agno)).withUnsafeBytes { try AGFL.load(from: $0, agno: agno, geometry: geometry) }
    }

    func inode(_ ino: UInt64) throws -> Inode {
        guard let offset = geometry.byteOffset(ofInode: ino) else { throw Fixtures.Failure(description: "inode \(ino) out of range") }
        return try bytes(at: offset, count: Int(geometry.inodeSize)).withUnsafeBytes {
            try Inode.load(from: $0, ino: ino, geometry: geometry)
        }
    }

    /// Every record of a short-form AG btree, in order, found by descending from `root`
    /// through the leftmost path and then following right siblings. Headers and CRCs are
    /// checked on every block.
    func leafRecords<F: BTreeRecordFormat>(_ format: F.Type, agno: UInt32, root: UInt32, height: UInt32) throws -> [F.Record] {
        let bs = Int(geometry.blockSize)
        let hdr = ShortBTreeBlockHeader.size
        let maxLeaf = OnDiskBTreeBlock.maxLeafRecords(blockSize: bs, headerSize: hdr, recordSize: F.recordSize)
        let slot = F.keySize * (F.isOverlapping ? 2 : 1)
        let maxNode = OnDiskBTreeBlock.maxNodeRecords(blockSize: bs, headerSize: hdr, keySlotSize: slot, pointerSize: 4)
        func load(_ agbno: UInt32, level: UInt16) throws -> ([UInt8], ShortBTreeBlockHeader) {
            let block = try self.block(agno: agno, agbno: agbno)
            let location = "AG \(agno) \(F.name) block \(agbno)"
            let header = try block.withUnsafeBytes { try ShortBTreeBlockHeader.decode($0, location: location) }
            let expected = BTreeBlockExpectation(
                magic: F.magic, uuid: geometry.metaUUID, daddr: geometry.daddr(agno: agno, agbno: agbno),
                owner: UInt64(agno), level: level, maxRecordsLeaf: maxLeaf, maxRecordsNode: maxNode,
                agLength: geometry.agLength(agno), agbno: agbno)
            if let failure = header.check(expected) { throw Fixtures.Failure(description: "\(location): \(failure)") }
            guard block.withUnsafeBytes({ OnDiskBTreeBlock.verifyCRC($0, isLongForm: false) }) else {
                throw Fixtures.Failure(description: "\(location): bad CRC")
            }
            return (block, header)
        }
        var agbno = root
        var level = UInt16(height - 1)
        while level > 0 {
            let (block, _) = try load(agbno, level: level)
            let ptr = OnDiskBTreeBlock.pointerOffset(0, headerSize: hdr, keySlotSize: slot, pointerSize: 4, maxRecords: maxNode)
            agbno = block.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: ptr, as: UInt32.self)) }
            level -= 1
        }
        var records: [F.Record] = []
        var visited = 0
        while agbno != Geometry.nullAGBlock {
            visited += 1
            guard visited <= Int(geometry.agLength(agno)) else { throw Fixtures.Failure(description: "sibling cycle") }
            let (block, header) = try load(agbno, level: 0)
            block.withUnsafeBytes { raw in
                for i in 0 ..< Int(header.numRecords) {
                    records.append(F.loadRecord(from: raw.baseAddress! + OnDiskBTreeBlock.recordOffset(i, headerSize: hdr, recordSize: F.recordSize)))
                }
            }
            agbno = header.rightSibling
        }
        return records
    }
}

/// The error `body` throws, or nil when it succeeds.
func formatError(_ body: () throws(XFSFormatError) -> Void) -> XFSFormatError? {
    do throws(XFSFormatError) {
        try body()
        return nil
    } catch {
        return error
    }
}
