import XFSBuffer

/// A set of buffers joined for one operation, and the ranges changed in them (the
/// `xfs_trans` of an in-memory btree).
///
/// A transaction is reusable: `commit` and `cancel` leave it empty and ready for the next
/// operation, so a loop that stashes one record per transaction allocates nothing.
///
/// Thread safety: not `Sendable`; a transaction belongs to the thread running its operation.
public final class Transaction {
    /// One joined buffer. Trivially copyable: the list of items is moved and scanned with
    /// plain memory operations, and no reference count changes per join or release.
    @usableFromInline
    struct Item {
        /// The buffer, held and locked by this transaction. Unretained: a held buffer stays
        /// in its target's cache, whose table owns it, until its last release (which this
        /// transaction does last).
        @usableFromInline let buffer: Unmanaged<Buffer>
        /// The buffer's disk address in sectors, so that lookups by address do not touch
        /// the buffer object.
        @usableFromInline let sectors: Int64
        /// Index into `targets` of the target it came from, to release it there.
        @usableFromInline let target: Int32
        /// Index into `beforeImages` of the bytes as they were when first changed, or -1.
        @usableFromInline var beforeImage: Int32
        /// How many times the operation got the buffer through this transaction and has not
        /// released it yet (the kernel's `bli_recur` plus one): a btree may hold one block
        /// through two cursors.
        @usableFromInline var references: Int32
        /// Whether the transaction changed the buffer (logged a range, or invalidated it).
        @usableFromInline var isLogged: Bool

        @usableFromInline
        init(buffer: Unmanaged<Buffer>, sectors: Int64, target: Int) {
            self.buffer = buffer
            self.sectors = sectors
            self.target = Int32(truncatingIfNeeded: target)
            self.beforeImage = -1
            self.references = 1
            self.isLogged = false
        }
    }

    @usableFromInline @exclusivity(unchecked) var items = JoinedItems(capacity: 16)
    /// The targets of the joined buffers, each retained once for as long as the transaction
    /// holds buffers of it; `targetIDs` is parallel, for lookups. Cleared when the
    /// transaction ends, except that a transaction that used one target keeps it for the
    /// next one (a loop of one operation per transaction on one tree then retains nothing
    /// per operation); it is dropped when an empty transaction joins another target.
    /// Manually managed storage, so that a target is called in place, without retaining it
    /// or the array holding it.
    @usableFromInline let targets: UnsafeMutablePointer<any BufferTarget>
    /// Each target's cache, parallel to `targets` and unretained (the target keeps it):
    /// buffers go back through it, with no existential to copy per release.
    @usableFromInline let caches: UnsafeMutablePointer<Unmanaged<BufferCache>>
    @usableFromInline @exclusivity(unchecked) var targetIDs: [ObjectIdentifier] = []
    /// The most targets one transaction may join buffers from.
    @usableFromInline static let maximumTargets = 8
    /// Saved pages for undoable transactions, reused across transactions.
    @usableFromInline @exclusivity(unchecked) var beforeImages: [[UInt8]] = []
    @usableFromInline @exclusivity(unchecked) var beforeImagesUsed = 0

    /// Whether `cancel` restores the bytes of every buffer changed through this transaction.
    public let keepsBeforeImages: Bool

    /// An empty transaction. With `keepingBeforeImages`, every buffer is copied aside the
    /// first time it is changed, so that `cancel` can put it back.
    public init(keepingBeforeImages: Bool = false) {
        keepsBeforeImages = keepingBeforeImages
        targets = .allocate(capacity: Transaction.maximumTargets)
        caches = .allocate(capacity: Transaction.maximumTargets)
    }

    deinit {
        precondition(items.isEmpty, "transaction deinitialized with \(items.count) buffers joined; commit or cancel it")
        targets.deinitialize(count: targetIDs.count)
        targets.deallocate()
        caches.deallocate()
        items.deallocate()
    }

    /// The number of buffers joined.
    public var joinedCount: Int { items.count }

    /// Whether any joined buffer was changed.
    public var isDirty: Bool { items.contains { $0.isLogged } }

    /// The index of `target` in `targets`, or -1.
    @inlinable @inline(__always)
    func targetIndex(_ target: ObjectIdentifier) -> Int {
        var t = 0
        while t < targetIDs.count {
            if targetIDs[t] == target { return t }
            t += 1
        }
        return -1
    }

    /// The index of `target` in `targets`, adding it when missing.
    @usableFromInline
    func addTarget(_ target: any BufferTarget) -> Int {
        let t = targetIndex(ObjectIdentifier(target))
        if t >= 0 { return t }
        if items.isEmpty && !targetIDs.isEmpty { dropTargets() } // the last transaction's
        precondition(targetIDs.count < Transaction.maximumTargets,
                     "a transaction joins buffers of at most \(Transaction.maximumTargets) targets")
        (targets + targetIDs.count).initialize(to: target)
        (caches + targetIDs.count).initialize(to: Unmanaged.passUnretained(target.cache))
        targetIDs.append(ObjectIdentifier(target))
        return targetIDs.count - 1
    }

