import XFSBTree

/// The AG inode header (sector 2 of each AG): inobt and finobt roots, inode counters and
/// the unlinked-inode hash buckets.
public struct AGI: Sendable, Equatable {
    /// "XAGI".
    public static let magic: UInt32 = 0x5841_4749
    /// Size of the on-disk structure.
    public static let structSize = 344
    /// Offset of the little-endian CRC32c, which covers the sector.
    public static let crcOffset = 312
    /// Number of unlinked-list buckets.
    public static let unlinkedBuckets = 64

    /// `agi_magicnum`: "XAGI".
    public var magicnum: UInt32
    /// `agi_versionnum`: 1.
    public var versionNum: UInt32
    /// `agi_seqno`: the AG number.
    public var seqno: UInt32
    /// `agi_length`: blocks in this AG.
    public var length: UInt32
    /// Allocated inodes (sparse holes excluded).
    public var count: UInt32
    /// `agi_root`: the root block of the inode btree.
    public var root: UInt32
    /// Height of the inobt.
    public var level: UInt32
    /// `agi_freecount`: free inodes.
    public var freeCount: UInt32
    /// `agi_newino`: the most recently allocated inode chunk.
    public var newIno: UInt32
    /// `agi_dirino`: unused (null).
    public var dirIno: UInt32
    /// AG inode numbers heading the unlinked lists; ``Geometry/nullAGIno`` when empty.
    public var unlinked: [UInt32]
    /// `agi_uuid`: the filesystem's metadata uuid.
    public var uuid: FSUUID
    /// The stored CRC (read little-endian).
    public var crc: UInt32
    /// `agi_lsn`: the log sequence number of the last write.
    public var lsn: UInt64
    /// `agi_free_root`: the root block of the free inode btree.
    public var freeRoot: UInt32
    /// Height of the finobt.
    public var freeLevel: UInt32
    /// inobt blocks including the root (with INOBTCNT).
    public var inobtBlocks: UInt32
    /// finobt blocks including the root (with INOBTCNT).
    public var finobtBlocks: UInt32

    /// Decodes the AGI structure without checking anything.
    public static func decode(_ bytes: UnsafeRawBufferPointer, agno: UInt32) throws(XFSFormatError) -> AGI {
        let r = ByteReader(bytes, location: "AG \(agno) AGI")
        try r.require(structSize, at: 0, "AGI structure")
        var unlinked: [UInt32] = []
        unlinked.reserveCapacity(unlinkedBuckets)
        for i in 0 ..< unlinkedBuckets { unlinked.append(try r.u32(at: 40 + 4 * i)) }
        return AGI(
            magicnum: try r.u32(at: 0), versionNum: try r.u32(at: 4), seqno: try r.u32(at: 8),
            length: try r.u32(at: 12), count: try r.u32(at: 16), root: try r.u32(at: 20),
            level: try r.u32(at: 24), freeCount: try r.u32(at: 28), newIno: try r.u32(at: 32),
            dirIno: try r.u32(at: 36), unlinked: unlinked, uuid: try r.uuid(at: 296),
            crc: try r.u32LittleEndian(at: 312), lsn: try r.u64(at: 320), freeRoot: try r.u32(at: 328),
            freeLevel: try r.u32(at: 332), inobtBlocks: try r.u32(at: 336), finobtBlocks: try r.u32(at: 340))
    }

    /// Decodes and verifies AG `agno`'s AGI sector: magic, version, CRC, seqno, length, uuid,
    /// inobt/finobt roots and heights, counters, and unlinked buckets (each empty or inside the AG).
    public static func load(from sector: UnsafeRawBufferPointer, agno: UInt32, geometry g: Geometry) throws(XFSFormatError) -> AGI {
        let header = AGHeaderCheck(name: "AGI", agno: agno, geometry: g)
        func bad(_ s: String) -> XFSFormatError { header.corrupt(s) }
        let agi = try decode(sector, agno: agno)
        try header.verify(sector, magic: agi.magicnum, expectedMagic: magic, version: agi.versionNum, crcOffset: crcOffset,
                          seqno: agi.seqno, length: agi.length, uuid: agi.uuid)
        let maxLevels = g.maxInodeBTreeLevels
        guard agi.level >= 1, agi.level <= UInt32(maxLevels) else { throw bad("inobt level \(agi.level) is outside 1...\(maxLevels)") }
        guard agi.root > g.agflBlock, agi.root < agi.length else { throw bad("inobt root \(agi.root.pointerText) is outside the AG") }
        if g.hasFinobt {
            guard agi.freeLevel >= 1, agi.freeLevel <= UInt32(maxLevels) else {
                throw bad("finobt level \(agi.freeLevel) is outside 1...\(maxLevels)")
            }
            guard agi.freeRoot > g.agflBlock, agi.freeRoot < agi.length else { throw bad("finobt root \(agi.freeRoot.pointerText) is outside the AG") }
        }
        guard agi.freeCount <= agi.count else { throw bad("freecount \(agi.freeCount) exceeds count \(agi.count)") }
        let maxAGIno = UInt64(agi.length) << g.inodesPerBlockLog
        for (i, head) in agi.unlinked.enumerated() where head != Geometry.nullAGIno && UInt64(head) >= maxAGIno {
            throw bad("unlinked[\(i)] = \(head) is outside the AG")
        }
        return agi
    }

    /// Whether every unlinked bucket is empty (required on a cleanly unmounted filesystem).
    public var unlinkedListsAreEmpty: Bool { unlinked.allSatisfy { $0 == Geometry.nullAGIno } }
}
