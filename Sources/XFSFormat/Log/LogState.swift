/// Whether a filesystem's log is clean, and where its head and tail are (see the essay in
/// LogLocation.swift).
///
/// Found as xfs_repair and xfs_logprint find them: the log is *clean* when head and tail are
/// the same block, which is so after a clean unmount (the last record before the head is an
/// unmount record that ends at the head) and for a log never written. A dirty log holds
/// changes that were not written in place: a check of the filesystem sees it as it was
/// before them, until a mount replays the log (or `xfs_repair -L` throws them away).
public struct LogState: Equatable, Sendable, CustomStringConvertible {
    /// Where the next log write would go: the current cycle and the head block.
    public var head: LogPosition
    /// The oldest position recovery would replay from; equal to the head on a clean log.
    public var tail: LogPosition
    /// Whether nothing lies between tail and head (xfs_repair compares the blocks).
    public var isClean: Bool { head.block == tail.block }
    /// Whether the log is all zeros (never written; mkfs writes an unmount record, so only
    /// a zeroed log looks like this). Such a log is clean, with head and tail at cycle 1,
    /// block 0, where its first write would go.
    public var isZeroed: Bool
    /// Whether the last record before the head is an unmount record ending at the head.
    public var endsWithUnmountRecord: Bool

    /// A state from its parts.
    public init(head: LogPosition, tail: LogPosition, isZeroed: Bool, endsWithUnmountRecord: Bool) {
        self.head = head
        self.tail = tail
        self.isZeroed = isZeroed
        self.endsWithUnmountRecord = endsWithUnmountRecord
    }

    /// "clean (head … , tail …)" or "dirty (head …, tail …)".
    public var description: String {
        "\(isClean ? "clean" : "dirty") (head \(head), tail \(tail))"
    }

    /// The span before a head in which the in-core log buffers still being written could
    /// have left blocks of the previous cycle: 8 buffers of 256 KiB, in basic blocks.
    static let inFlightBlocks: Int64 = 8 * 256 * 1024 / 512
    /// The longest record: 256 KiB, in basic blocks.
    static let recordBlocks: Int64 = 256 * 1024 / 512
    /// The largest log XFS makes: 2 GiB, in basic blocks (block numbers in LSNs are 32-bit).
    public static let maximumBlocks: Int64 = (1 << 31) / 512

    /// Finds the head and tail of the log at `location`, whose record headers must carry
    /// `filesystemUUID` (the superblock's `uuid`; a header with the null uuid is accepted).
    ///
    /// The work is bounded by the log's size whatever its contents: a handful of binary
    /// searches, scans of at most 2 MiB, and at worst one backward pass over the whole log
    /// for the last record header, all in 64 KiB reads.
    ///
    /// - Throws: `XFSFormatError` naming the check that failed when the blocks cannot be a
    ///   log (no record header where one must be, a header of another filesystem, a cycle
    ///   number out of order, a header whose fields do not fit the log), or a
    ///   `BufferError` when a read fails.
    public static func read(_ location: LogLocation, filesystemUUID: FSUUID) throws -> LogState {
        guard location.basicBlocks <= maximumBlocks else {
            throw XFSFormatError(.corrupt, location.name,
                                 "\(location.basicBlocks) basic blocks is larger than the largest log (\(maximumBlocks))")
        }
        let search = LogSearch(reader: LogBlockReader(location), uuid: filesystemUUID)
        return try search.state()
    }
}

/// The head and tail search over one log.
private struct LogSearch {
    let reader: LogBlockReader
    let uuid: FSUUID

    /// Blocks in the log.
    var size: Int64 { reader.blockCount }
    var name: String { reader.location.name }

    func corrupt(_ detail: String) -> XFSFormatError { XFSFormatError(.corrupt, name, detail) }

    /// Head, then tail, then the verdict.
    func state() throws -> LogState {
        guard let head = try findHead() else {
            let start = LogPosition(cycle: 1, block: 0)
            return LogState(head: start, tail: start, isZeroed: true, endsWithUnmountRecord: false)
        }
        return try findTail(head: head)
    }

