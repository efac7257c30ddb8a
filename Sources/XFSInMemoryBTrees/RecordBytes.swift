import XFSBTree

/// Writes one record's fields, big-endian and in order, into the fixed number of bytes its
/// type declares (``IndexRecord/encodedSize`` or ``IndexKey/encodedSize``).
///
/// A writer exists only while an ``IndexRecord/encode(to:)`` or ``IndexKey/encode(to:)``
/// runs: it is non-copyable and cannot be made outside this module, so it cannot outlive
/// the block it writes into. Every write is bounds-checked: writing past the declared size
/// traps with a message naming the sizes (a record type whose `encodedSize` is too small is
/// a programming error, not bad input). Bytes left unwritten are zero.
///
/// This type, ``RecordReader`` and the leaf records of ordered walks (`LentRecords`, in
/// this file) are the only ones in this module that touch raw memory.
public struct RecordWriter: ~Copyable {
    @usableFromInline let start: UnsafeMutableRawPointer
    /// The number of bytes this writer may write.
    public let count: Int
    @usableFromInline var _offset: Int = 0
    /// Where the next access goes, in bytes from the start of the record.
    @inlinable public var offset: Int { _offset }

    @inlinable
    init(_ start: UnsafeMutableRawPointer, count: Int) {
        self.start = start
        self.count = count
    }

    /// Bytes not yet written.
    @inlinable
    public var remaining: Int { count - offset }

    @inlinable @inline(__always)
    mutating func claim(_ length: Int) -> UnsafeMutableRawPointer {
        precondition(length <= count - offset,
                     "RecordWriter: \(length) bytes at offset \(offset) do not fit in a \(count)-byte encoding")
        defer { _offset += length }
        return start + offset
    }

    /// Writes `value` big-endian in `MemoryLayout<T>.size` bytes.
    @inlinable @inline(__always)
    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        claim(MemoryLayout<T>.size).storeBytes(of: value.bigEndian, as: T.self)
    }

    /// Writes `value` as one byte, 1 or 0.
    @inlinable @inline(__always)
    public mutating func write(_ value: Bool) {
        write(UInt8(value ? 1 : 0))
    }

    /// Writes `value`'s IEEE 754 bit pattern, big-endian, in 8 bytes.
    @inlinable @inline(__always)
    public mutating func write(_ value: Double) {
        write(value.bitPattern)
    }

    /// Writes `value`'s IEEE 754 bit pattern, big-endian, in 4 bytes.
    @inlinable @inline(__always)
    public mutating func write(_ value: Float) {
        write(value.bitPattern)
    }

    /// Writes `bytes` as they are.
    @inlinable
    public mutating func write(bytes: some Collection<UInt8>) {
        let destination = claim(bytes.count)
        var i = 0
        for byte in bytes {
            destination.storeBytes(of: byte, toByteOffset: i, as: UInt8.self)
            i += 1
        }
    }

    /// Writes `string`'s UTF-8 bytes in a field of exactly `length` bytes, zero-padded.
    ///
    /// - Precondition: the UTF-8 form of `string` is at most `length` bytes.
    @inlinable
    public mutating func write(_ string: String, length: Int) {
        let utf8 = string.utf8
        precondition(utf8.count <= length,
                     "RecordWriter: a \(utf8.count)-byte string does not fit in a \(length)-byte field")
        let destination = claim(length)
        var i = 0
        for byte in utf8 {
            destination.storeBytes(of: byte, toByteOffset: i, as: UInt8.self)
            i += 1
        }
        (destination + i).initializeMemory(as: UInt8.self, repeating: 0, count: length - i)
    }

    /// Writes `count` zero bytes (reserved space, padding).
    @inlinable
    public mutating func writeZeros(_ count: Int) {
        claim(count).initializeMemory(as: UInt8.self, repeating: 0, count: count)
    }
}

/// Reads one record's fields, big-endian and in order, from the fixed number of bytes its
/// type declares: the counterpart of ``RecordWriter``.
///
/// A reader exists only while an ``IndexRecord/init(from:)`` or ``IndexKey/init(from:)``
/// runs: it is non-copyable and cannot be made outside this module. Every read is
/// bounds-checked: reading past the declared size traps with a message naming the sizes.
/// The bytes it reads were written by the same type's `encode(to:)`, never by anyone
/// else, so decoding needs no error path.
public struct RecordReader: ~Copyable {
    @usableFromInline let start: UnsafeRawPointer
    /// The number of bytes this reader may read.
    public let count: Int
    @usableFromInline var _offset: Int = 0
    /// Where the next access goes, in bytes from the start of the record.
    @inlinable public var offset: Int { _offset }

    @inlinable
    init(_ start: UnsafeRawPointer, count: Int) {
        self.start = start
        self.count = count
    }

    /// Bytes not yet read.
    @inlinable
    public var remaining: Int { count - offset }

    @inlinable @inline(__always)
    mutating func take(_ length: Int) -> UnsafeRawPointer {
        precondition(length <= count - offset,
                     "RecordReader: \(length) bytes at offset \(offset) lie past the end of a \(count)-byte encoding")
        defer { _offset += length }
        return start + offset
    }

    /// Reads a big-endian `T` from the next `MemoryLayout<T>.size` bytes.
    @inlinable @inline(__always)
    public mutating func read<T: FixedWidthInteger>(_ type: T.Type = T.self) -> T {
        T(bigEndian: take(MemoryLayout<T>.size).loadUnaligned(as: T.self))
    }

