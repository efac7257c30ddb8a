import XFSBTree

/// An inobt/finobt record: one chunk of 64 inode slots, decoded to one shape whatever the
/// on-disk form.
///
/// The on-disk form depends on the superblock's SPINODES feature, so it is chosen by the
/// format type, not guessed from the bytes:
///
///     sparse:     0 startino u32 | 4 holemask u16 | 6 count u8 | 7 freecount u8 | 8 free u64
///     non-sparse: 0 startino u32 | 4 freecount u32                              | 8 free u64
///
/// Decoding the non-sparse form gives `holeMask` 0 and `count` 64. Storing in the non-sparse
/// form writes only startino, freecount (32 bits) and free; storing in the sparse form keeps
/// the low 8 bits of `freeCount`.
public struct InodeBTreeRecord: Sendable, Hashable {
    /// AG inode number of the chunk's first slot (a multiple of 64).
    public var startIno: UInt32
    /// Bit b set: slots 4b...4b+3 are a hole (not allocated on disk).
    public var holeMask: UInt16
    /// Slots physically present (64 − 4 × holes).
    public var count: UInt8
    /// Free slots among the present ones.
    public var freeCount: UInt32
    /// Bit i set: slot i is free (holes are marked free too).
    public var free: UInt64

    /// A record.
    public init(startIno: UInt32, holeMask: UInt16 = 0, count: UInt8 = 64, freeCount: UInt32, free: UInt64) {
        self.startIno = startIno
        self.holeMask = holeMask
        self.count = count
        self.freeCount = freeCount
        self.free = free
    }

    /// The 64-bit slot mask of the holes: holemask bit b expands to slots 4b...4b+3.
    public var holeSlots: UInt64 {
        var m: UInt64 = 0
        for b in 0 ..< 16 where holeMask & (1 << b) != 0 { m |= UInt64(0xF) << (4 * b) }
        return m
    }

    /// Slots that hold an allocated (in use) inode: free bit 0 and hole bit 0.
    public var allocatedSlots: UInt64 { ~free & ~holeSlots }

    /// AG inode numbers of the allocated inodes, ascending.
    public var allocatedAGInodes: [UInt32] {
        let mask = allocatedSlots
        return (0 ..< 64).compactMap { mask & (1 << UInt64($0)) != 0 ? startIno &+ UInt32($0) : nil }
    }
}

/// What the four inode btree formats share; the two axes are the tree (inobt/finobt) and the
/// record form (sparse or not, from the superblock's SPINODES bit).
public protocol InodeBTreeRecordFormat: BTreeRecordFormat where Record == InodeBTreeRecord, Key == UInt32 {
    /// Whether records use the sparse (holemask, count, freecount u8) form.
    static var isSparse: Bool { get }
}

extension InodeBTreeRecordFormat {
    /// 16 bytes.
    public static var recordSize: Int { 16 }
    /// The key is startino (4 bytes).
    public static var keySize: Int { 4 }
    /// Chunks never overlap.
    public static var isOverlapping: Bool { false }

    /// Decodes a record in this format's form.
    public static func loadRecord(from bytes: UnsafeRawPointer) -> InodeBTreeRecord {
        let start = BigEndian.u32(bytes, 0)
        let free = BigEndian.u64(bytes, 8)
        if isSparse {
            return InodeBTreeRecord(startIno: start, holeMask: BigEndian.u16(bytes, 4),
                                    count: bytes.load(fromByteOffset: 6, as: UInt8.self),
                                    freeCount: UInt32(bytes.load(fromByteOffset: 7, as: UInt8.self)), free: free)
        }
        return InodeBTreeRecord(startIno: start, freeCount: BigEndian.u32(bytes, 4), free: free)
    }

    /// Encodes a record in this format's form.
    public static func storeRecord(_ record: InodeBTreeRecord, to bytes: UnsafeMutableRawPointer) {
        BigEndian.store(record.startIno, bytes, 0)
        if isSparse {
            BigEndian.store(record.holeMask, bytes, 4)
            BigEndian.store(record.count, bytes, 6)
            BigEndian.store(UInt8(truncatingIfNeeded: record.freeCount), bytes, 7)
        } else {
            BigEndian.store(record.freeCount, bytes, 4)
        }
        BigEndian.store(record.free, bytes, 8)
    }

