import Glibc
import XFSBuffer
import XFSFormat

/// One metadata structure of the base image: what it is, where it lies in the image and
/// in the fuzz input, where its CRC is, and its fields.
struct Region: Sendable {
    /// What kind of structure; the report tallies fields per kind.
    enum Kind: String, Sendable, CaseIterable {
        case superblock, secondarySuperblock = "secondary superblock", agf = "AGF", agi = "AGI", agfl = "AGFL"
        case bnobt, cntbt, inobt, finobt, refcountbt, rmapbt, bmbt, inode, freeInode = "free inode"
    }

    var kind: Kind
    /// "AG 1 rmapbt block 12 (level 0)", "inode 133", ...
    var label: String
    var imageOffset: UInt64
    var inputOffset: Int
    var length: Int
    var crcOffset: Int
    var fields: [Field]

    /// Whether the check reads it on the clean image: secondary superblocks and free inodes
    /// are never read, so a bad CRC there may pass.
    var isRead: Bool { kind != .secondarySuperblock && kind != .freeInode }

    /// The input bytes of this region.
    var inputRange: Range<Int> { inputOffset ..< inputOffset + length }
}

/// Every metadata structure of a clean base image, laid end to end: the fuzz input is that
/// concatenation (changed), and each case writes it back over a working copy of the image.
///
/// The regions are the AG headers (superblock, AGF, AGI and AGFL sectors), every block of
/// every AG btree, every bmbt block, and every inode on disk (allocated or free) of every
/// inode chunk. They are found with the library on the clean image, before any fuzzing.
final class Layout: @unchecked Sendable {
    /// The base image.
    let path: String
    /// Its size in bytes.
    let imageSize: Int
    let geometry: Geometry
    let regions: [Region]
    /// The clean input: every region's bytes, in order.
    let clean: [UInt8]
    /// For each input byte, the index of its field in `fieldNames` (bytes in no field get
    /// their region kind's "unused" field).
    let fieldOfByte: [Int32]
    /// Field tally keys: "rmapbt rec.owner", with the field's dependence.
    let fieldNames: [(name: String, dependence: Dependence)]
    /// Region index of each input byte's region, via `regionStarts` (sorted).
    let regionStarts: [Int]

    var inputSize: Int { clean.count }

