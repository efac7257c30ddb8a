#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// Sparse, swappable memory indexed by file offset: the kernel's xfile (see the design
/// note in XFSMemoryFile.swift).
///
/// Thread safety: every method may be called from any thread. Loads and stores of
/// disjoint ranges run in parallel; overlapping ones are not ordered against each other
/// (callers serialize them, as buffer locks do). Page addresses may be taken from any
/// thread; growth of the mapping is serialized internally. The file, its window and its
/// descriptor are freed when the last reference goes.
public final class MemoryFile: Sendable {
    /// Where a memory file's bytes live.
    public enum Backing: Sendable, Equatable, CustomStringConvertible {
        /// An anonymous memfd (shmem).
        case memfd
        /// An unnamed O_TMPFILE in a directory (tmpfs such as /dev/shm, or a real disk
        /// for data larger than memory).
        case temporaryFile(directory: String)

        /// "memfd" or "O_TMPFILE in <directory>".
        public var description: String {
            switch self {
            case .memfd: return "memfd"
            case let .temporaryFile(directory): return "O_TMPFILE in \(directory)"
            }
        }
    }

    /// Which backings to try, in order.
    public enum BackingChoice: Sendable, Equatable {
        /// memfd; else O_TMPFILE in /dev/shm; else O_TMPFILE in $TMPDIR (or /tmp).
        case automatic
        /// Exactly this backing (tests use it to exercise each fallback).
        case only(Backing)
        /// The first of these that can be created.
        case firstAvailable([Backing])

        /// The backings this choice tries, in order.
        var candidates: [Backing] {
            switch self {
            case .automatic:
                let temporaryDirectory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
                return [.memfd, .temporaryFile(directory: "/dev/shm"),
                        .temporaryFile(directory: temporaryDirectory.isEmpty ? "/tmp" : temporaryDirectory)]
            case let .only(backing):
                return [backing]
            case let .firstAvailable(backings):
                return backings
            }
        }
    }

    /// The system's page size: the unit of page access, discard accounting and partitions.
    public static let pageSize: Int = {
        let size = sysconf(Int32(_SC_PAGESIZE))
        return size > 0 ? size : 4096
    }()

    /// The maximum size used when the caller names none: 256 GiB of address space (only
    /// reserved, never committed).
    public static let defaultMaximumSize = 256 << 30

    /// A description for diagnostics (also the memfd's name).
    public let name: String
    /// No byte at or past this offset can be stored or mapped.
    public let maximumSize: Int
    /// The backing actually in use.
    public let backing: Backing

    /// The descriptor, window and system calls.
    let mapping: _Mapping
    /// The address of `mapping.window`, stored here so that inlined code reaches it with
    /// one load (as an integer: a pointer is not Sendable).
    @usableFromInline let _windowStart: UInt
    /// Partition bookkeeping: the lowest offset never handed to a partition.
    let partitionTop = Mutex<Int>(0)

    /// Creates an empty memory file.
    ///
    /// - Parameters:
    ///   - name: a description, shown in /proc/self/fd for memfds and in errors.
    ///   - maximumSize: bytes of address space to reserve (rounded up to a page).
    ///   - backing: which backings to try.
    /// - Throws: `MemoryFileError.noBackingAvailable` when no backing can be created, or
    ///   `.systemCallFailed` when the window cannot be reserved.
    public init(name: String = "xfile", maximumSize: Int = MemoryFile.defaultMaximumSize,
                backing: BackingChoice = .automatic) throws(MemoryFileError) {
        precondition(maximumSize > 0, "a memory file's maximum size must be positive, not \(maximumSize)")
        let page = MemoryFile.pageSize
        let (rounded, overflow) = maximumSize.addingReportingOverflow(page - 1)
        precondition(!overflow, "maximum size \(maximumSize) is too large")
        let windowSize = rounded / page * page
        var attempts: [String] = []
        for candidate in backing.candidates {
            let created: Result<Int32, MemoryFileError>
            switch candidate {
            case .memfd: created = _Mapping.createMemfd(name: name)
            case let .temporaryFile(directory): created = _Mapping.createTemporaryFile(in: directory)
            }
            switch created {
            case let .success(descriptor):
                self.name = name
                self.maximumSize = windowSize
                self.backing = candidate
                let mapping = try _Mapping(descriptor: descriptor, windowSize: windowSize)
                self.mapping = mapping
                self._windowStart = UInt(bitPattern: mapping.window)
                return
            case let .failure(error):
                attempts.append("\(candidate): \(error)")
            }
        }
        throw .noBackingAvailable(attempts: attempts)
    }

    // MARK: Byte ranges

    /// Copies `count` bytes at `offset` into `destination`. Holes (never written or
    /// discarded) read as zeros and allocate nothing.
    ///
    /// - Throws: `.beyondMaximumSize` past the maximum size, `.systemCallFailed` if pread fails.
    public func load(into destination: UnsafeMutableRawBufferPointer, at offset: Int) throws(MemoryFileError) {
        try checkRange(offset: offset, length: destination.count)
        try mapping.load(into: destination, at: offset)
    }

    /// The `count` bytes at `offset` (zeros for holes).
    public func load(count: Int, at offset: Int) throws(MemoryFileError) -> [UInt8] {
        precondition(count >= 0, "cannot load a negative count (\(count)) of bytes")
        var bytes = [UInt8](repeating: 0, count: count)
        let result = bytes.withUnsafeMutableBytes { destination in
            Result { () throws(MemoryFileError) in try load(into: destination, at: offset) }
        }
        try result.get()
        return bytes
    }

