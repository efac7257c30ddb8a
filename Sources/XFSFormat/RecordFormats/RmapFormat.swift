import XFSBTree

/// The special owners of rmap records (u64 values at the top of the range). xfs_db prints
/// them as negative numbers: −3 FS … −9 COW (see ``RmapOwner/signedValue(_:)``).
public enum RmapOwner {
    /// −1: "no owner" placeholder; never in a real record.
    public static let null: UInt64 = UInt64(bitPattern: -1)
    /// −2: log-recovery wildcard; never stored.
    public static let unknown: UInt64 = UInt64(bitPattern: -2)
    /// −3: the AG header blocks (superblock, AGF, AGI, AGFL).
    public static let fs: UInt64 = UInt64(bitPattern: -3)
    /// −4: the internal log.
    public static let log: UInt64 = UInt64(bitPattern: -4)
    /// −5: bnobt, cntbt and rmapbt blocks and active AGFL blocks.
    public static let ag: UInt64 = UInt64(bitPattern: -5)
    /// −6: inobt and finobt blocks.
    public static let inobt: UInt64 = UInt64(bitPattern: -6)
    /// −7: inode chunks.
    public static let inodes: UInt64 = UInt64(bitPattern: -7)
    /// −8: refcountbt blocks.
    public static let refc: UInt64 = UInt64(bitPattern: -8)
    /// −9: CoW staging extents.
    public static let cow: UInt64 = UInt64(bitPattern: -9)
    /// −10: guard; valid special owners are above it.
    public static let min: UInt64 = UInt64(bitPattern: -10)

    /// Whether `owner` is a special (non-inode) owner: its top bit is set.
    @inlinable
    public static func isSpecial(_ owner: UInt64) -> Bool { owner >> 63 != 0 }
    /// Whether `owner` is a special owner a record may carry: OWN_MIN < owner ≤ OWN_FS.
    public static func isValidSpecial(_ owner: UInt64) -> Bool { owner > min && owner <= fs }
    /// The owner as xfs_db prints it: special owners negative, inode numbers as they are.
    public static func signedValue(_ owner: UInt64) -> Int64 { Int64(bitPattern: owner) }
    /// A short name: "FS", "LOG", "AG", "INOBT", "INODES", "REFC", "COW", "NULL", "UNKNOWN",
    /// or the decimal inode number.
    public static func name(_ owner: UInt64) -> String {
        switch owner {
        case fs: "FS"
        case log: "LOG"
        case ag: "AG"
        case inobt: "INOBT"
        case inodes: "INODES"
        case refc: "REFC"
        case cow: "COW"
        case null: "NULL"
        case unknown: "UNKNOWN"
        default: isSpecial(owner) ? String(signedValue(owner)) : String(owner)
        }
    }
}

/// A reverse-mapping record: which owner holds AG blocks [startBlock, startBlock+blockCount),
/// and at which logical offset of which fork.
///
/// On disk (24 bytes): startblock u32 | blockcount u32 | owner u64 | offset-and-flags u64,
/// where bit 63 = ATTR_FORK, 62 = BMBT_BLOCK, 61 = UNWRITTEN, 54...60 must be zero and
/// 0...53 hold the offset. Decoding keeps bits 54...60 in `offset`, so ``RmapFormat/check(_:)``
/// can report them and store∘load is the identity.
public struct RmapRecord: Sendable, Hashable {
    /// ATTR_FORK bit of the packed offset word.
    public static let attrForkBit: UInt64 = 1 << 63
    /// BMBT_BLOCK bit.
    public static let bmbtBlockBit: UInt64 = 1 << 62
    /// UNWRITTEN bit.
    public static let unwrittenBit: UInt64 = 1 << 61
    /// Mask of the offset bits (0...53).
    public static let offsetMask: UInt64 = (1 << 54) - 1
    /// Mask of everything below the flags (0...60): offset plus the must-be-zero bits.
    static let offsetFieldMask: UInt64 = (1 << 61) - 1

