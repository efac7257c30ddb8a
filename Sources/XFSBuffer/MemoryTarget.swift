import XFSMemoryFile

/// A buffer target whose buffers are the pages of a memory file: the kernel's xmbuf.
///
/// The block size is the page size; every buffer is exactly one page at a page-aligned
/// disk address, and its memory *is* that page of the file's window, so no byte is copied
/// and no I/O happens. Reads complete at once and still run their verifier. When a stale
/// (freed) buffer is released for the last time, its page is punched out of the file.
///
/// Pages stay mapped as long as the file lives, which the target (and every buffer it made)
/// keeps alive. Thread-safe, as every `BufferTarget`.
public final class MemoryTarget: BufferTarget {
    /// The memory file the pages come from.
    public let file: MemoryFile
    /// The partition the target covers, when it covers one.
    public let partition: MemoryFilePartition?
    /// The target's first byte in the file.
    @usableFromInline let base: Int
    /// `sectorsPerBlock`, stored: the static is a once-initialized global behind a call.
    @usableFromInline let sectorsPerPage: Int64
    /// The target's size in bytes: no buffer reaches past it.
    public let size: Int
    /// The target's buffer cache.
    public let cache: BufferCache
    /// What keeps the pages alive: the partition or the file.
    private let pageOwner: any AnyObject & Sendable

    /// The default memory cap of a memory target's cache: 256 MiB of pages (65,536 buffers
    /// of 4 KiB). Evicting a memory buffer frees only its bookkeeping; the page stays in
    /// the file.
    public static let defaultCacheCapacity = 256 << 20

    /// Bytes per block (and per buffer): the page size.
    public static var blockSize: Int { MemoryFile.pageSize }

    /// Basic blocks (512 bytes) per block: 8 with 4 KiB pages.
    public static var sectorsPerBlock: Int { MemoryFile.pageSize / DiskAddress.basicBlockSize }

    /// A target over the whole of `file`. With `exclusive`, the caller promises to
    /// serialize every use of the target and of its buffers (one in-memory btree used
    /// under its owner's lock, say): the target's cache takes no lock of its own, and
    /// its buffers are not locked (a second get of a held buffer returns it at once).
    public init(file: MemoryFile, cacheCapacity: Int = MemoryTarget.defaultCacheCapacity, exclusive: Bool = false) {
        self.file = file
        self.partition = nil
        self.base = 0
        self.size = file.maximumSize
        self.cache = BufferCache(capacity: cacheCapacity, denseSectorsPerBlock: MemoryTarget.sectorsPerBlock,
                                 shared: !exclusive, dropStale: MemoryTarget.punchAction(file: file, base: 0))
        self.pageOwner = file
        self.sectorsPerPage = Int64(MemoryTarget.sectorsPerBlock)
    }

    /// A target over one partition of a shared file; `exclusive` as for `init(file:)`.
    public init(partition: MemoryFilePartition, cacheCapacity: Int = MemoryTarget.defaultCacheCapacity,
                exclusive: Bool = false) {
        self.file = partition.file
        self.partition = partition
        self.base = partition.base
        self.size = partition.size
        self.cache = BufferCache(capacity: cacheCapacity, denseSectorsPerBlock: MemoryTarget.sectorsPerBlock,
                                 shared: !exclusive,
                                 dropStale: MemoryTarget.punchAction(file: partition.file, base: partition.base))
        self.pageOwner = partition
        self.sectorsPerPage = Int64(MemoryTarget.sectorsPerBlock)
    }

    /// A target over a memory file of its own; `exclusive` as for `init(file:)`.
    public convenience init(name: String, maximumSize: Int,
                            cacheCapacity: Int = MemoryTarget.defaultCacheCapacity, exclusive: Bool = false) throws(BufferError) {
        do {
            self.init(file: try MemoryFile(name: name, maximumSize: maximumSize), cacheCapacity: cacheCapacity,
                      exclusive: exclusive)
        } catch {
            throw .memoryFile(error)
        }
    }

    /// The page's buffer, held and locked.
    ///
    /// - Throws: `.misalignedMemoryBuffer` unless `length` is the page size and `address`
    ///   page-aligned; `.beyondTarget` past the target's size; `.lengthMismatch`.
    @inline(__always)
    public func getBuffer(at address: DiskAddress, length: Int) throws(BufferError) -> Buffer {
        try getBufferUnretained(at: address, length: length).takeUnretainedValue()
    }

    /// `getBuffer` without a reference count: the cache owns the buffer while it is held.
    @inline(__always)
    public func getBufferUnretained(at address: DiskAddress, length: Int) throws(BufferError) -> Unmanaged<Buffer> {
        if let cached = try cache.getCached(address, length: length) { return cached }
        return try getBufferMiss(at: address, length: length)
    }

    /// The miss path of `getBufferUnretained`.
    @inline(never)
    private func getBufferMiss(at address: DiskAddress, length: Int) throws(BufferError) -> Unmanaged<Buffer> {
        try cache.get(address, length: length) { () throws(BufferError) in try makeBuffer(at: address, length: length) }.buffer
    }

