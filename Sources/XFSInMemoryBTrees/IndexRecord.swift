/// A record that a ``RecordIndex`` can hold: a value of fixed encoded size, with a key.
///
/// A conforming type says four things, and nothing about pointers or blocks:
///
/// - its ``Key`` and how to get it from a record (``key``);
/// - ``encodedSize``, the bytes every record takes;
/// - how to write its fields (``encode(to:)``) and read them back (``init(from:)``),
///   big-endian, through a bounds-checked ``RecordWriter`` and ``RecordReader``.
///
/// ```swift
/// struct Extent: IndexRecord {
///     var start: UInt64
///     var length: UInt32
///     var owner: UInt64
///
///     var key: UInt64 { start }
///     static var encodedSize: Int { 20 }
///     func encode(to writer: inout RecordWriter) {
///         writer.write(start)
///         writer.write(length)
///         writer.write(owner)
///     }
///     init(start: UInt64, length: UInt32, owner: UInt64) {
///         self.start = start; self.length = length; self.owner = owner
///     }
///     init(from reader: inout RecordReader) {
///         start = reader.read()
///         length = reader.read()
///         owner = reader.read()
///     }
/// }
/// ```
///
/// Everything else the XFS btree engine asks of a format has a default that suits a record
/// type of one's own: ``validityProblem`` (none), ``coversKeyInterval`` (false: each record
/// sits at one key), ``lastKey`` (the key), ``indexName`` (the type's name), and, through
/// the key type, contiguity and interpolation.
///
/// A record whose type sets ``coversKeyInterval`` covers the keys from ``key`` through
/// ``lastKey`` (an extent, a time span); the index then keeps the largest last key of every
/// subtree in its nodes, as XFS's rmap btree does, so that
/// ``RecordIndex/records(overlapping:)`` finds every record that overlaps a range without a
/// full scan.
///
/// Records are values: `Sendable`, and safe to use from any thread.
public protocol IndexRecord: Equatable, Sendable {
    /// The type of the key records are ordered by.
    associatedtype Key: IndexKey

    /// The key this record sorts by. For a record covering an interval, its first key.
    var key: Key { get }
    /// Bytes of one encoded record: the same for every record of the type. A block of the
    /// index is one 4 KiB page, and holds at least four records: at most 1000 bytes.
    static var encodedSize: Int { get }
    /// Writes the record's fields, at most ``encodedSize`` bytes (the rest is zero-filled).
    func encode(to writer: inout RecordWriter)
    /// Reads back a record that ``encode(to:)`` wrote.
    init(from reader: inout RecordReader)

    /// Whether each record covers the keys from ``key`` through ``lastKey`` (records may
    /// then overlap). Defaults to false.
    static var coversKeyInterval: Bool { get }
    /// The last key the record covers; never below ``key``. Defaults to ``key``, and is
    /// read only when ``coversKeyInterval`` is true.
    var lastKey: Key { get }
    /// Why the record must not go into an index, or nil (the default) when it may.
    /// ``RecordIndex/insert(_:)`` refuses a record with a problem, and
    /// ``RecordIndex/verify()`` reports one found in a block.
    var validityProblem: String? { get }
    /// A short name for messages and block verification reports. Defaults to the type's
    /// name.
    static var indexName: String { get }
    /// Reads only the key of a record that ``encode(to:)`` wrote, from its first byte.
    /// Searches call this for every record they compare, so a type whose key is a few of
    /// many fields may read just those (skipping the rest with ``RecordReader/skip(_:)``).
    /// Defaults to decoding the whole record and taking its ``key``.
    static func decodeKey(from reader: inout RecordReader) -> Key
}

extension IndexRecord {
    /// Each record sits at one key.
    @inlinable
    public static var coversKeyInterval: Bool { false }

    /// The record's key.
    @inlinable
    public var lastKey: Key { key }

    /// Every record is valid.
    @inlinable
    public var validityProblem: String? { nil }

    /// The type's name.
    public static var indexName: String { String(describing: Self.self) }

    /// Decodes the whole record and takes its key.
    @inlinable
    public static func decodeKey(from reader: inout RecordReader) -> Key { Self(from: &reader).key }
}