    /// Stores `source` at `offset`, allocating the pages it touches.
    ///
    /// - Throws: `.beyondMaximumSize` past the maximum size, `.systemCallFailed` if the
    ///   file cannot grow or pwrite fails (ENOSPC when memory or disk is exhausted).
    public func store(_ source: UnsafeRawBufferPointer, at offset: Int) throws(MemoryFileError) {
        try checkRange(offset: offset, length: source.count)
        guard source.count > 0 else { return }
        _ = try mapping.address(at: offset, covering: source.count)
        try mapping.store(source, at: offset)
    }

    /// Stores `bytes` at `offset`.
    public func store(_ bytes: [UInt8], at offset: Int) throws(MemoryFileError) {
        let result = bytes.withUnsafeBytes { source in
            Result { () throws(MemoryFileError) in try store(source, at: offset) }
        }
        try result.get()
    }

    /// Punches a hole over `range`: its whole pages go back to the system and read as
    /// zeros again (partial pages at either end are zeroed, not freed).
    public func discard(_ range: Range<Int>) throws(MemoryFileError) {
        try checkRange(offset: range.lowerBound, length: range.count)
        try mapping.punchHole(offset: range.lowerBound, length: range.count)
    }

    // MARK: Accounting

    /// Bytes of memory (or disk, for a disk-backed file) the whole file holds now.
    public func residentBytes() throws(MemoryFileError) -> Int {
        try mapping.allocatedBytes()
    }

    /// Bytes of `range` that hold data (page granular), by a SEEK_DATA/SEEK_HOLE walk.
    public func residentBytes(in range: Range<Int>) throws(MemoryFileError) -> Int {
        try checkRange(offset: range.lowerBound, length: range.count)
        return try mapping.dataBytes(offset: range.lowerBound, length: range.count)
    }

    // MARK: Pages

    /// The address of the page at `offset` (page-aligned) in the file's window.
    ///
    /// Page access makes no system call unless the mapping must grow (in doubling steps).
    /// The same offset always yields the same address, and writes through it are what
    /// `load` reads. Touching the page allocates it.
    ///
    /// - Warning: the pointer is valid only while this `MemoryFile` is alive; hold the
    ///   file (or the partition, or the buffer target) for as long as you use it.
    /// - Throws: `.beyondMaximumSize` when the page is past the maximum size.
    @inlinable
    public func unsafePageAddress(at offset: Int) throws(MemoryFileError) -> UnsafeMutableRawPointer {
        precondition(offset >= 0 && offset % MemoryFile.pageSize == 0,
                     "page offset \(offset) is not a non-negative multiple of \(MemoryFile.pageSize)")
        return try _pageAddress(at: offset)
    }

    /// Calls `body` with the page at `offset` (page-aligned), writable.
    public func withUnsafeMutablePage<Result>(
        at offset: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Result
    ) throws -> Result {
        let page = try unsafePageAddress(at: offset)
        return try withExtendedLifetime(self) {
            try body(UnsafeMutableRawBufferPointer(start: page, count: MemoryFile.pageSize))
        }
    }

    /// `unsafePageAddress` after the alignment check.
    @usableFromInline
    func _pageAddress(at offset: Int) throws(MemoryFileError) -> UnsafeMutableRawPointer {
        try checkRange(offset: offset, length: MemoryFile.pageSize)
        return try mapping.address(at: offset, covering: MemoryFile.pageSize)
    }

    /// Bytes of the window currently mapped onto the file (grows in doubling steps).
    public var mappedSize: Int { mapping.mappedSize }

    /// The page at `offset` (page-aligned) if the window maps it already, else nil: no
    /// system call, no growth. Pages once mapped stay at the same address while the file
    /// lives (see `unsafePageAddress`).
    @inlinable
    public func unsafeMappedPage(at offset: Int) -> UnsafeMutableRawPointer? {
        assert(offset % MemoryFile.pageSize == 0, "page offset \(offset) is not a multiple of \(MemoryFile.pageSize)")
        guard offset >= 0 && offset < _mappedSize else { return nil }
        return UnsafeMutableRawPointer(bitPattern: _windowStart &+ UInt(offset))
    }

    /// `mappedSize`, for inlined code.
    @usableFromInline
    var _mappedSize: Int { mapping.mappedSize }

    /// Where the byte at `offset` is (or would be) in the file's window, for prefetch
    /// hints only: the page may not be mapped yet, so never load or store through it.
    ///
    /// - Precondition: `offset` lies below the maximum size.
    @inlinable @inline(__always)
    public func unsafePrefetchAddress(at offset: Int) -> UnsafeRawPointer {
        precondition(offset >= 0 && offset < maximumSize, "offset \(offset) outside the memory file")
        return UnsafeRawPointer(bitPattern: _windowStart &+ UInt(offset)).unsafelyUnwrapped
    }

    // MARK: Checks

    /// Throws unless `[offset, offset + length)` lies below the maximum size.
    @inline(__always)
    func checkRange(offset: Int, length: Int) throws(MemoryFileError) {
        precondition(offset >= 0 && length >= 0, "negative range: offset \(offset), length \(length)")
        guard length <= maximumSize && offset <= maximumSize - length else {
            throw .beyondMaximumSize(offset: offset, length: length, maximumSize: maximumSize)
        }
    }
}
