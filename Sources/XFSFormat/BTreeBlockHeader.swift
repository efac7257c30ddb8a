import XFSBuffer

/// The 56-byte v5 header of an AG btree block (bnobt, cntbt, inobt, finobt, rmapbt,
/// refcountbt). Siblings are AG block numbers; `blkno` is the block's own daddr; `owner` is
/// the AG number. The CRC at byte 52 covers the whole block.
///
///     0 magic  4 level  6 numrecs  8 leftsib  12 rightsib  16 blkno  24 lsn  32 uuid  48 owner  52 crc
public struct ShortBTreeBlockHeader: Sendable, Equatable {
    /// Header size; records or keys start here.
    public static let size = 56
    /// Offset of the little-endian CRC32c, which covers the block.
    public static let crcOffset = 52
    /// Bytes of one block pointer (an agbno).
    public static let pointerSize = 4

    /// `bb_magic`: the btree type's magic number.
    public var magic: UInt32
    /// 0 for a leaf.
    public var level: UInt16
    /// `bb_numrecs`: records or keys in the block.
    public var numRecords: UInt16
    /// Left sibling agbno, or ``Geometry/nullAGBlock``.
    public var leftSibling: UInt32
    /// Right sibling agbno, or ``Geometry/nullAGBlock``.
    public var rightSibling: UInt32
    /// The block's own daddr.
    public var blkno: UInt64
    /// `bb_lsn`: the log sequence number of the last write.
    public var lsn: UInt64
    /// `bb_uuid`: the filesystem's metadata uuid.
    public var uuid: FSUUID
    /// The AG number.
    public var owner: UInt32
    /// The stored CRC (read little-endian).
    public var crc: UInt32

    /// Decodes the header at the start of `block` (at least 56 bytes).
    public static func decode(_ block: UnsafeRawBufferPointer, location: String) throws(XFSFormatError) -> ShortBTreeBlockHeader {
        let r = ByteReader(block, location: location)
        try r.require(size, at: 0, "short btree block header")
        return ShortBTreeBlockHeader(
            magic: try r.u32(at: 0), level: try r.u16(at: 4), numRecords: try r.u16(at: 6),
            leftSibling: try r.u32(at: 8), rightSibling: try r.u32(at: 12), blkno: try r.u64(at: 16),
            lsn: try r.u64(at: 24), uuid: try r.uuid(at: 32), owner: try r.u32(at: 48),
            crc: try r.u32LittleEndian(at: 52))
    }

    /// Encodes this header into the first 56 bytes of `block` (CRC field as stored here;
    /// call ``OnDiskBTreeBlock/updateCRC(_:isLongForm:)`` after filling the block).
    public func store(to block: UnsafeMutableRawBufferPointer) {
        precondition(block.count >= Self.size, "a short btree block header needs \(Self.size) bytes, got \(block.count)")
        let p = block.baseAddress!
        BigEndian.store(magic, p, 0)
        BigEndian.store(level, p, 4)
        BigEndian.store(numRecords, p, 6)
        BigEndian.store(leftSibling, p, 8)
        BigEndian.store(rightSibling, p, 12)
        BigEndian.store(blkno, p, 16)
        BigEndian.store(lsn, p, 24)
        BigEndian.store(uuid.high, p, 32)
        BigEndian.store(uuid.low, p, 40)
        BigEndian.store(owner, p, 48)
        p.storeBytes(of: crc.littleEndian, toByteOffset: 52, as: UInt32.self)
    }

    /// The first check this header fails against `expected`, or nil when it passes.
    ///
    /// Checks, in order: magic, uuid, blkno, owner, level (if given), numrecs ≤ maxrecs for the
    /// level, siblings (NULL or inside the AG and not the block itself, when `agLength` and
    /// `agbno` are given).
    public func check(_ expected: BTreeBlockExpectation) -> BTreeHeaderCheckFailure? {
        if magic != expected.magic { return .magic(found: UInt64(magic), expected: UInt64(expected.magic)) }
        if uuid != expected.uuid { return .uuid(found: uuid) }
        if blkno != expected.daddr { return .blkno(found: blkno, expected: expected.daddr) }
        if UInt64(owner) != expected.owner { return .owner(found: UInt64(owner), expected: expected.owner) }
        if let want = expected.level, level != want { return .level(found: level, expected: want) }
        let maxrecs = level == 0 ? expected.maxRecordsLeaf : expected.maxRecordsNode
        if Int(numRecords) > maxrecs { return .numRecords(found: numRecords, max: maxrecs) }
        if let agLength = expected.agLength, let me = expected.agbno {
            for (which, sib) in [("left", leftSibling), ("right", rightSibling)] where sib != Geometry.nullAGBlock {
                if sib >= agLength || sib == me { return .sibling(which: which, found: UInt64(sib)) }
            }
        }
        return nil
    }
}

