import CXFSShims

/// Counters and sizes of a buffer cache, as of one moment.
public struct BufferCacheStatistics: Sendable, Equatable {
    /// Lookups that found their buffer cached.
    public var hits = 0
    /// Lookups that created a buffer.
    public var misses = 0
    /// Clean, unheld buffers dropped to stay under the memory cap.
    public var evictions = 0
    /// Stale buffers dropped at their last release.
    public var staleDrops = 0
    /// Buffers in the cache.
    public var cachedBuffers = 0
    /// Bytes of the buffers in the cache.
    public var cachedBytes = 0
    /// Buffers that could be evicted now: cached, unheld and clean.
    public var evictableBuffers = 0
}

/// The buffers of one target, found by disk address: the per-target buffer hash of
/// Linux 6.9, with a bounded LRU of buffers nobody holds.
///
/// Thread-safe (unless made with `shared: false` for a single owner): every operation takes
/// the cache's one lock, briefly, and never blocks on a buffer lock while holding it. (The
/// lock is the CXFSShims futex lock rather than `Synchronization.Mutex`: it is as fast, and
/// ThreadSanitizer can see it, which it cannot see through the standard library's
/// uninstrumented Mutex on Linux.) What the cache guarantees:
///
/// - one buffer per disk address; a second lookup with another length is an error;
/// - lookup-or-insert is atomic: of two threads creating the same buffer, the loser drops
///   its copy and takes the winner's;
/// - when the cached bytes exceed `capacity`, unheld clean buffers are evicted, least
///   recently released first, except that one used again since it was queued gets a second
///   chance (held and dirty buffers never are);
/// - a stale buffer leaves the cache at its last release.
///
/// The LRU list is lazy, as the kernel's `b_lru` is: a buffer joins it at its first clean
/// release and stays on it while it is got and released again, so a cache hit touches no
/// other buffer. Only eviction reorders the list: it unlinks the held and dirty buffers it
/// meets (they rejoin at their next clean release), moves the ones used since they were
/// queued to the tail, and evicts the first that is neither.
public final class BufferCache: @unchecked Sendable {
    /// The memory cap in bytes (eviction starts above it).
    public let capacity: Int
    /// Whether several threads may use the cache at once, so that it takes its lock and
    /// locks the buffers it hands out. A cache made with `shared: false` belongs to a caller
    /// that serializes every use of it (and of its buffers) itself, such as an in-memory
    /// btree used under its owner's lock: it takes no lock of its own and locks no buffer
    /// (the owner's serialization is the lock, and a second get of a held buffer cannot
    /// deadlock).
    public let isShared: Bool

    /// Everything the cache lock guards.
    struct State {
        /// Every cached buffer, by disk address.
        var table = Table()
        /// The buffer queued longest ago (see the type's note on the lazy list). Unowned,
        /// like the buffers' own links: every buffer on the list is owned by `table`.
        var lruHead: Unmanaged<Buffer>?
        /// The buffer queued last.
        var lruTail: Unmanaged<Buffer>?
        /// Counters.
        var statistics = BufferCacheStatistics()
    }

    /// The cache's state; only `withLock` touches it.
    @exclusivity(unchecked) private var state: State
    /// The word of the lock guarding `state` (see CXFSShims).
    private let lockWord: UnsafeMutablePointer<UInt32>

    /// What the target does with a stale buffer leaving the cache (a memory target punches
    /// its page). Runs inside the lock, so no new buffer at the same address can appear
    /// before it finishes.
    private let dropStale: @Sendable (Buffer) -> Void

    /// An empty cache that evicts above `capacity` bytes, calling `dropStale` for each
    /// stale buffer at its last release.
    public init(capacity: Int, shared: Bool = true, dropStale: @escaping @Sendable (Buffer) -> Void = { _ in }) {
        precondition(capacity >= 0, "a cache capacity cannot be negative (\(capacity))")
        self.capacity = capacity
        self.isShared = shared
        self.state = State()
        self.dropStale = dropStale
        self.lockWord = .allocate(capacity: 1)
        self.lockWord.initialize(to: 0)
    }

