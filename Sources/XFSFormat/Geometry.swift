/// The geometry of one filesystem and the arithmetic between its address spaces.
///
/// XFS has three ways to name a block, and mixing them up is the classic bug:
///
///     agbno    block within an AG                       0 ..< agLength(agno)
///     fsblock  (agno << agblklog) | agbno               bmbt records and pointers, sb_logstart
///     daddr    (agno * agblocks + agbno) * (bs / 512)   disk offsets, btree header `blkno`
///
/// `agblklog` is ceil(log2(agblocks)), so when agblocks is not a power of two the fsblock
/// space has gaps. Inode numbers are (agno << (agblklog + inopblog)) | agino, where
/// agino = (agbno << inopblog) | slot.
///
/// Functions named `is…` validate; the converters assume valid input and `precondition`
/// only on values that cannot come from a checked structure (misuse).
public struct Geometry: Sendable, Equatable {
    /// XFS's minimum AG size in blocks.
    public static let minAGBlocks: UInt32 = 64
    /// Inodes in one inode chunk (one inobt record).
    public static let inodesPerChunk: UInt32 = 64
    /// AG block number meaning "none" (unused AGFL slot, no sibling).
    public static let nullAGBlock: UInt32 = 0xFFFF_FFFF
    /// Filesystem block number meaning "none" (no long-form sibling).
    public static let nullFSBlock: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    /// AG inode number meaning "none" (AGI unlinked buckets, dirino).
    public static let nullAGIno: UInt32 = 0xFFFF_FFFF

    /// Bytes per filesystem block.
    public let blockSize: UInt32
    /// log2 of `blockSize`.
    public let blockLog: UInt8
    /// Bytes per sector.
    public let sectorSize: UInt32
    /// Bytes per inode.
    public let inodeSize: UInt32
    /// log2 of `inodeSize`.
    public let inodeLog: UInt8
    /// Inodes per block.
    public let inodesPerBlock: UInt32
    /// log2 of `inodesPerBlock`.
    public let inodesPerBlockLog: UInt8
    /// Blocks per AG (the last AG may be shorter: `agLength(_:)`).
    public let agBlocks: UInt32
    /// The number of AGs.
    public let agCount: UInt32
    /// log2 of `agBlocks`, rounded up: the width of an AG block number in an fsblock.
    public let agBlockLog: UInt8
    /// Blocks of the data device.
    public let dataBlocks: UInt64
    /// The internal log's first block (fsblock); 0 for an external log.
    public let logStart: UInt64
    /// Blocks of the log.
    public let logBlocks: UInt32
    /// Whether inode chunks may be sparse.
    public let hasSparseInodes: Bool
    /// Whether files may share blocks (refcount btree).
    public let hasReflink: Bool
    /// Whether AGs have a free inode btree.
    public let hasFinobt: Bool
    /// Whether AGs have a reverse-mapping btree.
    public let hasRmapBT: Bool
    /// The UUID stamped into metadata.
    public let metaUUID: FSUUID

    /// The geometry described by a (validated) superblock.
    public init(_ sb: Superblock) {
        blockSize = sb.blockSize
        blockLog = sb.blockLog
        sectorSize = UInt32(sb.sectorSize)
        inodeSize = UInt32(sb.inodeSize)
        inodeLog = sb.inodeLog
        inodesPerBlock = UInt32(sb.inodesPerBlock)
        inodesPerBlockLog = sb.inodesPerBlockLog
        agBlocks = sb.agBlocks
        agCount = sb.agCount
        agBlockLog = sb.agBlockLog
        dataBlocks = sb.dataBlocks
        logStart = sb.logStart
        logBlocks = sb.logBlocks
        hasSparseInodes = sb.hasSparseInodes
        hasReflink = sb.hasReflink
        hasFinobt = sb.hasFinobt
        hasRmapBT = sb.hasRmapBT
        metaUUID = sb.metaUUID
    }

    /// ceil(log2(v)) for v ≥ 1 (0 for v ≤ 1).
    public static func ceilLog2(_ v: UInt64) -> UInt8 {
        v <= 1 ? 0 : UInt8(64 - (v - 1).leadingZeroBitCount)
    }

    // MARK: Blocks

    /// Mask of the agbno bits of an fsblock: (1 << agblklog) − 1.
    public var agBlockMask: UInt64 { (UInt64(1) << agBlockLog) - 1 }
    /// 512-byte basic blocks per filesystem block.
    public var basicBlocksPerBlock: UInt64 { UInt64(blockSize) >> 9 }

