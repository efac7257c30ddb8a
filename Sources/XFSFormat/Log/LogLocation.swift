import XFSBuffer

// The XFS Log, Read Only as Far as Its Head and Tail
// ==================================================
//
// The log is a circular region of 512-byte basic blocks: inside the data device (sb_logstart
// names its first fsblock) or on a device of its own (sb_logstart = 0, the whole external
// device from daddr 0). Writes go round it in *cycles*. Every basic block that a log write
// covers starts with the cycle number of that write: the first word of a record header block
// is the magic 0xFEEDBABE with the cycle in the next word, and the first word of each data
// block is replaced by the cycle (the displaced words are kept in the header). So reading the
// first eight bytes of each block is enough to see where the newest cycle ends: the *head*,
// where the next write goes, is where the cycle number drops.
//
// Each record starts with a header (one basic block, plus one more per 32 KiB of record
// size beyond the first) that carries its LSN (cycle << 32 | block), its length, the number
// of log operations it holds, and the *tail* LSN: the oldest record whose changes were not
// yet written in place when it was written. A log is clean when nothing lies between tail
// and head: when the last record before the head is an unmount record (one operation,
// flagged XLOG_UNMOUNT_TRANS) that ends exactly at the head, the tail is moved to the head.
// A log never written (all zeros) is clean too.
//
// `LogState` finds head and tail the way xfs_repair and xfs_logprint do (libxlog's
// xlog_find_tail, re-derived from the facts, not the code): a binary search for the cycle
// drop, a scan of the last 2 MiB before it for blocks of an older write that finished late,
// a step back over a record cut short, then the last header before the head. Every scan is
// bounded by the log's size, every search by its logarithm, and the answer is judged by the
// header found, never by a loop that follows values read from the log.

/// Where an XFS log lives: the device (target) that holds it, its first basic block there,
/// and its length.
public struct LogLocation: Sendable {
    /// The device the log is read from: the data device's target for an internal log, the
    /// log device's own target for an external one.
    public let target: FileTarget
    /// The log's first basic block on `target`.
    public let start: DiskAddress
    /// The log's length in 512-byte basic blocks.
    public let basicBlocks: Int64
    /// Whether the log has a device of its own.
    public let isExternal: Bool

    /// A log of `basicBlocks` basic blocks from `start` on `target`, which must lie inside
    /// the target.
    public init(target: FileTarget, start: DiskAddress, basicBlocks: Int64, isExternal: Bool) {
        precondition(start.sectors >= 0 && basicBlocks > 0, "a log of \(basicBlocks) basic blocks at \(start)")
        precondition(start.sectors + basicBlocks <= Int64(target.deviceSize / DiskAddress.basicBlockSize),
                     "a log of \(basicBlocks) basic blocks at \(start) does not fit in \(target.path) (\(target.deviceSize) bytes)")
        self.target = target
        self.start = start
        self.basicBlocks = basicBlocks
        self.isExternal = isExternal
    }

    /// "log" or "external log", for messages.
    public var name: String { isExternal ? "external log" : "log" }
}

extension XFSImage {
    /// Where this filesystem's log lives: inside the data device at sb_logstart, or the whole
    /// of the external log device the image was opened with.
    public var logLocation: LogLocation {
        let g = geometry
        let length = Int64(g.logBlocks) * Int64(g.basicBlocksPerBlock)
        if let logTarget {
            return LogLocation(target: logTarget, start: DiskAddress(0), basicBlocks: length, isExternal: true)
        }
        return LogLocation(target: target, start: DiskAddress(Int64(g.daddr(fsBlock: g.logStart))),
                           basicBlocks: length, isExternal: false)
    }

    /// Finds the head and tail of this filesystem's log (internal, or on the external log
    /// device) and whether it is clean. See ``LogState/read(_:filesystemUUID:)``.
    public func readLogState() throws -> LogState {
        try LogState.read(logLocation, filesystemUUID: superblock.uuid)
    }
}
