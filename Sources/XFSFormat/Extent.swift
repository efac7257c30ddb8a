/// A packed 16-byte file extent record (bmbt leaf records and EXTENTS-format forks).
///
///     l0: bit 63 unwritten | bits 62..9 startoff (54) | bits 8..0 startblock high 9
///     l1: bits 63..21 startblock low 43 | bits 20..0 blockcount (21)
///
/// `startBlock` is an fsblock (agblklog encoding) for data-device forks.
public struct FileExtent: Sendable, Hashable {
    /// Largest startoff (54 bits).
    public static let maxStartOffset: UInt64 = (1 << 54) - 1
    /// Largest startblock (52 bits).
    public static let maxStartBlock: UInt64 = (1 << 52) - 1
    /// Largest blockcount (21 bits).
    public static let maxBlockCount: UInt32 = (1 << 21) - 1
    /// Bytes of one packed record.
    public static let size = 16

    /// Logical block offset in the fork.
    public var startOffset: UInt64
    /// First fsblock.
    public var startBlock: UInt64
    /// Length in blocks.
    public var blockCount: UInt32
    /// Whether the extent is preallocated but unwritten.
    public var isUnwritten: Bool

    /// An extent. Fields wider than their on-disk bit width are truncated by ``pack()``.
    public init(startOffset: UInt64, startBlock: UInt64, blockCount: UInt32, isUnwritten: Bool = false) {
        self.startOffset = startOffset
        self.startBlock = startBlock
        self.blockCount = blockCount
        self.isUnwritten = isUnwritten
    }

    /// Unpacks the two big-endian words (l0, l1).
    public init(l0: UInt64, l1: UInt64) {
        isUnwritten = l0 >> 63 != 0
        startOffset = (l0 & ~(UInt64(1) << 63)) >> 9
        startBlock = (l0 & 0x1FF) << 43 | l1 >> 21
        blockCount = UInt32(truncatingIfNeeded: l1 & 0x1F_FFFF)
    }

    /// The two words (l0, l1) of the packed form.
    public func pack() -> (l0: UInt64, l1: UInt64) {
        let off = startOffset & Self.maxStartOffset
        let blk = startBlock & Self.maxStartBlock
        let l0 = (isUnwritten ? UInt64(1) << 63 : 0) | off << 9 | blk >> 43
        let l1 = (blk & ((1 << 43) - 1)) << 21 | UInt64(blockCount & Self.maxBlockCount)
        return (l0, l1)
    }

    /// Decodes the packed record at `p` (16 bytes, any alignment).
    public static func load(from p: UnsafeRawPointer) -> FileExtent {
        FileExtent(l0: BigEndian.u64(p, 0), l1: BigEndian.u64(p, 8))
    }

    /// Encodes this extent into 16 bytes at `p`.
    public func store(to p: UnsafeMutableRawPointer) {
        let (l0, l1) = pack()
        BigEndian.store(l0, p, 0)
        BigEndian.store(l1, p, 8)
    }

    /// Why this extent is invalid on its own (zero length, range overflow), or nil.
    public var problem: String? {
        if blockCount == 0 { return "zero-length extent at offset \(startOffset)" }
        if blockCount > Self.maxBlockCount { return "blockcount \(blockCount) exceeds 21 bits" }
        if startOffset > Self.maxStartOffset || startOffset + UInt64(blockCount) > Self.maxStartOffset + 1 {
            return "extent at offset \(startOffset) length \(blockCount) exceeds the 54-bit file offset space"
        }
        if startBlock > Self.maxStartBlock || startBlock + UInt64(blockCount) > Self.maxStartBlock + 1 {
            return "extent at block \(startBlock) length \(blockCount) exceeds the 52-bit block space"
        }
        return nil
    }
}

extension FileExtent: CustomStringConvertible {
    /// "[startoff 0, startblock 1234, len 8]", ending ", unwritten" for an unwritten extent.
    public var description: String {
        "[startoff \(startOffset), startblock \(startBlock), len \(blockCount)\(isUnwritten ? ", unwritten" : "")]"
    }
}
