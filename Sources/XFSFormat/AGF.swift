import XFSBTree

/// The AG free-space header (sector 1 of each AG): free-space, rmap and refcount btree roots,
/// the free list window, and block counters.
public struct AGF: Sendable, Equatable {
    /// "XAGF".
    public static let magic: UInt32 = 0x5841_4746
    /// Size of the on-disk structure; the rest of the sector is zero.
    public static let structSize = 224
    /// Offset of the little-endian CRC32c, which covers the sector.
    public static let crcOffset = 216

    /// `agf_magicnum`: "XAGF".
    public var magicnum: UInt32
    /// `agf_versionnum`: 1.
    public var versionNum: UInt32
    /// `agf_seqno`: the AG number.
    public var seqno: UInt32
    /// `agf_length`: blocks in this AG.
    public var length: UInt32
    /// `agf_bno_root`: the root block of the by-block free-space btree.
    public var bnoRoot: UInt32
    /// `agf_cnt_root`: the root block of the by-size free-space btree.
    public var cntRoot: UInt32
    /// `agf_rmap_root`: the root block of the rmap btree.
    public var rmapRoot: UInt32
    /// Heights (not root levels) of the bnobt, cntbt and rmapbt.
    public var bnoLevel: UInt32
    /// `agf_cnt_level`: the cntbt's height.
    public var cntLevel: UInt32
    /// `agf_rmap_level`: the rmapbt's height.
    public var rmapLevel: UInt32
    /// `agf_flfirst`: the first slot of the free list in use.
    public var flFirst: UInt32
    /// `agf_fllast`: the last slot of the free list in use.
    public var flLast: UInt32
    /// `agf_flcount`: blocks on the free list.
    public var flCount: UInt32
    /// `agf_freeblks`: free blocks in the AG (free list excluded).
    public var freeBlocks: UInt32
    /// `agf_longest`: the longest free extent.
    public var longest: UInt32
    /// Non-root blocks of the bnobt, cntbt and rmapbt.
    public var btreeBlocks: UInt32
    /// `agf_uuid`: the filesystem's metadata uuid.
    public var uuid: FSUUID
    /// rmapbt blocks including the root.
    public var rmapBlocks: UInt32
    /// refcountbt blocks including the root.
    public var refcountBlocks: UInt32
    /// `agf_refcount_root`: the root block of the refcount btree.
    public var refcountRoot: UInt32
    /// `agf_refcount_level`: the refcount btree's height.
    public var refcountLevel: UInt32
    /// `agf_lsn`: the log sequence number of the last write.
    public var lsn: UInt64
    /// The stored CRC (read little-endian).
    public var crc: UInt32

    /// Decodes the AGF structure without checking anything.
    public static func decode(_ bytes: UnsafeRawBufferPointer, agno: UInt32) throws(XFSFormatError) -> AGF {
        let r = ByteReader(bytes, location: "AG \(agno) AGF")
        try r.require(structSize, at: 0, "AGF structure")
        return AGF(
            magicnum: try r.u32(at: 0), versionNum: try r.u32(at: 4), seqno: try r.u32(at: 8),
            length: try r.u32(at: 12), bnoRoot: try r.u32(at: 16), cntRoot: try r.u32(at: 20),
            rmapRoot: try r.u32(at: 24), bnoLevel: try r.u32(at: 28), cntLevel: try r.u32(at: 32),
            rmapLevel: try r.u32(at: 36), flFirst: try r.u32(at: 40), flLast: try r.u32(at: 44),
            flCount: try r.u32(at: 48), freeBlocks: try r.u32(at: 52), longest: try r.u32(at: 56),
            btreeBlocks: try r.u32(at: 60), uuid: try r.uuid(at: 64), rmapBlocks: try r.u32(at: 80),
            refcountBlocks: try r.u32(at: 84), refcountRoot: try r.u32(at: 88), refcountLevel: try r.u32(at: 92),
            lsn: try r.u64(at: 208), crc: try r.u32LittleEndian(at: 216))
    }

