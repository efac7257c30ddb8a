import XFSBTree

/// A refcountbt record (12 bytes): startblock u32 (bit 31 = CoW domain), blockcount u32,
/// refcount u32.
public struct RefcountRecord: Sendable, Hashable {
    /// Which sharing domain a record belongs to.
    public enum Domain: Sendable, Hashable {
        /// Blocks shared between files (refcount ≥ 2).
        case shared
        /// CoW staging extents (refcount 1; only after a crash).
        case cow
    }
    /// Bit 31 of the on-disk startblock: the CoW domain.
    public static let cowFlag: UInt32 = 1 << 31

    /// First AG block (31 bits).
    public var startBlock: UInt32
    /// Blocks in the extent.
    public var blockCount: UInt32
    /// How many owners share each block of the extent.
    public var refCount: UInt32
    /// Shared data, or staging for copy-on-write (the start block's top bit on disk).
    public var domain: Domain

    /// A record. `startBlock` must fit in 31 bits.
    public init(startBlock: UInt32, blockCount: UInt32, refCount: UInt32, domain: Domain = .shared) {
        precondition(startBlock & Self.cowFlag == 0, "refcount startblock \(startBlock) does not fit in 31 bits")
        self.startBlock = startBlock
        self.blockCount = blockCount
        self.refCount = refCount
        self.domain = domain
    }

    /// The on-disk startblock word, with the domain flag.
    public var encodedStartBlock: UInt32 { startBlock | (domain == .cow ? Self.cowFlag : 0) }
}

/// A refcountbt key: the on-disk startblock word with the domain flag, so CoW records sort
/// after every shared record.
public struct RefcountKey: Sendable, Hashable, Comparable {
    /// startblock | (CoW ? 1 << 31 : 0).
    public var encodedStartBlock: UInt32
    /// A key from its on-disk word.
    public init(encodedStartBlock: UInt32) { self.encodedStartBlock = encodedStartBlock }
    /// The AG block, without the flag.
    public var startBlock: UInt32 { encodedStartBlock & ~RefcountRecord.cowFlag }
    /// The domain the flag names.
    public var domain: RefcountRecord.Domain { encodedStartBlock & RefcountRecord.cowFlag != 0 ? .cow : .shared }
    /// Unsigned order of the encoded word.
    public static func < (a: Self, b: Self) -> Bool { a.encodedStartBlock < b.encodedStartBlock }
}

/// The reference count btree ("R3FC").
public enum RefcountFormat: BTreeRecordFormat {
    public typealias Record = RefcountRecord
    public typealias Key = RefcountKey
    public static var name: String { "refcountbt" }
    public static var magic: UInt32 { 0x5233_4643 }
    public static var recordSize: Int { 12 }
    public static var keySize: Int { 4 }
    public static var isOverlapping: Bool { false }

    /// Decodes a 12-byte record, splitting off the domain flag.
    public static func loadRecord(from bytes: UnsafeRawPointer) -> Record {
        let word = BigEndian.u32(bytes, 0)
        return RefcountRecord(startBlock: word & ~RefcountRecord.cowFlag, blockCount: BigEndian.u32(bytes, 4),
                              refCount: BigEndian.u32(bytes, 8), domain: word & RefcountRecord.cowFlag != 0 ? .cow : .shared)
    }
    /// Encodes a 12-byte record.
    public static func storeRecord(_ record: Record, to bytes: UnsafeMutableRawPointer) {
        BigEndian.store(record.encodedStartBlock, bytes, 0)
        BigEndian.store(record.blockCount, bytes, 4)
        BigEndian.store(record.refCount, bytes, 8)
    }
    /// Decodes a 4-byte key.
    public static func loadKey(from bytes: UnsafeRawPointer) -> Key { Key(encodedStartBlock: BigEndian.u32(bytes, 0)) }
    /// Encodes a 4-byte key.
    public static func storeKey(_ key: Key, to bytes: UnsafeMutableRawPointer) { BigEndian.store(key.encodedStartBlock, bytes, 0) }
    /// The record's encoded startblock.
    public static func lowKey(of record: Record) -> Key { Key(encodedStartBlock: record.encodedStartBlock) }
    /// Contiguous when the next key's block follows directly, in the same domain.
    public static func isContiguous(_ high: Key, followedBy low: Key) -> Bool {
        UInt64(high.encodedStartBlock) + 1 == UInt64(low.encodedStartBlock)
    }
    /// Rejects zero lengths, ranges past 2^31 blocks, shared records with refcount < 2 and
    /// CoW records with refcount ≠ 1.
    public static func check(_ r: Record) -> String? {
        if r.blockCount == 0 { return "zero-length refcount record at \(r.startBlock)" }
        if UInt64(r.startBlock) + UInt64(r.blockCount) > UInt64(RefcountRecord.cowFlag) {
            return "refcount record \(r.startBlock)+\(r.blockCount) exceeds 2^31 blocks"
        }
        switch r.domain {
        case .shared where r.refCount < 2: return "shared refcount record at \(r.startBlock) has refcount \(r.refCount) < 2"
        case .cow where r.refCount != 1: return "CoW refcount record at \(r.startBlock) has refcount \(r.refCount) ≠ 1"
        default: return nil
        }
    }
}

extension RefcountRecord: CustomStringConvertible {
    /// "[start 190, len 9, refcount 2]", ending ", cow" for the CoW domain.
    public var description: String {
        "[start \(startBlock), len \(blockCount), refcount \(refCount)\(domain == .cow ? ", cow" : "")]"
    }
}

extension RefcountKey: CustomStringConvertible {
    /// "(start 190)", or "(start 190, cow)" for the CoW domain.
    public var description: String { "(start \(startBlock)\(domain == .cow ? ", cow" : ""))" }
}
