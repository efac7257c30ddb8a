/// A source of buffers with a cache of its own: a disk image or device (`FileTarget`) or
/// a memory file (`MemoryTarget`). The `xfs_buftarg`.
///
/// Every method may be called from any thread. `getBuffer` and `readBuffer` return the
/// buffer held and locked; give it back with `release`.
public protocol BufferTarget: AnyObject, Sendable {
    /// The target's buffer cache.
    var cache: BufferCache { get }

    /// The buffer at `address`, `length` bytes long, held and locked, without reading it:
    /// for blocks about to be initialized. A new file-target buffer is zeroed; a new
    /// memory-target buffer shows the page as it is (zeros for a hole).
    ///
    /// - Throws: `BufferError.lengthMismatch` when the cache holds the address with another
    ///   length, or a target-specific error (see each target).
    func getBuffer(at address: DiskAddress, length: Int) throws(BufferError) -> Buffer

    /// The buffer at `address`, held and locked, with valid bytes: read (file target) or
    /// mapped (memory target) and passed through `verifier`'s read check the first time.
    /// The verifier stays attached to the buffer.
    ///
    /// - Throws: `BufferError.verificationFailed` naming the failed check (the buffer is
    ///   then released and marked stale, so the next read tries again), and the errors of
    ///   `getBuffer`.
    func readBuffer(at address: DiskAddress, length: Int, verifier: (any BufferVerifier)?) throws(BufferError) -> Buffer

    /// `getBuffer`, returning the buffer unretained: valid until the matching release,
    /// because the target's cache owns every buffer it holds. For layers that keep their
    /// own (unowned) record of held buffers, such as transactions.
    func getBufferUnretained(at address: DiskAddress, length: Int) throws(BufferError) -> Unmanaged<Buffer>

    /// `readBuffer`, returning the buffer unretained (see `getBufferUnretained`).
    func readBufferUnretained(at address: DiskAddress, length: Int,
                              verifier: (any BufferVerifier)?) throws(BufferError) -> Unmanaged<Buffer>
}

extension BufferTarget {
    /// Defaults: through the retaining calls.
    public func getBufferUnretained(at address: DiskAddress, length: Int) throws(BufferError) -> Unmanaged<Buffer> {
        Unmanaged.passUnretained(try getBuffer(at: address, length: length))
    }

    /// `readBuffer`, returning the buffer unretained: valid while the caller holds it.
    public func readBufferUnretained(at address: DiskAddress, length: Int,
                                     verifier: (any BufferVerifier)?) throws(BufferError) -> Unmanaged<Buffer> {
        Unmanaged.passUnretained(try readBuffer(at: address, length: length, verifier: verifier))
    }

    /// Unlocks the buffer and drops the caller's hold. The last release of a stale buffer
    /// removes it from the cache (and, on a memory target, punches its page). Every target
    /// releases through its cache, so layers that keep the cache (transactions) may call
    /// `BufferCache.release(_:)` directly.
    @inline(__always)
    public func release(_ buffer: Buffer) {
        cache.release(buffer)
    }

    /// `release` of every buffer in `buffers`, in one pass (one cache-lock acquisition).
    public func releaseAll(_ buffers: UnsafeBufferPointer<Unmanaged<Buffer>>) {
        cache.releaseAll(buffers)
    }

    /// Adds a hold to a buffer the caller already holds, without locking it (`xfs_buf_hold`).
    /// Drop it with `releaseHold(_:)`.
    public func hold(_ buffer: Buffer) {
        cache.addHold(buffer)
    }

    /// Drops a hold without touching the lock (`xfs_buf_rele`).
    public func releaseHold(_ buffer: Buffer) {
        cache.release(buffer, unlocking: false)
    }
}
