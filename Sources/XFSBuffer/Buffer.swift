import CXFSShims

/// A run of bytes at a disk address, shared through its target's cache: the `xfs_buf`.
///
/// A buffer is created once per cached block and reused by every lookup. Its state is
/// protected in two ways:
///
/// - the hold count and cache links belong to the target's cache (its lock);
/// - the bytes, the flags and the verifier belong to whoever holds the buffer's lock,
///   which `getBuffer` and `readBuffer` return already taken and `release` gives back.
///   (In a single-owner cache neither lock is taken: the owner serializes every use.)
///
/// The disk address, length and memory never change while the buffer is cached.
public final class Buffer: @unchecked Sendable {
    /// What is known about a buffer's bytes.
    public struct Flags: OptionSet, Sendable, Hashable {
        /// The bits.
        public var rawValue: UInt8
        /// Makes flags from bits.
        @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
        // Computed, not stored: a stored static is reached through an addressor call with a
        // once-check, on every buffer read.
        /// The bytes are valid: read from the device, or complete in memory.
        @inlinable public static var done: Flags { Flags(rawValue: 1 << 0) }
        /// The bytes changed and must be written (or, in memory, laundered).
        @inlinable public static var dirty: Flags { Flags(rawValue: 1 << 1) }
        /// The block was freed; the buffer leaves the cache at its last release.
        @inlinable public static var stale: Flags { Flags(rawValue: 1 << 2) }
        /// A verifier is attached (kept by `Buffer.verifier`, so that the hot read path
        /// tests one byte instead of copying an existential).
        @inlinable public static var verifierAttached: Flags { Flags(rawValue: 1 << 7) }
    }

    // Stored properties are laid out in declaration order. The ones a cache hit, a
    // transaction's join and log, and a commit's verification touch come first, so that
    // they share the object's first line or two (and one prefetch brings them); the LRU
    // links, the memory's owner and the verifier existential, which the hot paths leave
    // alone, come last.

    /// Where the buffer starts.
    public let diskAddress: DiskAddress
    /// The buffer's length in bytes.
    public let length: Int
    /// The buffer's first byte: its own allocation (file target) or a page of the memory
    /// file's window (memory target).
    @usableFromInline let memory: UnsafeMutableRawPointer
    /// How many users hold the buffer. Guarded by the cache lock.
    @exclusivity(unchecked) var holds = 0
    /// The buffer's flags. Guarded by the buffer lock.
    @exclusivity(unchecked) public internal(set) var flags: Flags = []
    /// Whether the buffer is in its cache's table. Guarded by the cache lock.
    @exclusivity(unchecked) var isCached = false
    /// Whether the buffer is on its cache's LRU list. Guarded by the cache lock.
    @exclusivity(unchecked) var isOnLRU = false
    /// Whether the buffer was got since it joined the LRU list (eviction's second chance).
    /// Guarded by the cache lock.
    @exclusivity(unchecked) var usedSinceQueued = false
    /// Whether `memory` was allocated for this buffer (and is freed with it).
    private let ownsMemory: Bool
    /// `sharedVerifier`, unretained, for `verifyStructure`. Guarded by the buffer lock.
    @exclusivity(unchecked) private var sharedVerifierReference: Unmanaged<BufferVerifierBox>?
    /// The buffer lock's word (see CXFSShims: 0 free, 1 taken, 2 taken with sleepers).
    private let lockWord: UnsafeMutablePointer<UInt32>
    /// LRU neighbours. Unowned: every buffer on the list is also in the table, which owns it,
    /// and leaves the list before the table. Guarded by the cache lock.
    @exclusivity(unchecked) var lruPrevious: Unmanaged<Buffer>?
    /// See `lruPrevious`.
    @exclusivity(unchecked) var lruNext: Unmanaged<Buffer>?
    /// What keeps borrowed memory alive (the memory file or partition), if any.
    private let memoryOwner: AnyObject?
    /// The verifier attached by the last read that named one. Guarded by the buffer lock.
    @exclusivity(unchecked) public var verifier: (any BufferVerifier)? {
        didSet {
            if verifier != nil { flags.insert(.verifierAttached) } else { flags.remove(.verifierAttached) }
            sharedVerifier = nil
            sharedVerifierReference = nil
        }
    }
    /// The box `attach(_:)` attached the verifier from, if it did. Guarded by the buffer lock.
    @exclusivity(unchecked) private var sharedVerifier: BufferVerifierBox?

    /// Attaches the verifier `box` holds, and the box: `verifyStructure` then calls the
    /// verifier in place (copying the existential out of `verifier` would retain and release
    /// its storage on every verification). The box is shared, so attaching allocates
    /// nothing. The caller holds the buffer.
    public func attach(_ box: BufferVerifierBox) {
        verifier = box.verifier
        sharedVerifier = box
        sharedVerifierReference = Unmanaged.passUnretained(box)
    }
    /// Whether `verifier` is set, readable without copying the existential. Guarded by the
    /// buffer lock.
    @inlinable public var hasVerifier: Bool { flags.contains(.verifierAttached) }