    /// The first AG block mapped.
    public var startBlock: UInt32
    /// Blocks mapped.
    public var blockCount: UInt32
    /// An inode number, or a special owner (``RmapOwner``).
    public var owner: UInt64
    /// Logical block offset in the fork (54 bits; 0 for special owners and bmbt blocks).
    public var offset: UInt64
    /// The mapping is of the attribute fork (ATTR_FORK flag).
    public var isAttrFork: Bool
    /// The blocks are a bmbt block of the owner's fork (BMBT_BLOCK flag).
    public var isBmbtBlock: Bool
    /// The extent is unwritten (UNWRITTEN flag).
    public var isUnwritten: Bool

    /// A record.
    @inlinable
    public init(startBlock: UInt32, blockCount: UInt32, owner: UInt64, offset: UInt64 = 0,
                isAttrFork: Bool = false, isBmbtBlock: Bool = false, isUnwritten: Bool = false) {
        self.startBlock = startBlock
        self.blockCount = blockCount
        self.owner = owner
        self.offset = offset
        self.isAttrFork = isAttrFork
        self.isBmbtBlock = isBmbtBlock
        self.isUnwritten = isUnwritten
    }

    /// The on-disk offset word with all three flags.
    @inlinable
    public var packedOffset: UInt64 {
        // Literal masks (offsetFieldMask, attrForkBit, bmbtBlockBit, unwrittenBit): a static
        // let read from another module goes through a lazy-initialization check.
        (offset & ((1 << 61) - 1)) | (isAttrFork ? 1 << 63 : 0)
            | (isBmbtBlock ? 1 << 62 : 0) | (isUnwritten ? 1 << 61 : 0)
    }

    /// Whether this maps file data or attr blocks (an inode owner, not a bmbt block): the
    /// records whose offsets advance with the blocks.
    @inlinable
    public var isFileMapping: Bool { !RmapOwner.isSpecial(owner) && !isBmbtBlock }
}

/// An rmapbt key (20 bytes): startblock u32 | owner u64 | offset-and-flags u64 with the
/// UNWRITTEN bit cleared. Order: all three fields, unsigned, so special owners sort after
/// inode owners and, at equal start and owner, data < bmbt(data) < attr < bmbt(attr).
public struct RmapKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The first AG block.
    public var startBlock: UInt32
    /// The owner (an inode number, or a special owner).
    public var owner: UInt64
    /// The packed offset word (offset bits plus ATTR and BMBT; UNWRITTEN is not part of a key).
    public var packedOffset: UInt64

    /// A key from its raw fields.
    @inlinable
    public init(startBlock: UInt32, owner: UInt64, packedOffset: UInt64) {
        self.startBlock = startBlock
        self.owner = owner
        self.packedOffset = packedOffset
    }

    /// The logical offset bits.
    public var offset: UInt64 { packedOffset & RmapRecord.offsetMask }
    /// Whether the (invalid in a key) UNWRITTEN bit is set; repair clears it.
    public var hasUnwrittenBit: Bool { packedOffset & RmapRecord.unwrittenBit != 0 }

    /// "(startblock 8038, owner 524981, offset 2332, attr)": the owner named as in
    /// ``RmapOwner/name(_:)``, the attr and bmbt flags when set.
    public var description: String {
        var text = "(startblock \(startBlock), owner \(RmapOwner.name(owner)), offset \(offset)"
        if packedOffset & RmapRecord.attrForkBit != 0 { text += ", attr" }
        if packedOffset & RmapRecord.bmbtBlockBit != 0 { text += ", bmbt" }
        return text + ")"
    }

    /// Unsigned lexicographic order of (startblock, owner, offset word).
    @inlinable @inline(__always)
    public static func < (a: Self, b: Self) -> Bool {
        if a.startBlock != b.startBlock { return a.startBlock < b.startBlock }
        if a.owner != b.owner { return a.owner < b.owner }
        return a.packedOffset < b.packedOffset
    }

    /// Field-wise equality (spelled out so that it inlines across modules).
    @inlinable @inline(__always)
    public static func == (a: Self, b: Self) -> Bool {
        a.startBlock == b.startBlock && a.owner == b.owner && a.packedOffset == b.packedOffset
    }
}

