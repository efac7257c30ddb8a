/// The AG free list (sector 3 of each AG): blocks reserved for refilling the AG btrees.
///
/// The array of `agflSize` AG block numbers is a ring; the AGF's flfirst/fllast/flcount say
/// which slots are active (see ``AGF/activeFreeListSlots(agflSize:)``).
public struct AGFL: Sendable, Equatable {
    /// "XAFL".
    public static let magic: UInt32 = 0x5841_464C
    /// Bytes before the block array.
    public static let headerSize = 36
    /// Offset of the little-endian CRC32c, which covers the sector.
    public static let crcOffset = 32

    /// `agfl_magicnum`: "XAFL".
    public var magicnum: UInt32
    /// `agfl_seqno`: the AG number.
    public var seqno: UInt32
    /// `agfl_uuid`: the filesystem's metadata uuid.
    public var uuid: FSUUID
    /// `agfl_lsn`: the log sequence number of the last write.
    public var lsn: UInt64
    /// The stored CRC (read little-endian).
    public var crc: UInt32
    /// Every slot, active or not (inactive slots should hold ``Geometry/nullAGBlock`` but may be stale).
    public var slots: [UInt32]

    /// Decodes the AGFL header and `agflSize` slots without checking anything.
    public static func decode(_ bytes: UnsafeRawBufferPointer, agno: UInt32, agflSize: UInt32) throws(XFSFormatError) -> AGFL {
        let r = ByteReader(bytes, location: "AG \(agno) AGFL")
        try r.require(headerSize + 4 * Int(agflSize), at: 0, "AGFL sector")
        var slots: [UInt32] = []
        slots.reserveCapacity(Int(agflSize))
        for i in 0 ..< Int(agflSize) { slots.append(try r.u32(at: headerSize + 4 * i)) }
        return AGFL(magicnum: try r.u32(at: 0), seqno: try r.u32(at: 4), uuid: try r.uuid(at: 8),
                    lsn: try r.u64(at: 24), crc: try r.u32LittleEndian(at: 32), slots: slots)
    }

    /// Decodes and verifies AG `agno`'s AGFL sector: magic, CRC over the sector, seqno, uuid.
    public static func load(from sector: UnsafeRawBufferPointer, agno: UInt32, geometry g: Geometry) throws(XFSFormatError) -> AGFL {
        let agfl = try decode(sector, agno: agno, agflSize: g.agflSize)
        try AGHeaderCheck(name: "AGFL", agno: agno, geometry: g).verify(
            sector, magic: agfl.magicnum, expectedMagic: magic, version: nil, crcOffset: crcOffset,
            seqno: agfl.seqno, length: nil, uuid: agfl.uuid)
        return agfl
    }

    /// The active free-list blocks in list order, following the AGF's window with wrap-around.
    ///
    /// Throws when the window needs a reset (flcount inconsistent with flfirst/fllast) or an
    /// active entry is NULLAGBLOCK, an AG header block, or beyond the AG's `length`.
    public func activeBlocks(agf: AGF, agno: UInt32, geometry g: Geometry) throws(XFSFormatError) -> [UInt32] {
        let location = "AG \(agno) AGFL"
        let size = UInt32(slots.count)
        if agf.freeListNeedsReset(agflSize: size) {
            throw XFSFormatError(.corrupt, location,
                                 "free list needs reset: flfirst \(agf.flFirst), fllast \(agf.flLast), flcount \(agf.flCount), size \(size)")
        }
        var blocks: [UInt32] = []
        blocks.reserveCapacity(Int(agf.flCount))
        for slot in agf.activeFreeListSlots(agflSize: size) {
            let b = slots[slot]
            guard b != Geometry.nullAGBlock else {
                throw XFSFormatError(.corrupt, location, "active slot \(slot) is empty (NULLAGBLOCK)")
            }
            guard b > g.agflBlock, b < agf.length else {
                throw XFSFormatError(.corrupt, location, "active slot \(slot) holds block \(b), outside the AG's free space")
            }
            blocks.append(b)
        }
        return blocks
    }

    /// The free-list blocks as far as they can be trusted, and what is wrong with the list.
    ///
    /// Unlike ``activeBlocks(agf:agno:geometry:)`` this never fails: a check must go on
    /// reading the rest of the AG, and report a damaged free list as one finding about the
    /// free list.
    ///
    /// - When the window needs a reset (flcount disagrees with flfirst...fllast), the blocks
    ///   are the slots from flfirst to fllast: what the kernel last put there, and what the
    ///   rmapbt records as OWN_AG.
    /// - An entry that is NULLAGBLOCK or outside the AG's free space is skipped and named.
    public func readableBlocks(agf: AGF, agno: UInt32, geometry g: Geometry) -> FreeListReading {
        let size = UInt32(slots.count)
        var reading = FreeListReading()
        guard agf.flCount != 0 || agf.freeListNeedsReset(agflSize: size) else { return reading }
        var window: [Int]
        if agf.freeListNeedsReset(agflSize: size) {
            let span = agf.flFirst < size && agf.flLast < size
                ? (agf.flLast >= agf.flFirst ? agf.flLast - agf.flFirst + 1 : size - agf.flFirst + agf.flLast + 1) : 0
            reading.problems.append("free list needs reset: flcount \(agf.flCount) but flfirst \(agf.flFirst) ... fllast \(agf.flLast) "
                + (span > 0 ? "spans \(span) slots" : "is outside the \(size) slots"))
            window = (0 ..< Int(span)).map { (Int(agf.flFirst) + $0) % Int(size) }
        } else {
            window = agf.activeFreeListSlots(agflSize: size)
        }
        for slot in window {
            let b = slots[slot]
            if b == Geometry.nullAGBlock {
                reading.problems.append("active slot \(slot) is empty (NULLAGBLOCK)")
            } else if b <= g.agflBlock || b >= agf.length {
                reading.problems.append("active slot \(slot) holds block \(b), outside the AG's free space")
            } else {
                reading.blocks.append(b)
            }
        }
        return reading
    }
}

/// The free list of one AG as far as it can be read: its blocks in list order, and one
/// sentence per thing wrong with it (empty when the list is sound).
public struct FreeListReading: Sendable, Equatable {
    /// The blocks on the list that can be trusted, in list order.
    public var blocks: [UInt32] = []
    /// What is wrong with the list.
    public var problems: [String] = []

    /// An empty list with nothing wrong.
    public init() {}
}
