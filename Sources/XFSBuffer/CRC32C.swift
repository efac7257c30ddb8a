import CXFSShims

/// CRC32c (Castagnoli) as XFS uses it.
///
/// XFS checksums a whole object (a sector-sized header, a block, an inode) with its own
/// 4-byte CRC field taken as zero, and stores the result little-endian in that field.
/// The computation runs on the CPU's crc32 instruction where there is one (SSE4.2, ARMv8),
/// in three interleaved streams, and falls back to slicing-by-8 tables otherwise.
public enum CRC32C {
    /// The CRC32c of `bytes` (initial value 0xFFFFFFFF, final inversion).
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return 0 }
        return ~cxfs_crc32c_update(0xFFFF_FFFF, base, bytes.count)
    }

    /// The CRC32c of `bytes` in portable C, whatever the CPU offers.
    public static func portableChecksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress else { return 0 }
        return ~cxfs_crc32c_update_portable(0xFFFF_FFFF, base, bytes.count)
    }

    /// Whether `checksum` runs on the CPU's crc32 instruction.
    public static var isHardwareAccelerated: Bool { cxfs_crc32c_is_hardware() != 0 }

    /// The XFS checksum of an object: the CRC32c of `object` with the four bytes at
    /// `fieldOffset` taken as zero. The object itself is not modified.
    ///
    /// - Precondition: the field lies inside the object.
    public static func xfsChecksum(of object: UnsafeRawBufferPointer, crcFieldAt fieldOffset: Int) -> UInt32 {
        precondition(fieldOffset >= 0 && fieldOffset + 4 <= object.count,
                     "CRC field at \(fieldOffset) is outside an object of \(object.count) bytes")
        guard let base = object.baseAddress else { return 0 }
        var crc = cxfs_crc32c_update(0xFFFF_FFFF, base, fieldOffset)
        var zero: UInt32 = 0
        crc = withUnsafeBytes(of: &zero) { cxfs_crc32c_update(crc, $0.baseAddress!, 4) }
        crc = cxfs_crc32c_update(crc, base + fieldOffset + 4, object.count - fieldOffset - 4)
        return ~crc
    }

    /// The checksum stored in an object's CRC field (little-endian, as XFS stores it).
    public static func storedChecksum(in object: UnsafeRawBufferPointer, crcFieldAt fieldOffset: Int) -> UInt32 {
        precondition(fieldOffset >= 0 && fieldOffset + 4 <= object.count,
                     "CRC field at \(fieldOffset) is outside an object of \(object.count) bytes")
        return UInt32(littleEndian: object.loadUnaligned(fromByteOffset: fieldOffset, as: UInt32.self))
    }

    /// Whether the object's stored checksum matches its contents.
    public static func verify(_ object: UnsafeRawBufferPointer, crcFieldAt fieldOffset: Int) -> Bool {
        storedChecksum(in: object, crcFieldAt: fieldOffset) == xfsChecksum(of: object, crcFieldAt: fieldOffset)
    }

    /// Computes the object's checksum and stores it in its CRC field, little-endian.
    public static func update(_ object: UnsafeMutableRawBufferPointer, crcFieldAt fieldOffset: Int) {
        let crc = xfsChecksum(of: UnsafeRawBufferPointer(object), crcFieldAt: fieldOffset)
        object.storeBytes(of: crc.littleEndian, toByteOffset: fieldOffset, as: UInt32.self)
    }
}
