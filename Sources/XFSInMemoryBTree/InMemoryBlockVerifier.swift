import XFSBTree
import XFSBuffer

/// The structure check of an in-memory btree block (the kernel's `xfs_rmapbt_mem_verify`
/// and `xfs_btree_memblock_verify`): the format's magic, the long header's disk address and
/// uuid, a level below the tree's limit, a record count within the level's maximum, and
/// siblings that are null or another addressable block.
///
/// The owner is not checked, as in the kernel. There is no CRC to check.
struct InMemoryBlockVerifier<Format: BTreeRecordFormat>: BufferVerifier {
    let uuid: BTreeUUID
    let limits: BTreeRecordLimits
    let maxHeight: Int
    /// Block numbers at or above this are outside the memory target.
    let blockCount: UInt64
    let sectorsPerBlock: UInt64

    var name: String { "\(Format.name) (in memory)" }

    func verifyRead(_ buffer: Buffer) throws(VerificationFailure) {
        // A page that was never written reads as zeros: that is a block being created, and
        // `newBlock` formats it; only blocks the tree reads must carry a header.
        try check(buffer)
    }

    func verifyStructure(_ buffer: Buffer) throws(VerificationFailure) {
        try check(buffer)
    }

    /// A sibling must be null, or another block inside the memory target.
    @inline(__always)
    private func checkSibling(_ name: StaticString, _ sibling: UInt64, of own: UInt64, in buffer: Buffer) throws(VerificationFailure) {
        guard sibling != UInt64.max else { return }
        guard sibling < blockCount else { throw failure("\(name) sibling \(sibling) is outside the memory target", in: buffer) }
        guard sibling != own else { throw failure("\(name) sibling points at the block itself", in: buffer) }
    }

    private func check(_ buffer: Buffer) throws(VerificationFailure) {
        let bytes = UnsafeRawBufferPointer(buffer.unsafeMutableBytes)
        func u16(_ offset: Int) -> UInt16 { UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
        func u32(_ offset: Int) -> UInt32 { UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        func u64(_ offset: Int) -> UInt64 { UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }

        guard u32(0) == Format.magic else {
            throw failure("magic 0x\(String(u32(0), radix: 16)) is not \(Format.name)'s 0x\(String(Format.magic, radix: 16))", in: buffer)
        }
        let level = Int(u16(4))
        guard level < maxHeight else { throw failure("level \(level) is not below the height limit \(maxHeight)", in: buffer) }
        let count = Int(u16(6))
        guard count <= limits.maxRecords(level: level) else {
            throw failure("\(count) entries exceed the maximum \(limits.maxRecords(level: level)) at level \(level)", in: buffer)
        }
        let blkno = u64(24)
        guard blkno == UInt64(buffer.diskAddress.sectors) else {
            throw failure("header blkno 0x\(String(blkno, radix: 16)) is not the block's own address", in: buffer)
        }
        guard BTreeUUID(high: u64(40), low: u64(48)) == uuid else {
            throw failure("header uuid does not match the tree's", in: buffer)
        }
        let own = blkno / sectorsPerBlock
        try checkSibling("left", u64(8), of: own, in: buffer)
        try checkSibling("right", u64(16), of: own, in: buffer)
    }
}