    /// Decodes a 4-byte key.
    public static func loadKey(from bytes: UnsafeRawPointer) -> UInt32 { BigEndian.u32(bytes, 0) }
    /// Encodes a 4-byte key.
    public static func storeKey(_ key: UInt32, to bytes: UnsafeMutableRawPointer) { BigEndian.store(key, bytes, 0) }
    /// The chunk's startino.
    public static func lowKey(of record: InodeBTreeRecord) -> UInt32 { record.startIno }
    /// Contiguous when the next chunk starts right after the last inode of this one.
    public static func isContiguous(_ high: UInt32, followedBy low: UInt32) -> Bool {
        UInt64(high) + UInt64(Geometry.inodesPerChunk) == UInt64(low)
    }

    /// Checks chunk alignment, holes (sparse form: count matches the holemask, holes are free)
    /// and that freecount equals the number of free present slots.
    public static func check(_ r: InodeBTreeRecord) -> String? {
        if r.startIno % Geometry.inodesPerChunk != 0 { return "startino \(r.startIno) is not a multiple of 64" }
        if UInt64(r.startIno) + 64 > UInt64(UInt32.max) { return "chunk at startino \(r.startIno) overflows" }
        if isSparse {
            let present = 64 - 4 * r.holeMask.nonzeroBitCount
            if Int(r.count) != present { return "count \(r.count) does not match holemask 0x\(String(r.holeMask, radix: 16)) (\(present) present)" }
            if r.free & r.holeSlots != r.holeSlots { return "holes of chunk \(r.startIno) are not marked free" }
            if r.count == 0 { return "chunk \(r.startIno) has no inodes" }
        } else if r.holeMask != 0 || r.count != 64 {
            return "non-sparse record with holemask or count"
        }
        let freePresent = (r.free & ~r.holeSlots).nonzeroBitCount
        if Int(r.freeCount) != freePresent { return "freecount \(r.freeCount) but \(freePresent) free inodes in chunk \(r.startIno)" }
        return nil
    }
}

/// The inode btree ("IAB3") on a filesystem without sparse inode chunks.
public enum InodeBTreeFormat: InodeBTreeRecordFormat {
    public static var name: String { "inobt" }
    public static var magic: UInt32 { 0x4941_4233 }
    public static var isSparse: Bool { false }
}

/// The inode btree ("IAB3") on a filesystem with sparse inode chunks (SPINODES).
public enum SparseInodeBTreeFormat: InodeBTreeRecordFormat {
    public static var name: String { "inobt" }
    public static var magic: UInt32 { 0x4941_4233 }
    public static var isSparse: Bool { true }
}

/// The free inode btree ("FIB3") without sparse inode chunks.
public enum FreeInodeBTreeFormat: InodeBTreeRecordFormat {
    public static var name: String { "finobt" }
    public static var magic: UInt32 { 0x4649_4233 }
    public static var isSparse: Bool { false }
}

/// The free inode btree ("FIB3") with sparse inode chunks (SPINODES).
public enum SparseFreeInodeBTreeFormat: InodeBTreeRecordFormat {
    public static var name: String { "finobt" }
    public static var magic: UInt32 { 0x4649_4233 }
    public static var isSparse: Bool { true }
}

extension InodeBTreeRecord: CustomStringConvertible {
    /// "[startino 128, freecount 3, free 0xe000000000000000]", with ", holemask 0xff00,
    /// count 32" after the start of a sparse chunk.
    public var description: String {
        let sparse = holeMask != 0 || count != 64 ? ", holemask 0x\(String(holeMask, radix: 16)), count \(count)" : ""
        return "[startino \(startIno)\(sparse), freecount \(freeCount), free 0x\(String(free, radix: 16))]"
    }
}