    /// An empty cache whose buffers sit at multiples of `sectorsPerBlock` (a power of two)
    /// numbered densely from 0, such as a memory target's pages: buffers are found through
    /// a page table indexed by block number instead of a hash. Addresses that are not
    /// multiples of `sectorsPerBlock` are never cached.
    public convenience init(capacity: Int, denseSectorsPerBlock sectorsPerBlock: Int, shared: Bool = true,
                            dropStale: @escaping @Sendable (Buffer) -> Void = { _ in }) {
        self.init(capacity: capacity, shared: shared, dropStale: dropStale)
        state.table = Table(denseSectorsPerSlot: sectorsPerBlock)
    }

    deinit {
        state.table.releaseAll()
        lockWord.deallocate()
    }

    /// Runs `body` on the state with the cache lock held (when the cache is shared).
    @inline(__always)
    private func withLock<Result>(_ body: (inout State) -> Result) -> Result {
        if isShared { cxfs_lock_acquire(lockWord) }
        defer { if isShared { cxfs_lock_release(lockWord) } }
        return body(&state)
    }

    /// What a lookup found.
    enum Lookup {
        /// The buffer, held; `locked` tells whether its lock was taken too. Unretained: the
        /// table owns it, and a held buffer stays in the table.
        case held(Unmanaged<Buffer>, locked: Bool)
        /// A buffer with another length is cached at the address.
        case lengthMismatch(cachedLength: Int)
        /// Nothing is cached at the address.
        case missing
    }

    /// Returns the buffer at `address`, held and locked, calling `make` (outside the
    /// lock) to create it when it is not cached.
    ///
    /// A stale buffer found here is being reused for a new block: its flags and verifier
    /// are cleared, as the kernel does.
    ///
    /// The buffer comes back unretained: the cache's table owns it and keeps it while it is
    /// held, so it is valid until the caller's matching `release`.
    @inline(__always)
    func get(
        _ address: DiskAddress, length: Int, make: () throws(BufferError) -> Buffer
    ) throws(BufferError) -> (buffer: Unmanaged<Buffer>, created: Bool) {
        if let buffer = try getCached(address, length: length) { return (buffer, false) }
        return try insert(address, length: length, make: make)
    }

    /// The hit path of `get`: the cached buffer at `address`, held and locked, or nil when
    /// nothing is cached there (the caller then creates it and calls `get`).
    @inline(__always)
    func getCached(_ address: DiskAddress, length: Int) throws(BufferError) -> Unmanaged<Buffer>? {
        if isShared { cxfs_lock_acquire(lockWord) }
        let found = state.holdCached(address, length: length, locking: isShared)
        if isShared { cxfs_lock_release(lockWord) }
        switch found {
        case let .held(buffer, locked):
            return lockFound(buffer, locked: locked)
        case let .lengthMismatch(cachedLength):
            throw .lengthMismatch(address: address, cachedLength: cachedLength, requestedLength: length)
        case .missing:
            return nil
        }
    }

    /// Asks the processor for the buffer cached at `address` (the fields a `get` and a
    /// release touch), a hint only. A single-owner cache looks it up; a shared one does
    /// nothing, since its table may only be read under its lock.
    @inline(__always)
    func prefetchCached(_ address: DiskAddress) {
        guard !isShared, let found = state.table.findUnretained(address) else { return }
        // The fields those paths use are declared first (see `Buffer`): with the object's
        // 16-byte header they fill its first 64 bytes, which span at most two lines.
        let object = UnsafeRawPointer(found.toOpaque())
        cxfs_prefetch_for_write(object)
        cxfs_prefetch_for_write(object + 63)
    }

    /// The miss path: create, then insert unless another thread won the race.
    @inline(never)
    private func insert(
        _ address: DiskAddress, length: Int, make: () throws(BufferError) -> Buffer
    ) throws(BufferError) -> (buffer: Unmanaged<Buffer>, created: Bool) {
        let fresh = try make()
        assert(fresh.diskAddress == address && fresh.length == length)
        let found: Lookup = withLock { state in
            let existing = state.holdCached(address, length: length, locking: isShared)
            guard case .missing = existing else { return existing }
            if isShared {
                let taken = fresh.tryLockGuarded()
                assert(taken, "a new buffer's lock is free")
            }
            fresh.holds = 1
            fresh.isCached = true
            state.table.insert(fresh)
            state.statistics.misses += 1
            state.statistics.cachedBuffers += 1
            state.statistics.cachedBytes += length
            return .held(Unmanaged.passUnretained(fresh), locked: true)
        }
        switch found {
        case let .held(buffer, locked):
            if buffer.toOpaque() == Unmanaged.passUnretained(fresh).toOpaque() { return (buffer, true) }
            return (lockFound(buffer, locked: locked), false) // lost the race: take the winner's
        case let .lengthMismatch(cachedLength):
            throw .lengthMismatch(address: address, cachedLength: cachedLength, requestedLength: length)
        case .missing:
            preconditionFailure("lookup-or-insert of \(address) inserted nothing")
        }
    }