    // MARK: Head

    /// The head block, or nil for a log that is all zeros.
    func findHead() throws -> Int64? {
        let firstCycle = try reader.cycle(0)
        if firstCycle == 0 { return nil } // never written
        let lastCycle = try reader.cycle(size - 1)
        if lastCycle == 0 { return try findHeadOfPartlyWrittenLog(firstCycle: firstCycle) }

        // Either the whole log has one cycle (x ... x, the head wraps to block 0 unless a
        // stretch of x − 1 shows a write that did not finish), or it is x + 1 ... | x ... x
        // and the head is the first block of cycle x.
        var head: Int64
        let stopCycle: UInt32
        if firstCycle == lastCycle {
            head = size
            stopCycle = lastCycle &- 1
        } else {
            head = try firstBlock(withCycle: lastCycle, after: 0, atOrBefore: size - 1)
            stopCycle = lastCycle
        }
        // Writes finish out of order: a block of `stopCycle` in the last in-flight span
        // before the head means the head is really there.
        let span = LogState.inFlightBlocks
        if head >= span {
            if let earlier = try firstBlock(in: head - span ..< head, withCycle: stopCycle) { head = earlier }
        } else if let hole = try firstBlock(in: max(0, size - (span - head)) ..< size, withCycle: stopCycle &- 1) {
            // Near the start of the log, the span wraps to its end: a hole of the cycle
            // before the head's there is where the head is.
            head = hole
        } else if let earlier = try firstBlock(in: 0 ..< head, withCycle: stopCycle) {
            head = earlier
        }
        head = try stepBackOverPartialRecordBeforeHead(head)
        return head == size ? 0 : head
    }

    /// The head of a log whose last block was never written: block 0 must be of cycle 1,
    /// and the head is the first block of cycle 0 (after a check of the last in-flight span
    /// and a step back over a record cut short).
    private func findHeadOfPartlyWrittenLog(firstCycle: UInt32) throws -> Int64 {
        guard firstCycle == 1 else {
            throw corrupt("block \(size - 1) has cycle 0 but block 0 has cycle \(firstCycle), not 1: not a log, or a damaged one")
        }
        var head = try firstBlock(withCycle: 0, after: 0, atOrBefore: size - 1)
        let span = min(LogState.inFlightBlocks, head)
        let start = head - span
        if let zero = try firstBlock(in: start ..< head, withCycle: 0) { head = zero }
        guard let stepped = try lastRecordEnd(searchingFrom: start, to: head, blocksAfterEnd: 0) else {
            throw corrupt("no log record header before the first unwritten block \(head)")
        }
        return stepped
    }

    /// The head after stepping back over a record cut short: the last header in the record
    /// span before `head` must start a record that ends exactly there, or the head moves to
    /// that header. Near block 0 the span wraps to the end of the log. `head` may be `size`
    /// (the end of the log, which is block 0 again).
    private func stepBackOverPartialRecordBeforeHead(_ head: Int64) throws -> Int64 {
        let span = LogState.recordBlocks
        if head >= span {
            guard let stepped = try lastRecordEnd(searchingFrom: head - span, to: head, blocksAfterEnd: 0) else {
                throw corrupt("no log record header in the \(span) blocks before the head at block \(head)")
            }
            return stepped
        }
        if let stepped = try lastRecordEnd(searchingFrom: 0, to: head, blocksAfterEnd: 0) { return stepped }
        // No header between block 0 and the head: the last record wraps round the end.
        let start = max(0, size - (span - head))
        guard let stepped = try lastRecordEnd(searchingFrom: start, to: size, blocksAfterEnd: head) else {
            throw corrupt("no log record header in the \(span) blocks before the head at block \(head)")
        }
        return stepped == size ? head : stepped
    }