    @inlinable @inline(__always)
    func index(of buffer: Unmanaged<Buffer>) -> Int? {
        items.index(of: buffer)
    }

    @inlinable @inline(__always)
    func index(of buffer: Buffer) -> Int? {
        index(of: Unmanaged.passUnretained(buffer))
    }

    @inlinable @inline(__always)
    func index(of address: DiskAddress, inTarget target: Int) -> Int? {
        items.index(ofSectors: address.sectors, target: Int32(truncatingIfNeeded: target))
    }

    /// The buffer at `address` through this transaction, without reading it: the joined
    /// one if this transaction already holds it (not locked twice), otherwise got from
    /// `target`, held, locked and joined.
    @inlinable
    public func getBuffer<Target: BufferTarget>(_ target: Target, at address: DiskAddress, length: Int) throws(BufferError) -> Buffer {
        try getBufferUnretained(target, at: address, length: length).takeUnretainedValue()
    }

    /// `getBuffer`, returning the buffer unretained: valid while the transaction holds it.
    @inlinable
    public func getBufferUnretained<Target: BufferTarget>(
        _ target: Target, at address: DiskAddress, length: Int
    ) throws(BufferError) -> Unmanaged<Buffer> {
        let t = targetIndex(ObjectIdentifier(target))
        if t >= 0, let i = index(of: address, inTarget: t) {
            items[i].references += 1
            return items[i].buffer
        }
        let buffer = try target.getBufferUnretained(at: address, length: length)
        items.append(Item(buffer: buffer, sectors: address.sectors, target: t >= 0 ? t : addTarget(target)))
        return buffer
    }

    /// The buffer at `address` through this transaction, read and verified: the joined one
    /// if this transaction already holds it, otherwise read from `target` and joined.
    @inlinable
    public func readBuffer<Target: BufferTarget>(_ target: Target, at address: DiskAddress, length: Int,
                           verifier: (any BufferVerifier)?) throws(BufferError) -> Buffer {
        try readBufferUnretained(target, at: address, length: length, verifier: verifier).takeUnretainedValue()
    }

    /// `readBuffer`, returning the buffer unretained: valid while the transaction holds it.
    @inlinable
    public func readBufferUnretained<Target: BufferTarget>(
        _ target: Target, at address: DiskAddress, length: Int, verifier: (any BufferVerifier)?
    ) throws(BufferError) -> Unmanaged<Buffer> {
        let t = targetIndex(ObjectIdentifier(target))
        if t >= 0, let i = index(of: address, inTarget: t) {
            items[i].references += 1
            return items[i].buffer
        }
        let buffer = try target.readBufferUnretained(at: address, length: length, verifier: verifier)
        items.append(Item(buffer: buffer, sectors: address.sectors, target: t >= 0 ? t : addTarget(target)))
        return buffer
    }

    /// Joins a buffer the caller got and locked from `target`; the transaction now releases
    /// it. Joining a buffer twice is a no-op.
    public func join(_ buffer: Buffer, from target: any BufferTarget) {
        guard index(of: buffer) == nil else { return }
        items.append(Item(buffer: Unmanaged.passUnretained(buffer), sectors: buffer.diskAddress.sectors,
                          target: addTarget(target)))
    }

    /// Records that the operation is about to change `buffer`: an undoable transaction
    /// copies the bytes aside the first time. Call before the first change when
    /// `keepsBeforeImages`; `log` calls it too, for callers that change then log.
    ///
    /// - Precondition: the buffer is joined.
    @inlinable
    public func willChange(_ buffer: Buffer) {
        willChange(unretained: Unmanaged.passUnretained(buffer))
    }

    /// `willChange` for a buffer this transaction returned unretained.
    @inlinable
    public func willChange(unretained buffer: Unmanaged<Buffer>) {
        guard keepsBeforeImages else { return }
        guard let i = index(of: buffer) else { preconditionFailure("a buffer is not joined to this transaction") }
        saveBeforeImage(at: i)
    }

    @usableFromInline
    func saveBeforeImage(at i: Int) {
        guard items[i].beforeImage < 0 else { return }
        let buffer = items[i].buffer.takeUnretainedValue()
        if beforeImagesUsed == beforeImages.count { beforeImages.append([]) }
        buffer.withUnsafeBytes { bytes in
            beforeImages[beforeImagesUsed].removeAll(keepingCapacity: true)
            beforeImages[beforeImagesUsed].append(contentsOf: bytes)
        }
        items[i].beforeImage = Int32(beforeImagesUsed)
        beforeImagesUsed += 1
    }

    /// Logs a changed byte range of a joined buffer: the buffer becomes dirty and is
    /// verified when the transaction commits.
    ///
    /// - Precondition: the buffer is joined and the range lies inside it.
    @inlinable
    public func log(_ buffer: Buffer, range: Range<Int>) {
        log(unretained: Unmanaged.passUnretained(buffer), range: range)
    }