    /// A buffer over `length` bytes of its own, zeroed, in no target's cache: for blocks
    /// staged in memory before they are written (a rebuild formats whole new trees this way
    /// and writes them only once every one of them is ready).
    public init(diskAddress: DiskAddress, ownedLength length: Int) {
        self.diskAddress = diskAddress
        self.length = length
        // Cache-line aligned, not page aligned: nothing reads into it with O_DIRECT, and a
        // page-aligned block costs a page more of heap (the allocator frees the leading
        // fragment, which stays resident), twice a staged tree's size in all.
        self.memory = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 64)
        self.memory.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        self.ownsMemory = true
        self.memoryOwner = nil
        self.lockWord = .allocate(capacity: 1)
        self.lockWord.initialize(to: 0)
    }

    /// A buffer over memory owned by `owner` (a memory file's page), which the buffer
    /// keeps alive.
    init(diskAddress: DiskAddress, length: Int, borrowing memory: UnsafeMutableRawPointer, keeping owner: AnyObject) {
        self.diskAddress = diskAddress
        self.length = length
        self.memory = memory
        self.ownsMemory = false
        self.memoryOwner = owner
        self.lockWord = .allocate(capacity: 1)
        self.lockWord.initialize(to: 0)
    }

    deinit {
        assert(holds == 0, "buffer at \(diskAddress) freed with \(holds) holds")
        if ownsMemory { memory.deallocate() }
        lockWord.deallocate()
    }

    // MARK: Flags

    /// Whether the bytes are valid.
    @inlinable public var isDone: Bool { flags.contains(.done) }
    /// Whether the bytes changed since they were last written or laundered.
    @inlinable public var isDirty: Bool { flags.contains(.dirty) }
    /// Whether the block was freed.
    @inlinable public var isStale: Bool { flags.contains(.stale) }

    /// Records that the bytes changed. The caller holds the buffer.
    public func markDirty() {
        flags.insert(.dirty)
        flags.insert(.done)
    }

    /// Records that the bytes were written or laundered. The caller holds the buffer.
    public func clearDirty() {
        flags.remove(.dirty)
    }

    /// Records that the bytes are valid. The caller holds the buffer.
    public func markDone() {
        flags.insert(.done)
    }

    /// Records that the block was freed: its bytes are no longer valid or dirty, and the
    /// buffer leaves the cache when its last holder releases it (a memory target then
    /// punches its page). The caller holds the buffer.
    public func markStale() {
        flags = flags.intersection(.verifierAttached).union(.stale)
    }

    /// Takes back `markStale` and `markDirty`: the bytes are valid and unchanged again (a
    /// cancelled transaction that put a freed block's bytes back). The caller holds the
    /// buffer.
    public func markRestored() {
        flags = flags.intersection(.verifierAttached).union(.done)
    }

    /// How many users hold the buffer. A snapshot: exact only while no other thread gets
    /// or releases this buffer.
    public var holdCount: Int { holds }

    // MARK: Bytes

    /// Calls `body` with the buffer's bytes. The caller holds the buffer.
    @inlinable
    public func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: memory, count: length))
    }

    /// Calls `body` with the buffer's bytes, writable. The caller holds the buffer's lock
    /// (and marks it dirty if it changes them).
    @inlinable
    public func withUnsafeMutableBytes<Result>(_ body: (UnsafeMutableRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeMutableRawBufferPointer(start: memory, count: length))
    }

    /// The buffer's bytes, for hot paths that cannot afford a closure.
    ///
    /// - Warning: valid only while the caller holds the buffer: after `release` the memory
    ///   may be freed (file target) or punched and reused (memory target).
    @inlinable
    public var unsafeMutableBytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: memory, count: length)
    }

    // MARK: Lock

    // The buffer lock's word changes only under the cache lock (see CXFSShims' guarded
    // words): taking a free buffer lock inside the lookup's critical section is a plain
    // store, and a thread that finds it taken sleeps on the word outside that section.

    /// With the cache lock held: takes the buffer lock if it is free.
    @inline(__always)
    func tryLockGuarded() -> Bool { cxfs_guarded_try(lockWord) != 0 }

    /// With the cache lock held: records a sleeper before `sleepUntilUnlocked`.
    @inline(__always)
    func markSleeperGuarded() { cxfs_guarded_mark_sleeper(lockWord) }

    /// Without the cache lock: sleeps while the buffer lock is taken (may return early;
    /// the caller re-checks under the cache lock).
    func sleepUntilUnlocked() { cxfs_guarded_sleep(lockWord) }

    /// With the cache lock held: frees the buffer lock; true when sleepers must be woken.
    @inline(__always)
    func unlockGuarded() -> Bool { cxfs_guarded_release(lockWord) != 0 }

    /// Wakes the threads sleeping on the buffer lock (after the cache lock is dropped).
    func wakeSleepers() { cxfs_guarded_wake(lockWord) }

    // MARK: Verification

    /// Runs the attached verifier's structure check (as an in-memory transaction does at
    /// commit). Passes when no verifier is attached.
    public func verifyStructure() throws(BufferError) {
        if let box = sharedVerifierReference {
            let outcome = box._withUnsafeGuaranteedRef { box in
                Result { () throws(VerificationFailure) in try box.verifier.verifyStructure(self) }
            }
            if case .failure(let failure) = outcome { throw .verificationFailed(failure) }
            return
        }
        guard let verifier else { return }
        do {
            try verifier.verifyStructure(self)
        } catch {
            throw .verificationFailed(error)
        }
    }
}

extension Buffer: CustomStringConvertible {
    /// "buffer daddr 0x10 (4096 bytes, done dirty)".
    public var description: String {
        var names: [String] = []
        if isDone { names.append("done") }
        if isDirty { names.append("dirty") }
        if isStale { names.append("stale") }
        return "buffer \(diskAddress) (\(length) bytes\(names.isEmpty ? "" : ", " + names.joined(separator: " ")))"
    }
}