/// The reverse-mapping btree ("RMB3"): an overlapping btree of ``RmapRecord``s.
public enum RmapFormat: BTreeRecordFormat {
    /// `hasRecords` asks whether *blocks* are covered: only the start block counts (the
    /// kernel masks owner and offset out of rmap key comparisons there).
    public static func coverageKey(_ key: RmapKey) -> UInt32 { key.startBlock }

    /// The start block: an AG's extents spread over its blocks, so a leaf's records are
    /// about evenly spaced between its first and last start block.
    @inlinable @inline(__always)
    public static func interpolationPosition(of key: RmapKey) -> UInt64? { UInt64(key.startBlock) }

    public typealias Record = RmapRecord
    public typealias Key = RmapKey
    @inlinable public static var name: String { "rmapbt" }
    @inlinable public static var magic: UInt32 { 0x524D_4233 }
    @inlinable public static var recordSize: Int { 24 }
    @inlinable public static var keySize: Int { 20 }
    @inlinable public static var isOverlapping: Bool { true }

    /// Decodes a 24-byte record.
    @inlinable @inline(__always)
    public static func loadRecord(from bytes: UnsafeRawPointer) -> Record {
        let word = RmapFormat.u64(bytes, 16)
        return RmapRecord(startBlock: RmapFormat.u32(bytes, 0), blockCount: RmapFormat.u32(bytes, 4),
                          owner: RmapFormat.u64(bytes, 8), offset: word & ((1 << 61) - 1),
                          isAttrFork: word & (1 << 63) != 0,
                          isBmbtBlock: word & (1 << 62) != 0,
                          isUnwritten: word & (1 << 61) != 0)
    }
    /// Encodes a 24-byte record.
    @inlinable @inline(__always)
    public static func storeRecord(_ record: Record, to bytes: UnsafeMutableRawPointer) {
        RmapFormat.put(record.startBlock, bytes, 0)
        RmapFormat.put(record.blockCount, bytes, 4)
        RmapFormat.put(record.owner, bytes, 8)
        RmapFormat.put(record.packedOffset, bytes, 16)
    }
    /// Decodes a 20-byte key as stored (an UNWRITTEN bit, if present, is kept so checkers see it).
    @inlinable @inline(__always)
    public static func loadKey(from bytes: UnsafeRawPointer) -> Key {
        Key(startBlock: RmapFormat.u32(bytes, 0), owner: RmapFormat.u64(bytes, 4), packedOffset: RmapFormat.u64(bytes, 12))
    }
    /// Encodes a 20-byte key.
    @inlinable @inline(__always)
    public static func storeKey(_ key: Key, to bytes: UnsafeMutableRawPointer) {
        RmapFormat.put(key.startBlock, bytes, 0)
        RmapFormat.put(key.owner, bytes, 4)
        RmapFormat.put(key.packedOffset, bytes, 12)
    }
    /// (startblock, owner, offset word without UNWRITTEN).
    @inlinable @inline(__always)
    public static func lowKey(of r: Record) -> Key {
        Key(startBlock: r.startBlock, owner: r.owner, packedOffset: r.packedOffset & ~(1 << 61))
    }
    /// The last block's key: start+len−1, the same owner, and the offset advanced by len−1
    /// only for file data/attr mappings (not special owners, not bmbt blocks).
    @inlinable @inline(__always)
    public static func highKey(of r: Record) -> Key {
        let adjust = UInt32(truncatingIfNeeded: max(r.blockCount, 1) - 1)
        var key = lowKey(of: r)
        key.startBlock = r.startBlock &+ adjust
        if r.isFileMapping { key.packedOffset &+= UInt64(adjust) }
        return key
    }
    /// The largest high key of a leaf's records: one pass finds the largest last block (the
    /// key's first field) from two 32-bit loads per record, and where it is; only when
    /// several records end on that block are their whole high keys compared, in a second
    /// pass. Same result as decoding every record.
    @inlinable
    public static func maxHighKey(ofRecords records: UnsafeRawPointer, count: Int) -> RmapKey {
        precondition(count >= 1, "the largest high key of \(count) records")
        @inline(__always) func lastBlock(_ p: UnsafeRawPointer) -> UInt32 {
            BigEndian.u32(p, 0) &+ (max(BigEndian.u32(p, 4), 1) &- 1)
        }
        var maxLast = lastBlock(records)
        var first = 0
        var tied = false
        var i = 1
        while i < count {
            let last = lastBlock(records + i &* 24)
            if last > maxLast {
                maxLast = last
                first = i
                tied = false
            } else if last == maxLast {
                tied = true
            }
            i &+= 1
        }
        var best = highKey(of: loadRecord(from: records + first &* 24))
        guard tied else { return best }
        i = first &+ 1
        while i < count {
            let p = records + i &* 24
            if lastBlock(p) == maxLast {
                let h = highKey(of: loadRecord(from: p))
                if h > best { best = h }
            }
            i &+= 1
        }
        return best
    }