    /// Reads one byte as a Bool: anything but 0 is true.
    @inlinable @inline(__always)
    public mutating func read(_ type: Bool.Type = Bool.self) -> Bool {
        read(UInt8.self) != 0
    }

    /// Reads a `Double` from its big-endian IEEE 754 bit pattern (8 bytes).
    @inlinable @inline(__always)
    public mutating func read(_ type: Double.Type = Double.self) -> Double {
        Double(bitPattern: read(UInt64.self))
    }

    /// Reads a `Float` from its big-endian IEEE 754 bit pattern (4 bytes).
    @inlinable @inline(__always)
    public mutating func read(_ type: Float.Type = Float.self) -> Float {
        Float(bitPattern: read(UInt32.self))
    }

    /// Reads the next `count` bytes as they are.
    @inlinable
    public mutating func readBytes(_ count: Int) -> [UInt8] {
        let source = take(count)
        return [UInt8](UnsafeRawBufferPointer(start: source, count: count))
    }

    /// Reads a field of `length` bytes written by ``RecordWriter/write(_:length:)``: its
    /// UTF-8 text up to the first zero byte (invalid UTF-8 is repaired, as
    /// `String(decoding:as:)` does).
    @inlinable
    public mutating func readString(length: Int) -> String {
        let field = UnsafeRawBufferPointer(start: take(length), count: length)
        let end = field.firstIndex(of: 0) ?? length
        return String(decoding: field[..<end], as: UTF8.self)
    }

    /// Skips `count` bytes (reserved space, padding).
    @inlinable
    public mutating func skip(_ count: Int) {
        _ = take(count)
    }
}

/// Encoding and decoding at a block address: the two places the formats turn raw bytes into
/// values, kept next to the writer and reader they make.
extension IndexKey {
    /// Encodes `self` into `encodedSize` bytes at `bytes`; traps when `encode(to:)` writes
    /// fewer or more.
    @inlinable @inline(__always)
    static func store(_ key: Self, to bytes: UnsafeMutableRawPointer) {
        var writer = RecordWriter(bytes, count: encodedSize)
        key.encode(to: &writer)
        if writer.offset < writer.count { writer.writeZeros(writer.count - writer.offset) }
    }

    /// Decodes the key at `bytes`.
    @inlinable @inline(__always)
    static func load(from bytes: UnsafeRawPointer) -> Self {
        var reader = RecordReader(bytes, count: encodedSize)
        return Self(from: &reader)
    }
}

extension IndexRecord {
    /// Encodes `record` into `encodedSize` bytes at `bytes`, zero-filling what it leaves.
    @inlinable @inline(__always)
    static func store(_ record: Self, to bytes: UnsafeMutableRawPointer) {
        var writer = RecordWriter(bytes, count: encodedSize)
        record.encode(to: &writer)
        if writer.offset < writer.count { writer.writeZeros(writer.count - writer.offset) }
    }

    /// Decodes the record at `bytes`.
    @inlinable @inline(__always)
    static func load(from bytes: UnsafeRawPointer) -> Self {
        var reader = RecordReader(bytes, count: encodedSize)
        return Self(from: &reader)
    }

    /// Decodes the key of the record at `bytes`.
    @inlinable @inline(__always)
    static func loadKey(from bytes: UnsafeRawPointer) -> Key {
        var reader = RecordReader(bytes, count: encodedSize)
        return decodeKey(from: &reader)
    }
}

/// Stores a serial number big-endian `offset` bytes into `bytes`.
@inlinable @inline(__always)
func storeSerial(_ serial: UInt64, to bytes: UnsafeMutableRawPointer, at offset: Int) {
    var writer = RecordWriter(bytes + offset, count: 8)
    writer.write(serial)
}

/// Loads the serial number `offset` bytes into `bytes`.
@inlinable @inline(__always)
func loadSerial(from bytes: UnsafeRawPointer, at offset: Int) -> UInt64 {
    var reader = RecordReader(bytes + offset, count: 8)
    return reader.read(UInt64.self)
}

/// A leaf's encoded records, read in place in the index's memory by an ordered walk (see
/// `IndexRecords.Iterator`): no copy, so a `for` loop over an index costs what the engine's
/// own walk does. Valid while the index's change counter stays where it was when the leaf
/// was lent.
@usableFromInline
struct LentRecords {
    /// The first record; nil for no leaf.
    @usableFromInline let base: UnsafeRawPointer?
    /// The number of records.
    @usableFromInline let count: Int
    /// The next leaf's block; nil after the last leaf.
    @usableFromInline let next: UInt64?

    /// No records, and no leaf after them.
    @inlinable
    init() {
        base = nil
        count = 0
        next = nil
    }

    @inlinable
    init(_ leaf: BTreeLentLeaf<UInt64>) {
        base = leaf.records
        count = leaf.count
        next = leaf.rightSibling.isNull ? nil : leaf.rightSibling
    }

    /// Decodes record `i`, `stride` bytes per record.
    @inlinable @inline(__always)
    func record<Record: IndexRecord>(_ i: Int, stride: Int, as type: Record.Type) -> Record {
        assert(i >= 0 && i < count, "record \(i) of a leaf of \(count)")
        return Record.load(from: base.unsafelyUnwrapped + i &* stride)
    }

    /// The serial number of record `i`, stored `Record.encodedSize` bytes into it.
    @inlinable @inline(__always)
    func serial<Record: IndexRecord>(_ i: Int, stride: Int, of type: Record.Type) -> UInt64 {
        assert(i >= 0 && i < count, "record \(i) of a leaf of \(count)")
        return loadSerial(from: base.unsafelyUnwrapped + i &* stride, at: Record.encodedSize)
    }
}
