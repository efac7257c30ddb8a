import XFSBTree

/// The block-mapping btree ("BMA3"): a file fork's extents, keyed by startoff, with 64-bit
/// (fsblock) pointers and the 72-byte long-form block header. Leaf records are packed
/// ``FileExtent``s.
public enum BmbtFormat: BTreeRecordFormat {
    public typealias Record = FileExtent
    public typealias Key = UInt64
    public static var name: String { "bmbt" }
    public static var magic: UInt32 { 0x424D_4133 }
    public static var recordSize: Int { 16 }
    public static var keySize: Int { 8 }
    public static var isOverlapping: Bool { false }
    /// Bytes of a bmbt block pointer (an fsblock).
    public static var pointerSize: Int { 8 }

    /// Decodes a packed 16-byte extent.
    public static func loadRecord(from bytes: UnsafeRawPointer) -> Record { FileExtent.load(from: bytes) }
    /// Encodes a packed 16-byte extent.
    public static func storeRecord(_ record: Record, to bytes: UnsafeMutableRawPointer) { record.store(to: bytes) }
    /// Decodes an 8-byte startoff key.
    public static func loadKey(from bytes: UnsafeRawPointer) -> UInt64 { BigEndian.u64(bytes, 0) }
    /// Encodes an 8-byte startoff key.
    public static func storeKey(_ key: UInt64, to bytes: UnsafeMutableRawPointer) { BigEndian.store(key, bytes, 0) }
    /// The extent's startoff.
    public static func lowKey(of record: Record) -> UInt64 { record.startOffset }
    /// Contiguous when the next key is the very next file block.
    public static func isContiguous(_ high: UInt64, followedBy low: UInt64) -> Bool { high &+ 1 == low }
    /// Rejects zero lengths and offset/block overflow.
    public static func check(_ record: Record) -> String? { record.problem }
}
