/// What one btree type's records and keys are, on disk and decoded, and how they order.
///
/// This is half of libxfs' `xfs_btree_ops`: the record functions, which the disk rmapbt and
/// the in-memory rmapbt share. The other half, where blocks live, is a `BTreeBlockStore`.
/// The engine is generic over both, so a format is written once and runs on every store.
///
/// Encoded forms are big-endian and may sit at any alignment. Decoding is total: any bytes
/// decode to some value, and `check(_:)` says whether a decoded record is valid, so corrupt
/// images never trap.
///
/// For an *overlapping* btree (rmap), a record covers an interval: `lowKey(of:)` and
/// `highKey(of:)` differ, each node entry stores a low and a high key (two `keySize` halves
/// of one slot), and the engine keeps every high key equal to the largest high key below it.
public protocol BTreeRecordFormat: Sendable {
    /// A decoded record (libxfs' "irec").
    associatedtype Record: Equatable & Sendable
    /// A decoded key. Records are ordered by their low keys; keys compare with `<`.
    associatedtype Key: Comparable & Sendable

    /// A short name for messages, such as "rmapbt".
    static var name: String { get }
    /// The v5 magic number of this btree type's blocks.
    static var magic: UInt32 { get }
    /// Bytes of one encoded record.
    static var recordSize: Int { get }
    /// Bytes of one encoded key. A node slot holds one key, or two (low, high) when overlapping.
    static var keySize: Int { get }
    /// Whether records are intervals that may overlap (node slots carry low and high keys).
    static var isOverlapping: Bool { get }

    /// Decodes the record at `bytes` (`recordSize` bytes).
    static func loadRecord(from bytes: UnsafeRawPointer) -> Record
    /// Encodes `record` into `recordSize` bytes at `bytes`.
    static func storeRecord(_ record: Record, to bytes: UnsafeMutableRawPointer)
    /// Decodes the key at `bytes` (`keySize` bytes).
    static func loadKey(from bytes: UnsafeRawPointer) -> Key
    /// Encodes `key` into `keySize` bytes at `bytes`.
    static func storeKey(_ key: Key, to bytes: UnsafeMutableRawPointer)

    /// The key a record sorts by (its low key).
    static func lowKey(of record: Record) -> Key
    /// The largest key a record covers; equal to `lowKey(of:)` for a non-overlapping format.
    static func highKey(of record: Record) -> Key
    /// Whether a range that ends at `high` is continued without a gap by one starting at
    /// `low` (libxfs' `keys_contiguous`), for `hasRecords` to tell full from sparse.
    static func isContiguous(_ high: Key, followedBy low: Key) -> Bool
    /// Why a decoded record is invalid for this btree type, or nil when it is valid.
    static func check(_ record: Record) -> String?

    /// The low key of the encoded record at `bytes`, decoded straight from the block (the
    /// engine's binary search calls this). Defaults to `lowKey(of: loadRecord(from:))`;
    /// formats may decode only the key fields.
    static func loadLowKey(fromRecord bytes: UnsafeRawPointer) -> Key

    /// The largest high key of `count` (at least 1) encoded records laid out back to back
    /// at `records`: what a leaf's parent holds for it in an overlapping tree. Defaults to
    /// decoding every record; formats may scan faster (the engine calls this after every
    /// shift out of a leaf whose largest high key moved).
    static func maxHighKey(ofRecords records: UnsafeRawPointer, count: Int) -> Key

    /// The part of a key that `hasRecords` compares (libxfs' key mask): for the rmapbt, the
    /// start block alone, so that "is every block of this range mapped?" ignores owners.
    /// Defaults to the whole key.
    associatedtype CoverageKey: Comparable = Key
    /// Projects a key onto the part `hasRecords` compares.
    static func coverageKey(_ key: Key) -> CoverageKey

    /// Where `key` lies on a number line along which the format's keys spread about
    /// evenly (for the rmapbt, its start block), so that a search can guess a record's
    /// place in a leaf from the leaf's key range, as an interpolation search does. It must
    /// never decrease as keys grow; a poor spread only makes guesses miss, and a missed
    /// guess falls back to the binary search. Nil (the default): no guesses.
    static func interpolationPosition(of key: Key) -> UInt64?
}

extension BTreeRecordFormat {
    /// A non-overlapping format's high key is its low key.
    @inlinable
    public static func highKey(of record: Record) -> Key { lowKey(of: record) }

    /// No guesses: every leaf search is a binary search.
    @inlinable
    public static func interpolationPosition(of key: Key) -> UInt64? { nil }

    /// Decodes the whole record and takes its low key.
    @inlinable
    public static func loadLowKey(fromRecord bytes: UnsafeRawPointer) -> Key {
        lowKey(of: loadRecord(from: bytes))
    }

    /// Decodes every record and keeps the largest high key.
    @inlinable
    public static func maxHighKey(ofRecords records: UnsafeRawPointer, count: Int) -> Key {
        precondition(count >= 1, "the largest high key of \(count) records")
        var high = highKey(of: loadRecord(from: records))
        var i = 1
        while i < count {
            let h = highKey(of: loadRecord(from: records + i * recordSize))
            if h > high { high = h }
            i += 1
        }
        return high
    }
}

extension BTreeRecordFormat where CoverageKey == Key {
    /// `hasRecords` compares whole keys.
    @inlinable
    public static func coverageKey(_ key: Key) -> Key { key }
}