    /// Decodes and verifies AG `agno`'s AGF sector: magic, version, CRC over the sector,
    /// seqno, length, uuid, btree roots and heights, free-list window and counters.
    ///
    /// With `checkingRmap` false the rmapbt's fields (root, level, rmap_blocks) are left
    /// unchecked, for a caller that reads everything else the AGF governs and judges those
    /// fields on their own (``rmapFieldProblem(geometry:)``): a damaged rmapbt root does not
    /// make the free-space and refcount btrees unreadable.
    public static func load(from sector: UnsafeRawBufferPointer, agno: UInt32, geometry g: Geometry,
                            checkingRmap: Bool = true) throws(XFSFormatError) -> AGF {
        let header = AGHeaderCheck(name: "AGF", agno: agno, geometry: g)
        func bad(_ s: String) -> XFSFormatError { header.corrupt(s) }
        let agf = try decode(sector, agno: agno)
        try header.verify(sector, magic: agf.magicnum, expectedMagic: magic, version: agf.versionNum, crcOffset: crcOffset,
                          seqno: agf.seqno, length: agf.length, uuid: agf.uuid)

        func checkTree(_ name: String, root: UInt32, level: UInt32, max: Int) throws(XFSFormatError) {
            guard level >= 1, level <= UInt32(max) else { throw bad("\(name) level \(level) is outside 1...\(max)") }
            guard root > g.agflBlock, root < agf.length else { throw bad("\(name) root \(root.pointerText) is outside the AG") }
        }
        try checkTree("bnobt", root: agf.bnoRoot, level: agf.bnoLevel, max: g.maxAllocBTreeLevels)
        try checkTree("cntbt", root: agf.cntRoot, level: agf.cntLevel, max: g.maxAllocBTreeLevels)
        if g.hasRmapBT {
            if checkingRmap, let problem = agf.rmapFieldProblem(geometry: g) { throw bad(problem) }
        }
        if g.hasReflink {
            try checkTree("refcountbt", root: agf.refcountRoot, level: agf.refcountLevel, max: g.maxRefcountBTreeLevels)
            guard agf.refcountBlocks >= 1, agf.refcountBlocks <= agf.length else {
                throw bad("refcount_blocks \(agf.refcountBlocks) is outside 1...length")
            }
        }
        let size = g.agflSize
        guard agf.flFirst < size else { throw bad("flfirst \(agf.flFirst) is not below the AGFL size \(size)") }
        guard agf.flLast < size else { throw bad("fllast \(agf.flLast) is not below the AGFL size \(size)") }
        guard agf.flCount <= size else { throw bad("flcount \(agf.flCount) exceeds the AGFL size \(size)") }
        guard agf.freeBlocks >= agf.longest else { throw bad("freeblks \(agf.freeBlocks) is less than longest \(agf.longest)") }
        guard agf.freeBlocks <= agf.length else { throw bad("freeblks \(agf.freeBlocks) exceeds length \(agf.length)") }
        guard agf.btreeBlocks <= agf.length else { throw bad("btreeblks \(agf.btreeBlocks) exceeds length \(agf.length)") }
        return agf
    }

    /// What is wrong with the rmapbt's fields (root, level, rmap_blocks), or nil.
    public func rmapFieldProblem(geometry g: Geometry) -> String? {
        guard rmapLevel >= 1, rmapLevel <= UInt32(g.maxRmapBTreeLevels) else {
            return "rmapbt level \(rmapLevel) is outside 1...\(g.maxRmapBTreeLevels)"
        }
        guard rmapRoot > g.agflBlock, rmapRoot < length else { return "rmapbt root \(rmapRoot.pointerText) is outside the AG" }
        guard rmapBlocks >= 1, rmapBlocks <= length else { return "rmap_blocks \(rmapBlocks) is outside 1...length" }
        return nil
    }

    /// Whether the free-list window is inconsistent, so the kernel would reset the AGFL:
    /// flcount differs from the number of slots from flfirst to fllast (wrapping at
    /// `agflSize`). An empty list (flcount 0) never needs a reset.
    public func freeListNeedsReset(agflSize: UInt32) -> Bool {
        guard flCount != 0 else { return false }
        guard flFirst < agflSize, flLast < agflSize, flCount <= agflSize else { return true }
        let span = flLast >= flFirst ? flLast - flFirst + 1 : agflSize - flFirst + flLast + 1
        return span != flCount
    }

    /// The AGFL slot indices of the active entries, in order: `flcount` indices from `flfirst`,
    /// wrapping at `agflSize`.
    public func activeFreeListSlots(agflSize: UInt32) -> [Int] {
        precondition(agflSize > 0, "AGFL size must be positive")
        return (0 ..< Int(min(flCount, agflSize))).map { (Int(flFirst) + $0) % Int(agflSize) }
    }
}