    /// Contiguous by startblock only: the next range starts right after this one's last block.
    @inlinable @inline(__always)
    public static func isContiguous(_ high: Key, followedBy low: Key) -> Bool {
        UInt64(high.startBlock) + 1 == UInt64(low.startBlock)
    }

    /// The low key of an encoded record, decoded straight from its bytes (the engine's
    /// binary search over leaves calls this): no length, and the UNWRITTEN bit masked.
    @inlinable @inline(__always)
    public static func loadLowKey(fromRecord bytes: UnsafeRawPointer) -> Key {
        Key(startBlock: u32(bytes, 0), owner: u64(bytes, 8),
            packedOffset: u64(bytes, 16) & ~(1 << 61))
    }

    @inlinable @inline(__always)
    static func u32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    @inlinable @inline(__always)
    static func u64(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
    @inlinable @inline(__always)
    static func put(_ v: UInt32, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self)
    }
    @inlinable @inline(__always)
    static func put(_ v: UInt64, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// Checks the record on its own: nonzero length without overflow, reserved offset bits
    /// zero, owner range, special owners with offset 0 and no flags, bmbt blocks at offset 0,
    /// unwritten only on data-fork file mappings, and offset + length within 54 bits.
    public static func check(_ r: Record) -> String? {
        if r.blockCount == 0 { return "zero-length rmap record at \(r.startBlock)" }
        if UInt64(r.startBlock) + UInt64(r.blockCount) > UInt64(UInt32.max) + 1 {
            return "rmap record \(r.startBlock)+\(r.blockCount) overflows the AG block space"
        }
        if r.offset & ~RmapRecord.offsetMask != 0 { return "rmap record at \(r.startBlock) has reserved offset bits 54...60 set" }
        if RmapOwner.isSpecial(r.owner) {
            if !RmapOwner.isValidSpecial(r.owner) {
                return "rmap record at \(r.startBlock) has invalid owner \(RmapOwner.signedValue(r.owner))"
            }
            if r.offset != 0 || r.isAttrFork || r.isBmbtBlock || r.isUnwritten {
                return "rmap record at \(r.startBlock) with special owner \(RmapOwner.name(r.owner)) has an offset or flags"
            }
            return nil
        }
        if r.owner == 0 { return "rmap record at \(r.startBlock) has owner 0" }
        if r.isBmbtBlock {
            if r.offset != 0 { return "bmbt rmap record at \(r.startBlock) has offset \(r.offset)" }
            if r.isUnwritten { return "bmbt rmap record at \(r.startBlock) is marked unwritten" }
            return nil
        }
        if r.isUnwritten && r.isAttrFork { return "attr fork rmap record at \(r.startBlock) is marked unwritten" }
        if r.offset + UInt64(r.blockCount) > RmapRecord.offsetMask + 1 {
            return "rmap record at \(r.startBlock): offset \(r.offset) + length \(r.blockCount) exceeds 54 bits"
        }
        return nil
    }
}