    /// The page's buffer, held and locked; the first read runs `verifier`'s read check.
    public func readBuffer(at address: DiskAddress, length: Int,
                           verifier: (any BufferVerifier)?) throws(BufferError) -> Buffer {
        try readBufferUnretained(at: address, length: length, verifier: verifier).takeUnretainedValue()
    }

    /// `readBuffer` without a reference count: the cache owns the buffer while it is held.
    public func readBufferUnretained(at address: DiskAddress, length: Int,
                                     verifier: (any BufferVerifier)?) throws(BufferError) -> Unmanaged<Buffer> {
        let found = try getBufferUnretained(at: address, length: length)
        // The common case (a cached, verified buffer) touches no existential: copying the
        // verifier would retain its box.
        let needsWork = found._withUnsafeGuaranteedRef { !$0.isDone || !$0.hasVerifier }
        if needsWork, verifier != nil { try finishRead(found, verifier: verifier) }
        if needsWork { found._withUnsafeGuaranteedRef { $0.markDone() } }
        return found
    }

    /// The first read of a buffer: the verifier's read check, then the verifier attached.
    @inline(never)
    private func finishRead(_ found: Unmanaged<Buffer>, verifier: (any BufferVerifier)?) throws(BufferError) {
        let buffer = found.takeUnretainedValue()
        guard let verifier else { return }
        if !buffer.isDone {
            do throws(VerificationFailure) {
                try verifier.verifyRead(buffer)
            } catch {
                buffer.markStale()
                release(buffer)
                throw .verificationFailed(error)
            }
        }
        if !buffer.hasVerifier { buffer.verifier = verifier }
    }

    /// The cache's stale-drop action: punch the buffer's page out of `file`.
    private static func punchAction(file: MemoryFile, base: Int) -> @Sendable (Buffer) -> Void {
        { stale in
            // Release cannot fail. If the punch does, the page keeps its old bytes until the
            // file goes away; a freed block's next user initializes it with getBuffer anyway.
            let start = base + stale.diskAddress.byteOffset
            try? file.discard(start..<(start + stale.length))
        }
    }

    /// Asks the processor for what getting the buffer at `address` will touch besides its
    /// page (the cached buffer's own fields), as a hint: a caller that knows which block it
    /// will hold next calls this first, and the buffer arrives with the page's lines
    /// instead of after them. Does nothing on a shared cache or for an uncached block.
    public func prefetchBuffer(at address: DiskAddress) {
        cache.prefetchCached(address)
    }

    /// The page at `address` when it is mapped already (nil otherwise, or when the address
    /// cannot start a buffer of this target), without getting its buffer: for a caller
    /// that serializes every use of the target's pages itself (an in-memory btree reading
    /// nodes during a descent). The page stays mapped while the target lives.
    @inlinable
    public func unsafeMappedPage(of address: DiskAddress) -> UnsafeMutableRawPointer? {
        guard isValid(address) else { return nil }
        return file.unsafeMappedPage(at: base + address.byteOffset)
    }

    /// Where the target's first page is in the memory file's window: the page at disk
    /// address `a` is at `unsafePagesStart + a.byteOffset`, at the same place for the
    /// target's whole life (the file reserves its window at its maximum size). For a
    /// caller that serializes every use of the target's pages itself and keeps its own
    /// page arithmetic, as `unsafeMappedPage` does per call: only bytes below
    /// `mappedBytes` may be loaded or stored; the rest of the window is reserved, unmapped.
    public var unsafePagesStart: UnsafeMutableRawPointer {
        UnsafeMutableRawPointer(mutating: file.unsafePrefetchAddress(at: base))
    }

    /// How many of the target's bytes, from its start, the window maps now. It only grows.
    public var mappedBytes: Int { min(max(file.mappedSize - base, 0), size) }

    /// Bytes of memory the target's pages hold now.
    public func residentBytes() throws(BufferError) -> Int {
        do {
            return partition == nil ? try file.residentBytes() : try file.residentBytes(in: base..<(base + size))
        } catch {
            throw .memoryFile(error)
        }
    }

    /// Whether `address` can start a buffer of this target (page-aligned, inside it).
    @inlinable
    public func isValid(_ address: DiskAddress) -> Bool {
        address.sectors >= 0 && address.sectors & (sectorsPerPage &- 1) == 0
            && address.sectors < Int64(size / DiskAddress.basicBlockSize)
    }

    /// The miss path: a buffer over the page at `address`.
    private func makeBuffer(at address: DiskAddress, length: Int) throws(BufferError) -> Buffer {
        let page = MemoryFile.pageSize
        guard length == page, address.sectors >= 0, address.sectors % Int64(MemoryTarget.sectorsPerBlock) == 0 else {
            throw .misalignedMemoryBuffer(address: address, length: length, pageSize: page)
        }
        guard address.sectors < Int64(size / DiskAddress.basicBlockSize) else {
            throw .beyondTarget(address: address, length: length, targetSize: size)
        }
        do {
            let memory = try file.unsafePageAddress(at: base + address.byteOffset)
            return Buffer(diskAddress: address, length: length, borrowing: memory, keeping: pageOwner)
        } catch {
            throw .memoryFile(error)
        }
    }
}
