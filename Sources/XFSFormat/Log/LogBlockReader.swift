import XFSBuffer

/// Reads a log's basic blocks through its target, one chunk of `chunkBlocks` blocks at a
/// time, so that a scan of the whole log costs one read per 64 KiB.
///
/// Chunks sit at fixed places from the log's start (the last one is shorter), so each is
/// always read with the same address and length. The chunk in use is held; moving to another
/// one marks it stale and releases it, so log chunks never stay in the target's cache and
/// never meet the image's metadata buffers there.
final class LogBlockReader {
    /// Basic blocks per chunk: 64 KiB.
    static let chunkBlocks: Int64 = 128

    let location: LogLocation
    /// Chunk reads so far (each one pread of at most 64 KiB).
    private(set) var chunkReads = 0
    private var chunk: Buffer?
    private var chunkIndex: Int64 = -1

    init(_ location: LogLocation) {
        self.location = location
    }

    deinit { dropChunk() }

    /// The log's length in basic blocks.
    var blockCount: Int64 { location.basicBlocks }

    /// The first two words of log block `block` (big-endian): a data block's cycle, or a
    /// header's magic and cycle.
    func firstWords(_ block: Int64) throws -> (UInt32, UInt32) {
        try withBlock(block) { bytes in
            (UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
             UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        }
    }

    /// The cycle number stamped on log block `block`: the word after the magic in a record
    /// header, the first word anywhere else.
    func cycle(_ block: Int64) throws -> UInt32 {
        let (first, second) = try firstWords(block)
        return first == LogRecordHeader.magic ? second : first
    }

    /// Whether log block `block` starts with the record header magic.
    func isHeader(_ block: Int64) throws -> Bool {
        try firstWords(block).0 == LogRecordHeader.magic
    }

    /// The byte at `offset` of log block `block`.
    func byte(_ block: Int64, at offset: Int) throws -> UInt8 {
        precondition(offset >= 0 && offset < DiskAddress.basicBlockSize, "byte \(offset) of a basic block")
        return try withBlock(block) { $0[offset] }
    }

    /// The record header at log block `block`, decoded (not checked).
    func header(_ block: Int64) throws -> LogRecordHeader {
        let location = "\(self.location.name) block \(block)"
        return try withBlock(block) { bytes in try LogRecordHeader.decode(bytes, location: location) }
    }

    /// Runs `body` on the 512 bytes of log block `block` (0 ..< blockCount).
    private func withBlock<R>(_ block: Int64, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        precondition(block >= 0 && block < blockCount, "log block \(block) of \(blockCount)")
        let index = block / Self.chunkBlocks
        if index != chunkIndex {
            dropChunk()
            let first = index * Self.chunkBlocks
            let count = min(Self.chunkBlocks, blockCount - first)
            chunk = try location.target.readBuffer(at: DiskAddress(location.start.sectors + first),
                                                   length: Int(count) * DiskAddress.basicBlockSize, verifier: nil)
            chunkIndex = index
            chunkReads += 1
        }
        let offset = Int(block - chunkIndex * Self.chunkBlocks) * DiskAddress.basicBlockSize
        return try chunk!.withUnsafeBytes { bytes in
            try body(UnsafeRawBufferPointer(rebasing: bytes[offset ..< offset + DiskAddress.basicBlockSize]))
        }
    }

    /// Gives the held chunk back and drops it from the cache.
    private func dropChunk() {
        guard let held = chunk else { return }
        held.markStale()
        location.target.release(held)
        chunk = nil
        chunkIndex = -1
    }
}
