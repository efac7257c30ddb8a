/// A key of a ``RecordIndex``: comparable, and stored in a fixed number of bytes.
///
/// The index keeps keys in its node blocks, so a key type says how to write itself with a
/// ``RecordWriter`` and read itself back with a ``RecordReader``, in exactly
/// ``encodedSize`` bytes. The fixed-width integers conform already. A compound key is a
/// struct that compares its fields in order and writes them one after another:
///
/// ```swift
/// struct Position: IndexKey {
///     var file: UInt32
///     var offset: UInt64
///
///     static func < (a: Position, b: Position) -> Bool {
///         (a.file, a.offset) < (b.file, b.offset)
///     }
///     static var encodedSize: Int { 12 }
///     func encode(to writer: inout RecordWriter) {
///         writer.write(file)
///         writer.write(offset)
///     }
///     init(file: UInt32, offset: UInt64) { self.file = file; self.offset = offset }
///     init(from reader: inout RecordReader) {
///         file = reader.read()
///         offset = reader.read()
///     }
/// }
/// ```
///
/// `decode(encode(k)) == k` must hold for every key, and `<` must be a strict total order
/// (the index relies on both; its ``RecordIndex/verify()`` reports keys out of order).
///
/// Keys are values: `Sendable`, and safe to use from any thread.
public protocol IndexKey: Comparable, Sendable {
    /// Bytes of one encoded key: the same for every key of the type.
    static var encodedSize: Int { get }
    /// Writes the key's fields, at most ``encodedSize`` bytes (the rest is zero-filled).
    func encode(to writer: inout RecordWriter)
    /// Reads back a key that ``encode(to:)`` wrote.
    init(from reader: inout RecordReader)

    /// Whether a run of keys ending at `high` is continued, without a gap, by one starting
    /// at `low`. Used for the engine's coverage queries. The default says yes when
    /// `low <= high` (the runs touch or overlap); the integers also say yes when `low` is
    /// `high + 1`.
    static func isContiguous(_ high: Self, followedBy low: Self) -> Bool

    /// Where the key lies on a number line along which the keys spread about evenly, so a
    /// lookup can guess a record's place in a leaf before it searches (an interpolation
    /// search). It must never decrease as keys grow; a poor spread only makes guesses miss.
    /// Nil (the default): every leaf search is a binary search. The integers give their
    /// value; a compound key may give its first field's.
    var interpolationPosition: UInt64? { get }
}

extension IndexKey {
    /// Runs that touch or overlap are contiguous.
    @inlinable
    public static func isContiguous(_ high: Self, followedBy low: Self) -> Bool { low <= high }

    /// No guesses: every leaf search is a binary search.
    @inlinable
    public var interpolationPosition: UInt64? { nil }
}

extension IndexKey where Self: FixedWidthInteger {
    /// `MemoryLayout<Self>.size`.
    @inlinable
    public static var encodedSize: Int { MemoryLayout<Self>.size }

    /// Writes the integer big-endian.
    @inlinable @inline(__always)
    public func encode(to writer: inout RecordWriter) { writer.write(self) }

    /// Reads a big-endian integer.
    @inlinable @inline(__always)
    public init(from reader: inout RecordReader) { self = reader.read(Self.self) }

    /// Touching, overlapping, or `low == high + 1`.
    @inlinable
    public static func isContiguous(_ high: Self, followedBy low: Self) -> Bool {
        low <= high || (high < Self.max && low == high + 1)
    }

    /// The value, shifted so that the smallest value of a signed type maps to 0.
    @inlinable
    public var interpolationPosition: UInt64? {
        Self.isSigned ? UInt64(bitPattern: Int64(self)) ^ (1 << 63) : UInt64(self)
    }
}

extension UInt8: IndexKey {}
extension UInt16: IndexKey {}
extension UInt32: IndexKey {}
extension UInt64: IndexKey {}
extension UInt: IndexKey {}
extension Int8: IndexKey {}
extension Int16: IndexKey {}
extension Int32: IndexKey {}
extension Int64: IndexKey {}
extension Int: IndexKey {}