    /// Finishes a hit: takes the lock if the cache-lock section could not, and resets a stale
    /// buffer that is being reused.
    @inline(__always)
    private func lockFound(_ found: Unmanaged<Buffer>, locked: Bool) -> Unmanaged<Buffer> {
        found._withUnsafeGuaranteedRef { buffer in
            if !locked { waitForLock(buffer) }
            if buffer.flags.contains(.stale) {
                buffer.flags = []
                buffer.verifier = nil
            }
        }
        return found
    }

    /// Sleeps until the held buffer's lock is free, then takes it.
    @inline(never)
    private func waitForLock(_ buffer: Buffer) {
        while true {
            let taken = withLock { _ in
                if buffer.tryLockGuarded() { return true }
                buffer.markSleeperGuarded()
                return false
            }
            if taken { return }
            buffer.sleepUntilUnlocked()
        }
    }

    /// Unlocks the buffer (when `unlocking`) and drops one hold. At the last hold a stale
    /// buffer leaves the cache (after `dropStale`), a clean one becomes evictable (joining
    /// the LRU list unless it is on it), and a dirty one stays cached but unevictable.
    @inline(__always)
    func release(_ buffer: Buffer, unlocking: Bool) {
        let wake = withLock { state in releaseLocked(&state, buffer, unlocking: unlocking) }
        // A buffer with sleepers is still held by them, so it is still cached and alive.
        if wake { buffer.wakeSleepers() }
    }

    /// Unlocks the buffer and drops the caller's hold: what every target's `release` does.
    /// At the last hold a stale buffer leaves the cache (a memory target's page is
    /// punched), and a clean one becomes evictable.
    @inline(__always)
    public func release(_ buffer: Buffer) {
        release(buffer, unlocking: true)
    }

    /// Unlocks and drops one hold of each buffer, under one acquisition of the cache lock:
    /// `release(_:)` for a batch (a transaction's commit).
    public func releaseAll(_ buffers: UnsafeBufferPointer<Unmanaged<Buffer>>) {
        guard !buffers.isEmpty else { return }
        // Buffers whose lock has sleepers; woken after the cache lock is dropped (they are
        // still held by the sleepers, so still alive then).
        var toWake: [Unmanaged<Buffer>] = []
        withLock { state in
            for unmanaged in buffers {
                let wake = unmanaged._withUnsafeGuaranteedRef { releaseLocked(&state, $0, unlocking: true) }
                if wake { toWake.append(unmanaged) }
            }
        }
        for unmanaged in toWake { unmanaged._withUnsafeGuaranteedRef { $0.wakeSleepers() } }
    }

    /// The body of `release` with the cache lock held; true when the buffer lock's sleepers
    /// must be woken. The buffer may be freed by this call (a stale buffer's last release):
    /// the caller touches it afterwards only when the result is true.
    @inline(__always)
    private func releaseLocked(_ state: inout State, _ buffer: Buffer, unlocking: Bool) -> Bool {
        precondition(buffer.holds > 0, "release of \(buffer.diskAddress), which nobody holds")
        assert(buffer.isCached, "release of \(buffer.diskAddress), which is not cached")
        let wake = unlocking && isShared && buffer.unlockGuarded()
        buffer.holds -= 1
        guard buffer.holds == 0 else { return wake }
        // Nobody else holds the buffer, so nobody can change its flags now; their last
        // writes happened before their own release took this lock.
        let flags = buffer.flags
        if flags.contains(.stale) {
            dropStale(buffer)
            state.statistics.staleDrops += 1
            state.drop(buffer, evictable: false)
        } else if !flags.contains(.dirty) {
            state.statistics.evictableBuffers += 1
            if !buffer.isOnLRU { state.appendToLRU(buffer) }
            if state.statistics.cachedBytes > capacity { state.evict(above: capacity) }
        }
        return wake
    }

