/// A page-aligned range `[base, base + size)` of a shared memory file, addressed from
/// zero: many in-memory btrees share one descriptor this way (xfsprogs does the same so
/// that a filesystem with many AGs does not run out of descriptors).
///
/// Every operation is bounds-checked against the partition (`.beyondMaximumSize` with the
/// partition's size). When the partition is freed its range is discarded, returning its
/// memory; if it was the highest partition, its space can be handed out again.
///
/// Thread safety: as `MemoryFile`.
public final class MemoryFilePartition: Sendable {
    /// The shared file; kept alive by the partition.
    public let file: MemoryFile
    /// The partition's first byte in the file (page-aligned).
    public let base: Int
    /// The partition's size in bytes (a multiple of the page size).
    public let size: Int

    /// Made by `MemoryFile.makePartition(size:)`.
    init(file: MemoryFile, base: Int, size: Int) {
        self.file = file
        self.base = base
        self.size = size
    }

    deinit {
        // A deinit cannot throw. A failed punch leaves the pages allocated until the file
        // itself goes away, which frees them all; nothing else can go wrong.
        try? file.discard(base..<(base + size))
        file.partitionTop.withLock { top in
            if top == base + size { top = base }
        }
    }

    /// Copies bytes at the partition-relative `offset` into `destination` (zeros for holes).
    public func load(into destination: UnsafeMutableRawBufferPointer, at offset: Int) throws(MemoryFileError) {
        try checkRange(offset: offset, length: destination.count)
        try file.load(into: destination, at: base + offset)
    }

    /// The `count` bytes at the partition-relative `offset`.
    public func load(count: Int, at offset: Int) throws(MemoryFileError) -> [UInt8] {
        try checkRange(offset: offset, length: count)
        return try file.load(count: count, at: base + offset)
    }

    /// Stores `source` at the partition-relative `offset`.
    public func store(_ source: UnsafeRawBufferPointer, at offset: Int) throws(MemoryFileError) {
        try checkRange(offset: offset, length: source.count)
        try file.store(source, at: base + offset)
    }

    /// Stores `bytes` at the partition-relative `offset`.
    public func store(_ bytes: [UInt8], at offset: Int) throws(MemoryFileError) {
        try checkRange(offset: offset, length: bytes.count)
        try file.store(bytes, at: base + offset)
    }

    /// Punches a hole over the partition-relative `range`.
    public func discard(_ range: Range<Int>) throws(MemoryFileError) {
        try checkRange(offset: range.lowerBound, length: range.count)
        try file.discard((base + range.lowerBound)..<(base + range.upperBound))
    }

    /// Bytes of the partition holding data (page granular).
    public func residentBytes() throws(MemoryFileError) -> Int {
        try file.residentBytes(in: base..<(base + size))
    }

    /// Bytes of the partition-relative `range` holding data.
    public func residentBytes(in range: Range<Int>) throws(MemoryFileError) -> Int {
        try checkRange(offset: range.lowerBound, length: range.count)
        return try file.residentBytes(in: (base + range.lowerBound)..<(base + range.upperBound))
    }

    /// The address of the page at the partition-relative, page-aligned `offset`.
    ///
    /// - Warning: valid only while the partition (which holds its file) is alive.
    public func unsafePageAddress(at offset: Int) throws(MemoryFileError) -> UnsafeMutableRawPointer {
        precondition(offset >= 0 && offset % MemoryFile.pageSize == 0,
                     "page offset \(offset) is not a non-negative multiple of \(MemoryFile.pageSize)")
        try checkRange(offset: offset, length: MemoryFile.pageSize)
        return try file._pageAddress(at: base + offset)
    }

    /// Throws unless the partition-relative range lies inside the partition.
    @inline(__always)
    func checkRange(offset: Int, length: Int) throws(MemoryFileError) {
        precondition(offset >= 0 && length >= 0, "negative range: offset \(offset), length \(length)")
        guard length <= size && offset <= size - length else {
            throw .beyondMaximumSize(offset: offset, length: length, maximumSize: size)
        }
    }
}

extension MemoryFile {
    /// Carves a new partition of `size` bytes (rounded up to a page) from the space above
    /// every live partition.
    ///
    /// - Throws: `.partitionSpaceExhausted` when the file's maximum size leaves no room.
    public func makePartition(size: Int) throws(MemoryFileError) -> MemoryFilePartition {
        precondition(size > 0, "a partition's size must be positive, not \(size)")
        let page = MemoryFile.pageSize
        let rounded = size <= maximumSize ? (size + page - 1) / page * page : size
        let base: Int? = partitionTop.withLock { top in
            guard rounded <= maximumSize - top else { return nil }
            defer { top += rounded }
            return top
        }
        guard let base else {
            let available = partitionTop.withLock { maximumSize - $0 }
            throw .partitionSpaceExhausted(requested: size, available: available)
        }
        return MemoryFilePartition(file: self, base: base, size: rounded)
    }
}