/// The 72-byte v5 header of an on-disk bmbt block. Siblings are fsblocks; `owner` is the
/// inode number. The CRC at byte 64 covers the whole block.
///
///     0 magic  4 level  6 numrecs  8 leftsib  16 rightsib  24 blkno  32 lsn  40 uuid  56 owner  64 crc  68 pad
public struct LongBTreeBlockHeader: Sendable, Equatable {
    /// Header size; records or keys start here.
    public static let size = 72
    /// Offset of the little-endian CRC32c, which covers the block.
    public static let crcOffset = 64
    /// Bytes of one block pointer (an fsblock).
    public static let pointerSize = 8

    /// `bb_magic`: the btree type's magic number.
    public var magic: UInt32
    /// `bb_level`: 0 for a leaf.
    public var level: UInt16
    /// `bb_numrecs`: records or keys in the block.
    public var numRecords: UInt16
    /// Left sibling fsblock, or ``Geometry/nullFSBlock``.
    public var leftSibling: UInt64
    /// Right sibling fsblock, or ``Geometry/nullFSBlock``.
    public var rightSibling: UInt64
    /// `bb_blkno`: the block's own disk address, in 512-byte sectors.
    public var blkno: UInt64
    /// `bb_lsn`: the log sequence number of the last write.
    public var lsn: UInt64
    /// `bb_uuid`: the filesystem's metadata uuid.
    public var uuid: FSUUID
    /// The inode number.
    public var owner: UInt64
    /// The stored CRC (read little-endian).
    public var crc: UInt32
    /// Must be 0.
    public var pad: UInt32

    /// Decodes the header at the start of `block` (at least 72 bytes).
    public static func decode(_ block: UnsafeRawBufferPointer, location: String) throws(XFSFormatError) -> LongBTreeBlockHeader {
        let r = ByteReader(block, location: location)
        try r.require(size, at: 0, "long btree block header")
        return LongBTreeBlockHeader(
            magic: try r.u32(at: 0), level: try r.u16(at: 4), numRecords: try r.u16(at: 6),
            leftSibling: try r.u64(at: 8), rightSibling: try r.u64(at: 16), blkno: try r.u64(at: 24),
            lsn: try r.u64(at: 32), uuid: try r.uuid(at: 40), owner: try r.u64(at: 56),
            crc: try r.u32LittleEndian(at: 64), pad: try r.u32(at: 68))
    }

    /// Encodes this header into the first 72 bytes of `block`.
    public func store(to block: UnsafeMutableRawBufferPointer) {
        precondition(block.count >= Self.size, "a long btree block header needs \(Self.size) bytes, got \(block.count)")
        let p = block.baseAddress!
        BigEndian.store(magic, p, 0)
        BigEndian.store(level, p, 4)
        BigEndian.store(numRecords, p, 6)
        BigEndian.store(leftSibling, p, 8)
        BigEndian.store(rightSibling, p, 16)
        BigEndian.store(blkno, p, 24)
        BigEndian.store(lsn, p, 32)
        BigEndian.store(uuid.high, p, 40)
        BigEndian.store(uuid.low, p, 48)
        BigEndian.store(owner, p, 56)
        p.storeBytes(of: crc.littleEndian, toByteOffset: 64, as: UInt32.self)
        BigEndian.store(pad, p, 68)
    }

    /// The first check this header fails against `expected`, or nil when it passes.
    ///
    /// Checks magic, uuid, blkno, owner, pad, level (if given), numrecs ≤ maxrecs, and
    /// siblings (NULL or a valid fsblock other than the block itself, when `geometry` and
    /// `fsBlock` are given).
    public func check(_ expected: BTreeBlockExpectation, geometry: Geometry? = nil, fsBlock: UInt64? = nil) -> BTreeHeaderCheckFailure? {
        if magic != expected.magic { return .magic(found: UInt64(magic), expected: UInt64(expected.magic)) }
        if uuid != expected.uuid { return .uuid(found: uuid) }
        if blkno != expected.daddr { return .blkno(found: blkno, expected: expected.daddr) }
        if owner != expected.owner { return .owner(found: owner, expected: expected.owner) }
        if pad != 0 { return .pad(found: pad) }
        if let want = expected.level, level != want { return .level(found: level, expected: want) }
        let maxrecs = level == 0 ? expected.maxRecordsLeaf : expected.maxRecordsNode
        if Int(numRecords) > maxrecs { return .numRecords(found: numRecords, max: maxrecs) }
        if let g = geometry {
            for (which, sib) in [("left", leftSibling), ("right", rightSibling)] where sib != Geometry.nullFSBlock {
                if !g.isValidFSBlock(sib) || sib == fsBlock { return .sibling(which: which, found: sib) }
            }
        }
        return nil
    }
}

