import XFSBTree
import XFSBuffer

/// The structure check of an in-memory btree block (the kernel's `xfs_rmapbt_mem_verify`
/// and `xfs_btree_memblock_verify`): the format's magic, the long header's disk address and
/// uuid, a level below the tree's limit, a record count within the level's maximum, and
/// siblings that are null or another addressable block.
///
/// The owner is not checked, as in the kernel. There is no CRC to check.
///
/// Not generic over the record format: what it needs of the format (name, magic) is
/// stored, so the check that every commit runs on every dirty block is plain code, called
/// through the buffer's verifier existential without generic metadata or witness calls.
struct InMemoryBlockVerifier: BufferVerifier {
    /// The format's name, for failures.
    let formatName: String
    /// The format's magic.
    let magic: UInt32
    let uuid: BTreeUUID
    let limits: BTreeRecordLimits
    let maxHeight: Int
    /// Block numbers at or above this are outside the memory target.
    let blockCount: UInt64
    /// log2 of the sectors per block (a page is a power-of-two number of sectors).
    let sectorShift: UInt64

    init<Format: BTreeRecordFormat>(format: Format.Type, uuid: BTreeUUID, limits: BTreeRecordLimits,
                                    maxHeight: Int, blockCount: UInt64, sectorsPerBlock: UInt64) {
        precondition(sectorsPerBlock > 0 && sectorsPerBlock & (sectorsPerBlock - 1) == 0,
                     "\(sectorsPerBlock) sectors per block is not a power of two")
        formatName = Format.name
        magic = Format.magic
        self.uuid = uuid
        self.limits = limits
        self.maxHeight = maxHeight
        self.blockCount = blockCount
        sectorShift = UInt64(sectorsPerBlock.trailingZeroBitCount)
    }

    var name: String { "\(formatName) (in memory)" }

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

    @inline(__always)
    private func check(_ buffer: Buffer) throws(VerificationFailure) {
        let bytes = UnsafeRawBufferPointer(buffer.unsafeMutableBytes)
        func u16(_ offset: Int) -> UInt16 { UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
        func u32(_ offset: Int) -> UInt32 { UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
        func u64(_ offset: Int) -> UInt64 { UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }

        guard u32(0) == magic else {
            throw failure("magic 0x\(String(u32(0), radix: 16)) is not \(formatName)'s 0x\(String(magic, radix: 16))", in: buffer)
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
        let own = blkno >> sectorShift
        try checkSibling("left", u64(8), of: own, in: buffer)
        try checkSibling("right", u64(16), of: own, in: buffer)
    }
}
