/// A log sequence number: the cycle of a log write and the basic block it went to, as the
/// on-disk LSN packs them (cycle << 32 | block).
public struct LogPosition: Hashable, Sendable, CustomStringConvertible {
    /// The write cycle: how many times the log had been gone round, counting from 1.
    public var cycle: UInt32
    /// The basic block within the log.
    public var block: UInt32

    /// The position of `block` in `cycle`.
    public init(cycle: UInt32, block: UInt32) {
        self.cycle = cycle
        self.block = block
    }

    /// The position an on-disk LSN names.
    public init(lsn: UInt64) {
        self.init(cycle: UInt32(truncatingIfNeeded: lsn >> 32), block: UInt32(truncatingIfNeeded: lsn))
    }

    /// "cycle C block B".
    public var description: String { "cycle \(cycle) block \(block)" }
}

/// The header that starts every log record (`xlog_rec_header`), the fields this package
/// reads. All big-endian; the CRC is not checked here.
///
///     0   magic 0xFEEDBABE      24  tail LSN              300  format
///     4   cycle                 32  CRC (little-endian)   304  filesystem uuid (16)
///     8   version (1 or 2)      36  previous block        320  record size (iclog size)
///     12  length (data bytes)   40  log operations
///     16  LSN                   44  cycle data (64 words)
public struct LogRecordHeader: Sendable, Equatable {
    /// 0xFEEDBABE: a header block's first word (no cycle number ever has this value).
    public static let magic: UInt32 = 0xFEED_BABE
    /// The bytes of the structure (it fills one basic block).
    public static let structSize = 324
    /// Record size covered by the header's cycle data: each 32 KiB more takes one more header block.
    public static let cycleDataSpan: UInt32 = 32 * 1024
    /// Log version 2 (large records, log stripe units): every v5 filesystem has it.
    public static let version2: UInt32 = 2

    /// The magic (0xFEEDBABE in a header).
    public var magicnum: UInt32
    /// The cycle the record was written in.
    public var cycle: UInt32
    /// The record format version: 1, or 2 (large records, log stripe units).
    public var version: UInt32
    /// Bytes of operations after the header blocks (padding to the log stripe unit included).
    public var length: UInt32
    /// The record's own LSN.
    public var lsn: UInt64
    /// The LSN of the oldest record whose changes were not yet written in place.
    public var tailLSN: UInt64
    /// The block of the record before (-1 for none).
    public var previousBlock: UInt32
    /// How many log operations the record holds.
    public var operationCount: UInt32
    /// The byte order of the writer (1 little-endian Linux, 2 big-endian Linux, 3 IRIX).
    public var format: UInt32
    /// The filesystem's `uuid` (not `meta_uuid`), or null in logs of old writers.
    public var uuid: FSUUID
    /// The size of the in-core log buffer the record was written from.
    public var size: UInt32

    /// Decodes a header from a basic block without checking anything.
    public static func decode(_ bytes: UnsafeRawBufferPointer, location: String) throws(XFSFormatError) -> LogRecordHeader {
        let r = ByteReader(bytes, location: location)
        try r.require(structSize, at: 0, "log record header")
        return LogRecordHeader(
            magicnum: try r.u32(at: 0), cycle: try r.u32(at: 4), version: try r.u32(at: 8), length: try r.u32(at: 12),
            lsn: try r.u64(at: 16), tailLSN: try r.u64(at: 24), previousBlock: try r.u32(at: 36),
            operationCount: try r.u32(at: 40), format: try r.u32(at: 300), uuid: try r.uuid(at: 304),
            size: try r.u32(at: 320))
    }

    /// The record's own position.
    public var position: LogPosition { LogPosition(lsn: lsn) }
    /// The oldest record whose changes were not yet written in place when this one was.
    public var tail: LogPosition { LogPosition(lsn: tailLSN) }

    /// Basic blocks of the data after the header blocks: the length rounded up to 512.
    public var dataBlocks: Int64 { (Int64(length) + 511) >> 9 }

    /// Header blocks of the record, as the tail search counts them: one, or one per 32 KiB
    /// of `size` (rounded up) for a version 2 record larger than 32 KiB.
    public var headerBlocks: Int64 {
        guard version & LogRecordHeader.version2 != 0, size > LogRecordHeader.cycleDataSpan else { return 1 }
        return (Int64(size) + Int64(LogRecordHeader.cycleDataSpan) - 1) / Int64(LogRecordHeader.cycleDataSpan)
    }

    /// Header blocks as the head search counts them for a version 2 log: `size` / 32 KiB
    /// rounded up, whatever the record's own version says (0 for a size of 0).
    public var headerBlocksBySize: Int64 {
        (Int64(size) + Int64(LogRecordHeader.cycleDataSpan) - 1) / Int64(LogRecordHeader.cycleDataSpan)
    }
}

/// The operation header that starts each log operation (`xlog_op_header`, 12 bytes). On
/// disk the first word of a block is replaced by the cycle number, so only the fields
/// after it are read.
enum LogOperationHeader {
    /// Offset of the flags byte.
    static let flagsOffset = 9
    /// The operation is an unmount record.
    static let unmountFlag: UInt8 = 0x20
}
