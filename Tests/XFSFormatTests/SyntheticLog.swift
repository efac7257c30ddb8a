import Foundation
import XFSFormat
import XFSTestSupport

/// A log region built record by record, to put layouts into a real image that a kernel
/// rarely leaves (a wrapped log, a write torn in the middle, a record cut short at the head)
/// and compare the head and tail found with what `xfs_logprint` finds.
///
/// Every block written carries its cycle in its first word, as the kernel stamps them;
/// record headers carry the magic, version 2, length, LSN, tail LSN, operation count,
/// format, uuid and a 32 KiB record size. Block numbers wrap round the end of the log.
struct SyntheticLog {
    /// Basic blocks in the log.
    let size: Int
    /// The filesystem uuid headers carry.
    let uuid: FSUUID
    /// The log's bytes.
    var bytes: [UInt8]

    /// An all-zero log of `size` blocks.
    init(size: Int, uuid: FSUUID) {
        self.size = size
        self.uuid = uuid
        bytes = [UInt8](repeating: 0, count: size * 512)
    }

    /// Stores `value` big-endian at byte `offset` of block `block`.
    mutating func put(_ value: UInt32, block: Int, at offset: Int) {
        let base = (block % size) * 512 + offset
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.bigEndian, toByteOffset: base, as: UInt32.self) }
    }

    /// Stores `value` big-endian at byte `offset` of block `block`.
    mutating func put(_ value: UInt64, block: Int, at offset: Int) {
        put(UInt32(truncatingIfNeeded: value >> 32), block: block, at: offset)
        put(UInt32(truncatingIfNeeded: value), block: block, at: offset + 4)
    }

    /// Stamps the blocks of `range` (which may run past the end and wrap) as data blocks of
    /// `cycle`: first word the cycle, the rest left as it is.
    mutating func stamp(_ range: Range<Int>, cycle: UInt32) {
        for block in range { put(cycle, block: block, at: 0) }
    }

    /// Writes one record at `block`: a header and `dataBlocks` data blocks of `cycle`, its
    /// tail LSN `tail`. An unmount record holds one operation flagged XLOG_UNMOUNT_TRANS;
    /// others hold `operations` operations of a transaction. Returns the block after it.
    @discardableResult
    mutating func record(at block: Int, cycle: UInt32, dataBlocks: Int, tail: LogPosition,
                         unmount: Bool = false, operations: UInt32 = 2, version: UInt32 = 2) -> Int {
        let header = block % size
        bytes.withUnsafeMutableBytes { raw in
            for b in 0 ... dataBlocks { (raw.baseAddress! + ((header + b) % size) * 512).initializeMemory(as: UInt8.self, repeating: 0, count: 512) }
        }
        put(LogRecordHeader.magic, block: header, at: 0)
        put(cycle, block: header, at: 4)
        put(version, block: header, at: 8)
        put(UInt32(dataBlocks * 512), block: header, at: 12)
        put(UInt64(cycle) << 32 | UInt64(header), block: header, at: 16)
        put(UInt64(tail.cycle) << 32 | UInt64(tail.block), block: header, at: 24)
        put(UInt32(bitPattern: -1), block: header, at: 36)
        put(unmount ? 1 : operations, block: header, at: 40)
        put(UInt32(1), block: header, at: 300) // little-endian Linux
        put(uuid.high, block: header, at: 304)
        put(uuid.low, block: header, at: 312)
        put(UInt32(32768), block: header, at: 320)
        stamp(header + 1 ..< header + 1 + dataBlocks, cycle: cycle)
        // The first operation header: client (LOG for unmount, TRANSACTION otherwise) and flags.
        let first = (header + 1) % size
        bytes[first * 512 + 8] = unmount ? 0xAA : 0x69
        bytes[first * 512 + 9] = unmount ? 0x20 : 0x01
        return (header + 1 + dataBlocks) % size
    }

    /// Fills blocks `start ..< end` (inside the log) with records of `cycle` whose tail is `tail`, each of
    /// `dataBlocks` data blocks except the last, which takes what is left (at least 2
    /// blocks must be); the last is an unmount record when `endWithUnmount`.
    mutating func records(_ start: Int, _ end: Int, cycle: UInt32, dataBlocks: Int = 7, tail: LogPosition,
                          endWithUnmount: Bool = false) {
        precondition(start >= 0 && end <= size && end - start >= 2, "records in \(start)..<\(end) of \(size) blocks")
        var position = start
        while end - position > 2 * (1 + dataBlocks) {
            record(at: position, cycle: cycle, dataBlocks: dataBlocks, tail: tail)
            position += 1 + dataBlocks
        }
        record(at: position, cycle: cycle, dataBlocks: end - position - 1, tail: tail, unmount: endWithUnmount)
    }

    /// Writes the log into `image` at its log's place.
    func write(into image: String) throws {
        let location = try XFSImage(path: image).logLocation
        precondition(location.basicBlocks == Int64(size), "a log of \(size) blocks for one of \(location.basicBlocks)")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(location.start.byteOffset))
        try handle.write(contentsOf: Data(bytes))
    }
}