    init(path: String) throws {
        self.path = path
        let image = try XFSImage(path: path)
        let g = image.geometry
        geometry = g
        imageSize = Int(image.target.deviceSize)
        let sector = Int(g.sectorSize)
        let block = Int(g.blockSize)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FuzzError("cannot open \(path): errno \(errno)") }
        defer { close(fd) }
        func bytes(_ offset: UInt64, _ length: Int) throws -> [UInt8] {
            var b = [UInt8](repeating: 0, count: length)
            let n = b.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, off_t(offset)) }
            guard n == length else { throw FuzzError("short read at \(offset)") }
            return b
        }
        func u16(_ b: [UInt8], _ at: Int) -> Int { Int(b[at]) << 8 | Int(b[at + 1]) }

        var regions: [Region] = []
        var clean: [UInt8] = []
        func add(_ kind: Region.Kind, _ label: String, _ offset: UInt64, _ length: Int, crc: Int, _ fields: [Field]) throws {
            regions.append(Region(kind: kind, label: label, imageOffset: offset, inputOffset: clean.count, length: length,
                                  crcOffset: crc, fields: fields))
            clean += try bytes(offset, length)
        }
        func addBlock(_ kind: Region.Kind, tree: String, _ label: String, _ offset: UInt64, long: Bool) throws {
            let b = try bytes(offset, block)
            let level = u16(b, 4), numrecs = u16(b, 6)
            try add(kind, "\(label) (level \(level))", offset, block, crc: long ? 64 : 52,
                    FieldTables.btreeBlock(tree: tree, long: long, blockSize: block, level: level, numrecs: numrecs))
        }

        let sb = image.superblock
        var bmbtBlocks: [(UInt64, UInt64)] = []
        var inodeRegions: [(UInt64, Bool)] = []
        for agno in 0 ..< g.agCount {
            if agno == 0 {
                try add(.superblock, "superblock", g.superblockByteOffset(0), sector, crc: 224,
                        FieldTables.superblock(metaUUID: sb.hasMetaUUID))
            } else {
                try add(.secondarySuperblock, "AG \(agno) superblock", g.superblockByteOffset(agno), sector, crc: 224,
                        FieldTables.superblock(metaUUID: sb.hasMetaUUID).map { Field($0.name, $0.offset, $0.size, .unread) })
            }
            let headers = try image.agHeaders(agno)
            try add(.agf, "AG \(agno) AGF", g.agfByteOffset(agno), sector, crc: 216, FieldTables.agf)
            try add(.agi, "AG \(agno) AGI", g.agiByteOffset(agno), sector, crc: 312, FieldTables.agi)
            let active = Set(headers.agf.activeFreeListSlots(agflSize: g.agflSize))
            try add(.agfl, "AG \(agno) AGFL", g.agflByteOffset(agno), sector, crc: 32,
                    FieldTables.agfl(sectorSize: sector, activeSlots: active))
            var trees: [(Region.Kind, [UInt32])] = [
                (.bnobt, try image.blocks(FreeSpaceByBlockFormat.self, .bnobt, in: headers)),
                (.cntbt, try image.blocks(FreeSpaceByCountFormat.self, .cntbt, in: headers)),
                (.inobt, try image.inodeBTreeBlocks(.inobt, in: headers)),
                (.rmapbt, try image.blocks(RmapFormat.self, .rmapbt, in: headers)),
            ]
            if g.hasFinobt { trees.append((.finobt, try image.inodeBTreeBlocks(.finobt, in: headers))) }
            if g.hasReflink { trees.append((.refcountbt, try image.blocks(RefcountFormat.self, .refcountbt, in: headers))) }
            for (kind, blocks) in trees {
                for agbno in blocks {
                    try addBlock(kind, tree: kind.rawValue, "AG \(agno) \(kind.rawValue) block \(agbno)",
                                 g.byteOffset(agno: agno, agbno: agbno), long: false)
                }
            }
            for record in try image.inodeBTreeRecords(.inobt, in: headers) {
                for slot in 0 ..< 64 where record.holeSlots & (1 << UInt64(slot)) == 0 {
                    let ino = g.inodeNumber(agno: agno, agino: record.startIno + UInt32(slot))
                    inodeRegions.append((ino, record.free & (1 << UInt64(slot)) == 0))
                }
            }
        }
        for (ino, allocated) in inodeRegions {
            guard let offset = g.byteOffset(ofInode: ino) else { continue }
            guard allocated else {
                try add(.freeInode, "free inode \(ino)", offset, Int(g.inodeSize), crc: 100,
                        FieldTables.inode(nrext64: false, dataStart: 176, data: .none, attrStart: nil, attr: .none,
                                          attrHasMappings: false, dataCount: .unread, attrCount: .unread)
                            .map { Field($0.name, $0.offset, $0.size, .unread) })
                continue
            }
            let inode = try image.inode(ino)
            func content(_ fork: InodeFork?) -> FieldTables.ForkContent {
                switch fork {
                case .extents(let list)?: .extents(count: list.count)
                case .btree(let root)?: .btree(numrecs: Int(root.numRecords), maxrecs: root.maxRecords)
                default: .none
                }
            }
            func countDependence(_ fork: InodeFork?) -> Dependence {
                switch fork {
                case .btree?, .device?: .maybe
                default: .rmap
                }
            }
            let forkGeometry = InodeForkGeometry(inodeSize: Int(g.inodeSize), forkOffset: inode.core.forkOffset)
            var attrMaps = false
            for fork in [InodeFork.Which.data, .attr] {
                let m = try image.mappings(of: inode, fork: fork)
                if fork == .attr { attrMaps = !m.extents.isEmpty || !m.bmbtBlocks.isEmpty }
                bmbtBlocks += m.bmbtBlocks.map { ($0, ino) }
            }
            try add(.inode, "inode \(ino)", offset, Int(g.inodeSize), crc: 100,
                    FieldTables.inode(nrext64: inode.core.hasNrext64, dataStart: 176, data: content(inode.dataFork),
                                      attrStart: inode.core.hasAttrFork ? forkGeometry.attrForkStart : nil,
                                      attr: content(inode.attrFork), attrHasMappings: attrMaps,
                                      dataCount: countDependence(inode.dataFork), attrCount: countDependence(inode.attrFork)))
        }
        for (fsb, ino) in bmbtBlocks {
            try addBlock(.bmbt, tree: "bmbt", "inode \(ino) bmbt block \(fsb)", g.byteOffset(fsBlock: fsb), long: true)
        }

        // The byte → field map: every byte of a region belongs to one of its fields or to
        // the kind's "unused" field.
        var names: [(String, Dependence)] = []
        var index: [String: Int32] = [:]
        // The key names the dependence too: a field can be .rmap in one inode and .maybe in
        // another (an extent count of an extents fork and of a btree fork).
        func id(_ name: String, _ dependence: Dependence) -> Int32 {
            if let i = index[name] { return i }
            let i = Int32(names.count)
            names.append((name, dependence))
            index[name] = i
            return i
        }
        var map = [Int32](repeating: -1, count: clean.count)
        for region in regions {
            let unused = id("\(region.kind.rawValue) unused", .unread)
            for i in region.inputRange { map[i] = unused }
            for f in region.fields {
                let fid = id("\(region.kind.rawValue) \(f.name) [\(f.dependence.rawValue)]", f.dependence)
                for i in region.inputOffset + f.offset ..< region.inputOffset + min(region.length, f.offset + f.size) { map[i] = fid }
            }
        }
        self.regions = regions
        self.clean = clean
        self.fieldOfByte = map
        self.fieldNames = names.map { (name: $0.0, dependence: $0.1) }
        self.regionStarts = regions.map(\.inputOffset)
    }

    /// The index of the region holding input byte `i`.
    func region(at i: Int) -> Int {
        var lo = 0, hi = regionStarts.count
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if regionStarts[mid] <= i { lo = mid } else { hi = mid }
        }
        return lo
    }
}

/// A failure of the fuzz harness itself (not of the code under test).
struct FuzzError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