    /// `log` for a buffer this transaction returned unretained.
    @inlinable
    public func log(unretained buffer: Unmanaged<Buffer>, range: Range<Int>) {
        guard let i = index(of: buffer) else { preconditionFailure("a buffer is not joined to this transaction") }
        buffer._withUnsafeGuaranteedRef { buffer in
            precondition(range.lowerBound >= 0 && range.upperBound <= buffer.length,
                         "logged range \(range) is outside \(buffer)")
            buffer.markDirty()
        }
        if keepsBeforeImages { saveBeforeImage(at: i) }
        items[i].isLogged = true
    }

    /// Gives back one reference to a joined buffer (`xfs_trans_brelse`): when the last
    /// reference goes, a buffer this transaction has not changed is released at once; a
    /// changed one stays joined until the transaction ends.
    @inlinable
    public func release(_ buffer: Buffer) {
        release(unretained: Unmanaged.passUnretained(buffer))
    }

    /// `release` for a buffer this transaction returned unretained.
    @inlinable
    public func release(unretained buffer: Unmanaged<Buffer>) {
        guard let i = index(of: buffer) else { return }
        if items[i].references > 0 { items[i].references -= 1 }
        guard items[i].references == 0, !items[i].isLogged else { return }
        let target = items[i].target
        items.remove(at: i)
        let cache = caches[Int(target)]
        buffer._withUnsafeGuaranteedRef { buffer in cache._withUnsafeGuaranteedRef { $0.release(buffer) } }
    }

    /// Marks a joined buffer's block as freed (`xfs_trans_binval`): it is stale, and its
    /// page is punched when the transaction commits.
    ///
    /// - Precondition: the buffer is joined.
    public func invalidate(_ buffer: Buffer) {
        invalidate(unretained: Unmanaged.passUnretained(buffer))
    }

    /// `invalidate` for a buffer this transaction returned unretained.
    public func invalidate(unretained buffer: Unmanaged<Buffer>) {
        guard let i = index(of: buffer) else { preconditionFailure("a buffer is not joined to this transaction") }
        if keepsBeforeImages { saveBeforeImage(at: i) }
        items[i].isLogged = true
        buffer._withUnsafeGuaranteedRef { $0.markStale() }
    }

    /// Ends the transaction by laundering (`xfbtree_trans_commit`): every buffer is
    /// detached and released; each dirty one first passes its verifier's structure check,
    /// and stale ones have their pages punched by their target as they leave the cache.
    ///
    /// - Throws: the first verification failure, after every buffer has been detached.
    public func commit() throws(BufferError) {
        var firstFailure: BufferError?
        var i = 0
        while i < items.count {
            let item = items[i]
            i += 1
            guard item.isLogged else { continue }
            item.buffer._withUnsafeGuaranteedRef { buffer in
                if buffer.isDirty && !buffer.isStale {
                    do throws(BufferError) {
                        try buffer.verifyStructure()
                    } catch {
                        if firstFailure == nil { firstFailure = error }
                    }
                    buffer.clearDirty()
                }
            }
        }
        releaseAllItems()
        if let firstFailure { throw firstFailure }
    }

    /// Ends the transaction without keeping its changes: an undoable transaction puts back
    /// the bytes of every buffer it changed (a freed block becomes live again); then every
    /// buffer is released unverified. Without before-images nothing is rolled back, as in
    /// the kernel, and the caller must treat the structure as lost.
    public func cancel() {
        var i = 0
        while i < items.count {
            let item = items[i]
            if item.beforeImage >= 0 {
                item.buffer._withUnsafeGuaranteedRef { $0.restore(beforeImages[Int(item.beforeImage)]) }
            }
            i += 1
        }
        releaseAllItems()
    }

    /// Releases every joined buffer to its target, in join order, one batch per target,
    /// and leaves the transaction empty.
    private func releaseAllItems() {
        var t = 0
        while t < targetIDs.count {
            let cache = caches[t]
            items.withBuffers(ofTarget: Int32(truncatingIfNeeded: t)) { batch in
                cache._withUnsafeGuaranteedRef { $0.releaseAll(batch) }
            }
            t += 1
        }
        items.removeAll()
        if targetIDs.count > 1 { dropTargets() }
        beforeImagesUsed = 0
    }

    /// Forgets every target (and releases them); no buffer of theirs may be joined.
    private func dropTargets() {
        assert(items.isEmpty, "targets dropped while buffers are joined")
        targets.deinitialize(count: targetIDs.count)
        targetIDs.removeAll(keepingCapacity: true)
    }
}

extension Buffer {
    /// Puts back saved bytes and clears the dirty and stale flags.
    fileprivate func restore(_ bytes: [UInt8]) {
        withUnsafeMutableBytes { destination in
            bytes.withUnsafeBytes { destination.copyMemory(from: $0) }
        }
        markRestored()
    }
}
