import XFSBTree

/// A free extent: a record of the bnobt and the cntbt (8 bytes: startblock u32, blockcount u32).
public struct FreeSpaceRecord: Sendable, Hashable {
    /// First free AG block.
    public var startBlock: UInt32
    /// Length in blocks.
    public var blockCount: UInt32

    /// A free extent.
    public init(startBlock: UInt32, blockCount: UInt32) {
        self.startBlock = startBlock
        self.blockCount = blockCount
    }

    static func load(_ p: UnsafeRawPointer) -> FreeSpaceRecord {
        FreeSpaceRecord(startBlock: BigEndian.u32(p, 0), blockCount: BigEndian.u32(p, 4))
    }
    func store(_ p: UnsafeMutableRawPointer) {
        BigEndian.store(startBlock, p, 0)
        BigEndian.store(blockCount, p, 4)
    }
    var problem: String? {
        if blockCount == 0 { return "zero-length free extent at \(startBlock)" }
        if UInt64(startBlock) + UInt64(blockCount) > UInt64(UInt32.max) { return "free extent \(startBlock)+\(blockCount) overflows" }
        return nil
    }
}

/// A bnobt key: both fields are stored; order is by startblock (then blockcount, which never
/// decides in a valid tree because free extents do not share a start).
public struct FreeSpaceByBlockKey: Sendable, Hashable, Comparable {
    /// The free extent's first AG block.
    public var startBlock: UInt32
    /// The free extent's length in blocks.
    public var blockCount: UInt32
    /// A key.
    public init(startBlock: UInt32, blockCount: UInt32) {
        self.startBlock = startBlock
        self.blockCount = blockCount
    }
    /// Orders by (startblock, blockcount).
    public static func < (a: Self, b: Self) -> Bool { (a.startBlock, a.blockCount) < (b.startBlock, b.blockCount) }
}

/// A cntbt key: same layout as the record; order is (blockcount, startblock).
public struct FreeSpaceByCountKey: Sendable, Hashable, Comparable {
    /// The free extent's first AG block.
    public var startBlock: UInt32
    /// The free extent's length in blocks.
    public var blockCount: UInt32
    /// A key.
    public init(startBlock: UInt32, blockCount: UInt32) {
        self.startBlock = startBlock
        self.blockCount = blockCount
    }
    /// Orders by (blockcount, startblock).
    public static func < (a: Self, b: Self) -> Bool { (a.blockCount, a.startBlock) < (b.blockCount, b.startBlock) }
}

/// A key of a free-space btree: both trees store (startblock, blockcount), and differ
/// only in how the keys order.
public protocol FreeSpaceKey: Comparable, Sendable {
    /// The first free block.
    var startBlock: UInt32 { get }
    /// The number of free blocks.
    var blockCount: UInt32 { get }
    /// A key from its two fields.
    init(startBlock: UInt32, blockCount: UInt32)
}

extension FreeSpaceByBlockKey: FreeSpaceKey {}
extension FreeSpaceByCountKey: FreeSpaceKey {}

/// What the bnobt and cntbt share: 8-byte records and keys, startblock at 0 and
/// blockcount at 4, big-endian.
public protocol FreeSpaceRecordFormat: BTreeRecordFormat where Record == FreeSpaceRecord, Key: FreeSpaceKey {}

extension FreeSpaceRecordFormat {
    public static var recordSize: Int { 8 }
    public static var keySize: Int { 8 }
    public static var isOverlapping: Bool { false }

    /// Decodes an 8-byte record.
    public static func loadRecord(from bytes: UnsafeRawPointer) -> Record { .load(bytes) }
    /// Encodes an 8-byte record.
    public static func storeRecord(_ record: Record, to bytes: UnsafeMutableRawPointer) { record.store(bytes) }
    /// Decodes an 8-byte key (startblock at 0, blockcount at 4).
    public static func loadKey(from bytes: UnsafeRawPointer) -> Key {
        Key(startBlock: BigEndian.u32(bytes, 0), blockCount: BigEndian.u32(bytes, 4))
    }
    /// Encodes an 8-byte key.
    public static func storeKey(_ key: Key, to bytes: UnsafeMutableRawPointer) {
        BigEndian.store(key.startBlock, bytes, 0)
        BigEndian.store(key.blockCount, bytes, 4)
    }
    /// The record's start and length, in the tree's key order.
    public static func lowKey(of record: Record) -> Key { Key(startBlock: record.startBlock, blockCount: record.blockCount) }
    /// Rejects zero lengths and overflow.
    public static func check(_ record: Record) -> String? { record.problem }
}

/// The free-space-by-block btree (bnobt, "AB3B"): free extents sorted by start.
public enum FreeSpaceByBlockFormat: FreeSpaceRecordFormat {
    public typealias Key = FreeSpaceByBlockKey
    public static var name: String { "bnobt" }
    public static var magic: UInt32 { 0x4142_3342 }

    /// Contiguous when the next key starts right after this one's block.
    public static func isContiguous(_ high: Key, followedBy low: Key) -> Bool {
        UInt64(high.startBlock) + 1 == UInt64(low.startBlock)
    }
}

/// The free-space-by-count btree (cntbt, "AB3C"): free extents sorted by (length, start).
public enum FreeSpaceByCountFormat: FreeSpaceRecordFormat {
    public typealias Key = FreeSpaceByCountKey
    public static var name: String { "cntbt" }
    public static var magic: UInt32 { 0x4142_3343 }

    /// The cntbt has no notion of contiguous key ranges (libxfs returns "unknown"); never contiguous.
    public static func isContiguous(_ high: Key, followedBy low: Key) -> Bool { false }
}

extension FreeSpaceRecord: CustomStringConvertible {
    /// "[start 190, len 9]".
    public var description: String { "[start \(startBlock), len \(blockCount)]" }
}

extension FreeSpaceByBlockKey: CustomStringConvertible {
    /// "(start 190, len 9)".
    public var description: String { "(start \(startBlock), len \(blockCount))" }
}

extension FreeSpaceByCountKey: CustomStringConvertible {
    /// "(len 9, start 190)": the fields in the order the key sorts by.
    public var description: String { "(len \(blockCount), start \(startBlock))" }
}