    /// The AG number part of an fsblock.
    public func agNumber(ofFSBlock fsb: UInt64) -> UInt64 { fsb >> agBlockLog }
    /// The agbno part of an fsblock.
    public func agBlock(ofFSBlock fsb: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: fsb & agBlockMask) }
    /// Splits an fsblock into (agno, agbno) when it names a block inside the data device.
    public func split(fsBlock fsb: UInt64) -> (agno: UInt32, agbno: UInt32)? {
        let agno = agNumber(ofFSBlock: fsb)
        guard agno < UInt64(agCount) else { return nil }
        let agbno = agBlock(ofFSBlock: fsb)
        guard agbno < agLength(UInt32(agno)) else { return nil }
        return (UInt32(agno), agbno)
    }
    /// Whether an fsblock names a block inside the data device.
    public func isValidFSBlock(_ fsb: UInt64) -> Bool { split(fsBlock: fsb) != nil }
    /// The fsblock of (agno, agbno).
    public func fsBlock(agno: UInt32, agbno: UInt32) -> UInt64 { UInt64(agno) << agBlockLog | UInt64(agbno) }
    /// Whether `count` blocks from fsblock `fsb` all lie inside one AG.
    public func isValidFSExtent(start fsb: UInt64, count: UInt64) -> Bool {
        guard count > 0, let (agno, agbno) = split(fsBlock: fsb) else { return false }
        return UInt64(agbno) + count <= UInt64(agLength(agno))
    }

    /// Blocks in AG `agno`: agblocks, except the last AG, which gets what remains of dblocks.
    public func agLength(_ agno: UInt32) -> UInt32 {
        precondition(agno < agCount, "AG \(agno) is beyond agcount \(agCount)")
        if agno < agCount - 1 { return agBlocks }
        return UInt32(dataBlocks - UInt64(agCount - 1) * UInt64(agBlocks))
    }

    /// The linear block number of (agno, agbno): agno × agblocks + agbno.
    public func linearBlock(agno: UInt32, agbno: UInt32) -> UInt64 { UInt64(agno) * UInt64(agBlocks) + UInt64(agbno) }
    /// The daddr (512-byte units) of (agno, agbno), as stored in btree headers' `blkno`.
    public func daddr(agno: UInt32, agbno: UInt32) -> UInt64 { linearBlock(agno: agno, agbno: agbno) * basicBlocksPerBlock }
    /// The daddr of an fsblock (converted through (agno, agbno), never linearly).
    public func daddr(fsBlock fsb: UInt64) -> UInt64 {
        daddr(agno: UInt32(truncatingIfNeeded: agNumber(ofFSBlock: fsb)), agbno: agBlock(ofFSBlock: fsb))
    }
    /// The byte offset in the image of (agno, agbno).
    public func byteOffset(agno: UInt32, agbno: UInt32) -> UInt64 { linearBlock(agno: agno, agbno: agbno) * UInt64(blockSize) }
    /// The byte offset in the image of an fsblock.
    public func byteOffset(fsBlock fsb: UInt64) -> UInt64 { daddr(fsBlock: fsb) << 9 }
    /// The byte offset in the image of a daddr.
    public func byteOffset(daddr: UInt64) -> UInt64 { daddr << 9 }

    // MARK: AG headers

    /// Byte offset of AG `agno`'s first byte.
    public func agByteOffset(_ agno: UInt32) -> UInt64 { byteOffset(agno: agno, agbno: 0) }
    /// Byte offset of AG `agno`'s superblock copy (sector 0).
    public func superblockByteOffset(_ agno: UInt32) -> UInt64 { agByteOffset(agno) }
    /// Byte offset of AG `agno`'s AGF (sector 1).
    public func agfByteOffset(_ agno: UInt32) -> UInt64 { agByteOffset(agno) + UInt64(sectorSize) }
    /// Byte offset of AG `agno`'s AGI (sector 2).
    public func agiByteOffset(_ agno: UInt32) -> UInt64 { agByteOffset(agno) + 2 * UInt64(sectorSize) }
    /// Byte offset of AG `agno`'s AGFL (sector 3).
    public func agflByteOffset(_ agno: UInt32) -> UInt64 { agByteOffset(agno) + 3 * UInt64(sectorSize) }
    /// Slots in the AGFL array: (sectsize − 36) / 4.
    public var agflSize: UInt32 { (sectorSize - UInt32(AGFL.headerSize)) / 4 }
    /// The AG block holding the AGFL: (3 × sectsize) / blocksize.
    public var agflBlock: UInt32 { 3 * sectorSize / blockSize }
    /// Length of the OWN_FS rmap record at agbno 0 (the header blocks): agflBlock + 1.
    public var ownFSLength: UInt32 { agflBlock + 1 }
    /// The internal log as (agno, agbno, length), if it is internal.
    public var internalLog: (agno: UInt32, agbno: UInt32, length: UInt32)? {
        guard logStart != 0 else { return nil }
        return (UInt32(truncatingIfNeeded: agNumber(ofFSBlock: logStart)), agBlock(ofFSBlock: logStart), logBlocks)
    }

    // MARK: Inodes

    /// Bits of an AG inode number: agblklog + inopblog.
    public var agInodeBits: UInt8 { agBlockLog + inodesPerBlockLog }
    /// The absolute inode number of AG inode `agino` in AG `agno`.
    public func inodeNumber(agno: UInt32, agino: UInt32) -> UInt64 { UInt64(agno) << agInodeBits | UInt64(agino) }
    /// The AG number of an inode number.
    public func agNumber(ofInode ino: UInt64) -> UInt64 { ino >> agInodeBits }
    /// The AG-relative inode number.
    public func agInode(ofInode ino: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: ino & ((UInt64(1) << agInodeBits) - 1)) }
    /// The AG block holding AG inode `agino`.
    public func agBlock(ofAGInode agino: UInt32) -> UInt32 { agino >> inodesPerBlockLog }
    /// Splits an inode number into (agno, agino) when it lies inside the data device.
    public func split(inode ino: UInt64) -> (agno: UInt32, agino: UInt32)? {
        let agno = agNumber(ofInode: ino)
        guard agno < UInt64(agCount) else { return nil }
        let agino = agInode(ofInode: ino)
        guard agBlock(ofAGInode: agino) < agLength(UInt32(agno)) else { return nil }
        return (UInt32(agno), agino)
    }
    /// Whether an inode number points inside the data device.
    public func isValidInode(_ ino: UInt64) -> Bool { split(inode: ino) != nil }

    /// Where an inode lives: its AG, AG block and byte offset within that block.
    public struct InodeLocation: Sendable, Equatable {
        /// The AG number.
        public var agno: UInt32
        /// The block number within the AG.
        public var agbno: UInt32
        /// Byte offset of the inode inside its block.
        public var offsetInBlock: UInt32
    }

    /// The location of an inode, or nil when the number is outside the data device.
    public func location(ofInode ino: UInt64) -> InodeLocation? {
        guard let (agno, agino) = split(inode: ino) else { return nil }
        let slot = agino & (inodesPerBlock - 1)
        return InodeLocation(agno: agno, agbno: agBlock(ofAGInode: agino), offsetInBlock: slot * inodeSize)
    }
    /// The byte offset of an inode in the image, or nil when it is outside the data device.
    public func byteOffset(ofInode ino: UInt64) -> UInt64? {
        guard let loc = location(ofInode: ino) else { return nil }
        return byteOffset(agno: loc.agno, agbno: loc.agbno) + UInt64(loc.offsetInBlock)
    }
    /// Blocks spanned by a full inode chunk: 64 / inopblock, at least 1.
    public var blocksPerChunk: UInt32 { max(1, Geometry.inodesPerChunk / inodesPerBlock) }

    // MARK: Btree limits

    /// maxrecs of a btree block: (blocksize − header) / (leaf: record; node: key slot + pointer).
    public func maxRecords(headerSize: Int, entrySize: Int) -> Int { (Int(blockSize) - headerSize) / entrySize }

    /// The smallest height a btree needs for `records` records with the given minrecs per
    /// leaf and per node (libxfs' maxlevels computation, re-derived).
    public static func maxLevels(minLeaf: Int, minNode: Int, records: UInt64) -> Int {
        precondition(minLeaf > 0 && minNode > 1, "minrecs must be positive")
        var blocks = (records + UInt64(minLeaf) - 1) / UInt64(minLeaf)
        var levels = 1
        while blocks > 1 {
            blocks = (blocks + UInt64(minNode) - 1) / UInt64(minNode)
            levels += 1
        }
        return levels
    }

    private func minrecs(header: Int, record: Int, keySlot: Int, pointer: Int) -> (leaf: Int, node: Int) {
        (maxRecords(headerSize: header, entrySize: record) / 2,
         maxRecords(headerSize: header, entrySize: keySlot + pointer) / 2)
    }

    /// Largest legal height of the bnobt and cntbt.
    public var maxAllocBTreeLevels: Int {
        let m = minrecs(header: ShortBTreeBlockHeader.size, record: 8, keySlot: 8, pointer: 4)
        return Geometry.maxLevels(minLeaf: m.leaf, minNode: m.node, records: (UInt64(agBlocks) + 1) / 2)
    }
    /// Largest legal height of the inobt and finobt.
    public var maxInodeBTreeLevels: Int {
        let m = minrecs(header: ShortBTreeBlockHeader.size, record: 16, keySlot: 4, pointer: 4)
        let chunks = (UInt64(1) << agInodeBits) / UInt64(Geometry.inodesPerChunk)
        return Geometry.maxLevels(minLeaf: m.leaf, minNode: m.node, records: max(1, chunks))
    }
    /// Largest legal height of the refcountbt.
    public var maxRefcountBTreeLevels: Int {
        let m = minrecs(header: ShortBTreeBlockHeader.size, record: 12, keySlot: 4, pointer: 4)
        return Geometry.maxLevels(minLeaf: m.leaf, minNode: m.node, records: UInt64(agBlocks))
    }
    /// Largest legal height of the rmapbt. With reflink any number of owners can share a
    /// block, so the bound is the tallest tree the AG's blocks could hold (§3 of the format
    /// notes); without reflink it is the height for one record per block.
    public var maxRmapBTreeLevels: Int {
        let m = minrecs(header: ShortBTreeBlockHeader.size, record: 24, keySlot: 40, pointer: 4)
        guard hasReflink else {
            return Geometry.maxLevels(minLeaf: m.leaf, minNode: m.node, records: UInt64(agBlocks))
        }
        var node: UInt64 = 2
        var left = UInt64(agBlocks) - 1
        var height = 1
        while node < left {
            left -= node
            node *= UInt64(m.node)
            height += 1
        }
        return height
    }
}