/// What a btree block's header must say, for ``ShortBTreeBlockHeader/check(_:)`` and
/// ``LongBTreeBlockHeader/check(_:geometry:fsBlock:)``.
public struct BTreeBlockExpectation: Sendable, Equatable {
    /// `bb_magic`: the btree type's magic number.
    public var magic: UInt32
    /// `bb_uuid`: the filesystem's metadata uuid.
    public var uuid: FSUUID
    /// The block's own daddr.
    public var daddr: UInt64
    /// AG number (short form) or inode number (long form).
    public var owner: UInt64
    /// The level the parent implies, or nil when unknown (e.g. reading a root whose height is being checked).
    public var level: UInt16?
    /// The most records a leaf holds.
    public var maxRecordsLeaf: Int
    /// The most keys a node holds.
    public var maxRecordsNode: Int
    /// For short-form sibling checks: the AG's length and the block's own agbno.
    public var agLength: UInt32?
    /// The block's AG block number, when known.
    public var agbno: UInt32?

    /// An expectation; every field is spelled out by the caller.
    public init(magic: UInt32, uuid: FSUUID, daddr: UInt64, owner: UInt64, level: UInt16?,
                maxRecordsLeaf: Int, maxRecordsNode: Int, agLength: UInt32? = nil, agbno: UInt32? = nil) {
        self.magic = magic
        self.uuid = uuid
        self.daddr = daddr
        self.owner = owner
        self.level = level
        self.maxRecordsLeaf = maxRecordsLeaf
        self.maxRecordsNode = maxRecordsNode
        self.agLength = agLength
        self.agbno = agbno
    }
}

/// Which header check failed (libxfs verifiers return the failing address; we return the check).
public enum BTreeHeaderCheckFailure: Sendable, Equatable, CustomStringConvertible {
    case magic(found: UInt64, expected: UInt64)
    case uuid(found: FSUUID)
    case blkno(found: UInt64, expected: UInt64)
    case owner(found: UInt64, expected: UInt64)
    case level(found: UInt16, expected: UInt16)
    case numRecords(found: UInt16, max: Int)
    case sibling(which: String, found: UInt64)
    case pad(found: UInt32)
    case crc

    /// A message naming the field and values.
    public var description: String {
        switch self {
        case let .magic(f, e): "bad magic 0x\(String(f, radix: 16)) (expected 0x\(String(e, radix: 16)))"
        case let .uuid(f): "uuid \(f) does not match the filesystem"
        case let .blkno(f, e): "blkno \(f) is not the block's daddr \(e)"
        case let .owner(f, e): "owner \(f), expected \(e)"
        case let .level(f, e): "level \(f), expected \(e)"
        case let .numRecords(f, m): "numrecs \(f) exceeds maxrecs \(m)"
        case let .sibling(w, f): "\(w) sibling \(f) is invalid"
        case let .pad(f): "pad \(f) is not zero"
        case .crc: "bad CRC"
        }
    }
}

/// Layout helpers and CRC handling for whole btree blocks.
public enum OnDiskBTreeBlock {
    /// Whether the CRC stored in a short-form (`isLongForm == false`, CRC at 52) or long-form
    /// (CRC at 64) block matches the whole block.
    public static func verifyCRC(_ block: UnsafeRawBufferPointer, isLongForm: Bool) -> Bool {
        let offset = isLongForm ? LongBTreeBlockHeader.crcOffset : ShortBTreeBlockHeader.crcOffset
        guard block.count >= offset + 4 else { return false }
        return CRC32C.verify(block, crcFieldAt: offset)
    }

    /// Recomputes and stores the CRC of a whole block.
    public static func updateCRC(_ block: UnsafeMutableRawBufferPointer, isLongForm: Bool) {
        CRC32C.update(block, crcFieldAt: isLongForm ? LongBTreeBlockHeader.crcOffset : ShortBTreeBlockHeader.crcOffset)
    }

    /// maxrecs of a leaf: (blockSize − headerSize) / recordSize.
    public static func maxLeafRecords(blockSize: Int, headerSize: Int, recordSize: Int) -> Int {
        (blockSize - headerSize) / recordSize
    }

    /// maxrecs of a node: (blockSize − headerSize) / (keySlot + pointerSize), where the key
    /// slot is one key, or two (low, high) for an overlapping btree.
    public static func maxNodeRecords(blockSize: Int, headerSize: Int, keySlotSize: Int, pointerSize: Int) -> Int {
        (blockSize - headerSize) / (keySlotSize + pointerSize)
    }

    /// Byte offset of record `i` (0-based) in a leaf.
    public static func recordOffset(_ i: Int, headerSize: Int, recordSize: Int) -> Int { headerSize + i * recordSize }
    /// Byte offset of key slot `i` in a node (the low key; the high key follows at +keySize).
    public static func keyOffset(_ i: Int, headerSize: Int, keySlotSize: Int) -> Int { headerSize + i * keySlotSize }
    /// Byte offset of pointer `i` in a node: after `maxrecs` key slots, whatever numrecs is.
    public static func pointerOffset(_ i: Int, headerSize: Int, keySlotSize: Int, pointerSize: Int, maxRecords: Int) -> Int {
        headerSize + maxRecords * keySlotSize + i * pointerSize
    }
}