    /// Adds a hold to a buffer the caller already holds (no lock is taken).
    func addHold(_ buffer: Buffer) {
        withLock { _ in
            precondition(buffer.holds > 0, "extra hold on \(buffer.diskAddress), which nobody holds")
            buffer.holds += 1
        }
    }

    /// Evicts every buffer nobody holds that is clean (the LRU list, whole).
    public func purge() {
        withLock { $0.evict(above: 0) }
    }

    /// The cache's counters and sizes now.
    public var statistics: BufferCacheStatistics {
        withLock { $0.statistics }
    }

    /// Whether a buffer is cached at `address` (for tests and diagnostics).
    public func contains(_ address: DiskAddress) -> Bool {
        withLock { $0.table.find(address) != nil }
    }
}

extension BufferCache.State {
    /// Finds the buffer at `address` and adds a hold, taking its lock if it is free (when
    /// `locking`; otherwise reporting it taken). The LRU list is not touched: the buffer
    /// is only marked used, for eviction's second chance.
    @inline(__always)
    mutating func holdCached(_ address: DiskAddress, length: Int, locking: Bool) -> BufferCache.Lookup {
        guard let found = table.findUnretained(address) else { return .missing }
        return found._withUnsafeGuaranteedRef { buffer in
            guard buffer.length == length else { return .lengthMismatch(cachedLength: buffer.length) }
            if buffer.holds == 0 && !buffer.flags.contains(.dirty) { statistics.evictableBuffers -= 1 }
            buffer.holds += 1
            buffer.usedSinceQueued = true
            statistics.hits += 1
            return .held(found, locked: locking ? buffer.tryLockGuarded() : true)
        }
    }

    /// Appends a buffer to the LRU list (the tail: evicted last).
    @inline(__always)
    mutating func appendToLRU(_ buffer: Buffer) {
        assert(!buffer.isOnLRU)
        let unmanaged = Unmanaged.passUnretained(buffer)
        buffer.isOnLRU = true
        buffer.usedSinceQueued = false
        buffer.lruPrevious = lruTail
        buffer.lruNext = nil
        if let tail = lruTail { tail._withUnsafeGuaranteedRef { $0.lruNext = unmanaged } } else { lruHead = unmanaged }
        lruTail = unmanaged
    }

    /// Takes a buffer off the LRU list.
    @inline(__always)
    mutating func removeFromLRU(_ buffer: Buffer) {
        assert(buffer.isOnLRU)
        let previous = buffer.lruPrevious
        let next = buffer.lruNext
        if let previous { previous._withUnsafeGuaranteedRef { $0.lruNext = next } } else { lruHead = next }
        if let next { next._withUnsafeGuaranteedRef { $0.lruPrevious = previous } } else { lruTail = previous }
        buffer.lruPrevious = nil
        buffer.lruNext = nil
        buffer.isOnLRU = false
    }

    /// Removes a buffer from the cache (and the LRU list); `evictable` says whether it was
    /// counted as evictable. The table's reference goes last: the buffer may be freed by
    /// this call.
    mutating func drop(_ buffer: Buffer, evictable: Bool) {
        if buffer.isOnLRU { removeFromLRU(buffer) }
        if evictable { statistics.evictableBuffers -= 1 }
        buffer.isCached = false
        statistics.cachedBuffers -= 1
        statistics.cachedBytes -= buffer.length
        table.remove(buffer.diskAddress)
    }

    /// Evicts buffers from the head of the LRU list while the cache holds more than
    /// `limit` bytes. Held and dirty buffers met on the way leave the list; buffers used
    /// since they were queued go to the tail once. Every step unlinks a buffer or clears
    /// its mark, so the walk ends.
    mutating func evict(above limit: Int) {
        while statistics.cachedBytes > limit, let head = lruHead {
            let victim = head.takeUnretainedValue()
            if victim.holds > 0 || victim.flags.contains(.dirty) {
                removeFromLRU(victim)
            } else if victim.usedSinceQueued {
                removeFromLRU(victim)
                appendToLRU(victim)
            } else {
                statistics.evictions += 1
                drop(victim, evictable: true)
            }
        }
    }
}
