import XFSBuffer

/// Bounds-checked big-endian reads over raw on-disk bytes.
///
/// This is the only place in XFSFormat that touches raw memory for decoding. Every read copies
/// the bytes with `loadUnaligned` (so no alignment is assumed) and converts from big-endian.
/// A read outside the buffer throws ``XFSFormatError`` (kind `.truncated`) naming `location`;
/// it never traps.
///
/// - Warning: a `ByteReader` borrows its bytes. It must not outlive the buffer it was made
///   from (use it inside the `withUnsafeBytes` closure that produced the pointer).
public struct ByteReader {
    /// The bytes being decoded.
    public let bytes: UnsafeRawBufferPointer
    /// What the bytes are, for error messages ("superblock", "AG 1 AGF", "inode 133").
    public let location: String

    /// A reader over `bytes`; errors name `location`.
    public init(_ bytes: UnsafeRawBufferPointer, location: String) {
        self.bytes = bytes
        self.location = location
    }

    /// Number of bytes available.
    public var count: Int { bytes.count }

    /// Throws unless `size` bytes at `offset` lie inside the buffer.
    ///
    /// Inlined, so that a decoder's field reads cost a compare each (the compiler drops
    /// those an earlier check already covers); the error is made out of line.
    @inline(__always)
    public func require(_ size: Int, at offset: Int, _ what: @autoclosure () -> String = "field") throws(XFSFormatError) {
        guard offset >= 0, size >= 0, offset <= bytes.count, size <= bytes.count - offset else {
            throw outside(size, at: offset, what())
        }
    }

    /// The error of a read of `size` bytes at `offset` outside the buffer.
    @inline(never)
    private func outside(_ size: Int, at offset: Int, _ what: String) -> XFSFormatError {
        XFSFormatError(.truncated, location, "\(what) at byte \(offset) (\(size) bytes) lies outside the \(bytes.count)-byte buffer")
    }

    /// The byte at `offset`.
    @inline(__always)
    public func u8(at offset: Int) throws(XFSFormatError) -> UInt8 {
        try require(1, at: offset)
        return bytes[offset]
    }

    /// The big-endian 16-bit integer at `offset`.
    @inline(__always)
    public func u16(at offset: Int) throws(XFSFormatError) -> UInt16 {
        try require(2, at: offset)
        return UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// The big-endian 32-bit integer at `offset`.
    @inline(__always)
    public func u32(at offset: Int) throws(XFSFormatError) -> UInt32 {
        try require(4, at: offset)
        return UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// The big-endian 64-bit integer at `offset`.
    @inline(__always)
    public func u64(at offset: Int) throws(XFSFormatError) -> UInt64 {
        try require(8, at: offset)
        return UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The little-endian 32-bit integer at `offset` (XFS stores only its CRC fields this way).
    @inline(__always)
    public func u32LittleEndian(at offset: Int) throws(XFSFormatError) -> UInt32 {
        try require(4, at: offset)
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// The 16-byte UUID at `offset`.
    public func uuid(at offset: Int) throws(XFSFormatError) -> FSUUID {
        FSUUID(high: try u64(at: offset), low: try u64(at: offset + 8))
    }

    /// A copy of `count` bytes at `offset`.
    public func byteArray(at offset: Int, count size: Int) throws(XFSFormatError) -> [UInt8] {
        try require(size, at: offset)
        return Array(bytes[offset ..< offset + size])
    }

    /// The first `size` bytes, or a `.truncated` error naming `what` when there are fewer.
    public func prefix(_ size: Int, _ what: @autoclosure () -> String) throws(XFSFormatError) -> UnsafeRawBufferPointer {
        try require(size, at: 0, what())
        return UnsafeRawBufferPointer(rebasing: bytes[0 ..< size])
    }

    /// Whether the XFS CRC32c stored at `crcOffset` matches the first `span` bytes.
    ///
    /// Throws when `span` bytes are not available.
    public func crcMatches(span: Int, crcAt crcOffset: Int, _ what: @autoclosure () -> String) throws(XFSFormatError) -> Bool {
        let object = try prefix(span, what())
        try require(4, at: crcOffset, "CRC field")
        return CRC32C.verify(object, crcFieldAt: crcOffset)
    }
}

/// Unchecked big-endian loads and stores at fixed offsets, for the record formats whose
/// contract (``BTreeRecordFormat``) hands them a pointer to exactly `recordSize`/`keySize`
/// bytes. Callers guarantee the bounds; every access is unaligned-safe.
@usableFromInline
enum BigEndian {
    @inlinable static func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    @inlinable static func u32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    @inlinable static func u64(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
    @inlinable static func store(_ v: UInt8, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: v, toByteOffset: offset, as: UInt8.self)
    }
    @inlinable static func store(_ v: UInt16, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt16.self)
    }
    @inlinable static func store(_ v: UInt32, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self)
    }
    @inlinable static func store(_ v: UInt64, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self)
    }
}

/// A 16-byte XFS UUID, kept as two big-endian halves so it is cheap to compare.
public struct FSUUID: Hashable, Sendable, CustomStringConvertible {
    /// The first 8 bytes, big-endian.
    public var high: UInt64
    /// The last 8 bytes, big-endian.
    public var low: UInt64

    /// A UUID from its two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The all-zero UUID.
    public static let zero = FSUUID(high: 0, low: 0)

    /// The 16 bytes in on-disk order.
    public var bytes: [UInt8] {
        (0 ..< 8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0 ..< 8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
    }

    /// The canonical 8-4-4-4-12 lower-case form, as xfs_db prints it.
    public var description: String {
        let hex = bytes.map { b -> String in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }
        let groups = [0 ..< 4, 4 ..< 6, 6 ..< 8, 8 ..< 10, 10 ..< 16]
        return groups.map { hex[$0].joined() }.joined(separator: "-")
    }
}