    /// Searches backwards from `end − 1` down to `start` for a record header. When the
    /// record there does not end at `end` (counting `blocksAfterEnd` more blocks at the start
    /// of the log, for a record that wraps), it was cut short and its header block is
    /// returned; otherwise `end`. Nil when `start` is 0 and there is no header; an error when
    /// `start` > 0 and there is none, or when the header belongs to another filesystem.
    private func lastRecordEnd(searchingFrom start: Int64, to end: Int64, blocksAfterEnd: Int64) throws -> Int64? {
        var block = end - 1
        while block >= start {
            if try reader.isHeader(block) { break }
            block -= 1
        }
        guard block >= start else {
            if start == 0 { return nil }
            throw corrupt("no log record header in blocks \(start)..<\(end), before the head")
        }
        let header = try reader.header(block)
        try checkUUID(header, at: block)
        let recordBlocks = header.dataBlocks + header.headerBlocksBySize
        return end - block + blocksAfterEnd == recordBlocks ? end : block
    }

    // MARK: Tail

    /// The tail, from the last record header before `head` (searching back round the end
    /// of the log if need be), and the verdict.
    private func findTail(head: Int64) throws -> LogState {
        var found: Int64?
        var wrapped = false
        var block = head - 1
        while block >= 0 {
            if try reader.isHeader(block) { found = block; break }
            block -= 1
        }
        if found == nil {
            block = size - 1
            while block >= head {
                if try reader.isHeader(block) { found = block; wrapped = true; break }
                block -= 1
            }
        }
        guard let at = found else { throw corrupt("no log record header anywhere in the \(size) blocks of the log") }
        let header = try reader.header(at)
        try checkUUID(header, at: at)
        guard header.version == 1 || header.version == LogRecordHeader.version2 else {
            throw corrupt("the record header at block \(at) has version \(header.version), not 1 or 2")
        }
        let tail = header.tail
        guard Int64(tail.block) < size else {
            throw corrupt("the record header at block \(at) names tail block \(tail.block), beyond the log's \(size) blocks")
        }
        guard tail.cycle == header.cycle || tail.cycle &+ 1 == header.cycle else {
            throw corrupt("the record header at block \(at) (cycle \(header.cycle)) names a tail in cycle \(tail.cycle)")
        }
        // A record found by wrapping round was written in the cycle before the head's.
        let cycle = wrapped ? header.cycle &+ 1 : header.cycle
        let headPosition = LogPosition(cycle: cycle, block: UInt32(head))
        // An unmount record that ends at the head moves the tail to the head.
        let end = (at + header.headerBlocks + header.dataBlocks) % size
        if end == head, header.operationCount == 1 {
            let operation = (at + header.headerBlocks) % size
            if try reader.byte(operation, at: LogOperationHeader.flagsOffset) & LogOperationHeader.unmountFlag != 0 {
                return LogState(head: headPosition, tail: headPosition, isZeroed: false, endsWithUnmountRecord: true)
            }
        }
        return LogState(head: headPosition, tail: tail, isZeroed: false, endsWithUnmountRecord: false)
    }

    // MARK: Searches

    /// The first block in (`low`, `high`] with cycle `cycle`, by binary search: block `low`
    /// must not have it and block `high` must. On a log whose cycles do not step down once,
    /// the answer is some block where they change; it is validated afterwards.
    private func firstBlock(withCycle cycle: UInt32, after low: Int64, atOrBefore high: Int64) throws -> Int64 {
        var low = low, high = high
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if try reader.cycle(middle) == cycle { high = middle } else { low = middle }
        }
        return high
    }

    /// The first block in `range` with cycle `cycle`, or nil.
    private func firstBlock(in range: Range<Int64>, withCycle cycle: UInt32) throws -> Int64? {
        for block in range {
            if try reader.cycle(block) == cycle { return block }
        }
        return nil
    }

    /// Throws unless the header carries the filesystem's uuid (or the null uuid).
    private func checkUUID(_ header: LogRecordHeader, at block: Int64) throws {
        guard header.uuid != uuid, header.uuid != .zero else { return }
        throw corrupt("the record header at block \(block) belongs to filesystem \(header.uuid), not \(uuid): "
            + (reader.location.isExternal ? "the wrong log device?" : "a log of another filesystem"))
    }
}
