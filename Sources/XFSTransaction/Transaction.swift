import XFSBuffer

/// A set of buffers joined for one operation, and the ranges changed in them (the
/// `xfs_trans` of an in-memory btree).
///
/// A transaction is reusable: `commit` and `cancel` leave it empty and ready for the next
/// operation, so a loop that stashes one record per transaction allocates nothing.
public final class Transaction {
    /// One joined buffer.
    @usableFromInline
    struct Item {
        /// The buffer, held and locked by this transaction. Unowned: a held buffer stays in
        /// its target's cache, whose table owns it, until its last release (which this
        /// transaction does last), so the item needs no reference count of its own.
        @usableFromInline unowned(unsafe) let buffer: Buffer
        /// The target it came from, to release it there.
        @usableFromInline let target: any BufferTarget
        /// Whether the transaction changed the buffer (logged a range, or invalidated it).
        @usableFromInline var isLogged: Bool
        /// Index into `beforeImages` of the bytes as they were when first changed, or -1.
        @usableFromInline var beforeImage: Int
        /// How many times the operation got the buffer through this transaction and has not
        /// released it yet (the kernel's `bli_recur` plus one): a btree may hold one block
        /// through two cursors.
        @usableFromInline var references: Int

        @usableFromInline
        init(buffer: Buffer, target: any BufferTarget) {
            self.buffer = buffer
            self.target = target
            self.isLogged = false
            self.beforeImage = -1
            self.references = 1
        }
    }

    @usableFromInline @exclusivity(unchecked) var items: [Item] = []
    /// Saved pages for undoable transactions, reused across transactions.
    @usableFromInline var beforeImages: [[UInt8]] = []
    @usableFromInline var beforeImagesUsed = 0

    /// Whether `cancel` restores the bytes of every buffer changed through this transaction.
    public let keepsBeforeImages: Bool

    /// An empty transaction. With `keepingBeforeImages`, every buffer is copied aside the
    /// first time it is changed, so that `cancel` can put it back.
    public init(keepingBeforeImages: Bool = false) {
        keepsBeforeImages = keepingBeforeImages
        items.reserveCapacity(16)
    }

    deinit {
        precondition(items.isEmpty, "transaction deinitialized with \(items.count) buffers joined; commit or cancel it")
    }

    /// The number of buffers joined.
    public var joinedCount: Int { items.count }

    /// Whether any joined buffer was changed.
    public var isDirty: Bool { items.contains { $0.isLogged } }

    @inlinable
    func index(of buffer: Buffer) -> Int? {
        // Transactions hold a handful of buffers (a btree path and its siblings): a linear
        // scan beats any table.
        var i = items.count - 1
        while i >= 0 {
            if items[i].buffer === buffer { return i }
            i -= 1
        }
        return nil
    }

    @inlinable
    func index(of address: DiskAddress, in target: AnyObject) -> Int? {
        var i = items.count - 1
        while i >= 0 {
            if items[i].buffer.diskAddress == address && items[i].target === target { return i }
            i -= 1
        }
        return nil
    }

    /// The buffer at `address` through this transaction, without reading it: the joined
    /// one if this transaction already holds it (not locked twice), otherwise got from
    /// `target`, held, locked and joined.
    @inlinable
    public func getBuffer<Target: BufferTarget>(_ target: Target, at address: DiskAddress, length: Int) throws(BufferError) -> Buffer {
        if let i = index(of: address, in: target) {
            items[i].references += 1
            return items[i].buffer
        }
        let buffer = try target.getBuffer(at: address, length: length)
        items.append(Item(buffer: buffer, target: target))
        return buffer
    }

    /// The buffer at `address` through this transaction, read and verified: the joined one
    /// if this transaction already holds it, otherwise read from `target` and joined.
    @inlinable
    public func readBuffer<Target: BufferTarget>(_ target: Target, at address: DiskAddress, length: Int,
                           verifier: (any BufferVerifier)?) throws(BufferError) -> Buffer {
        if let i = index(of: address, in: target) {
            items[i].references += 1
            return items[i].buffer
        }
        let buffer = try target.readBuffer(at: address, length: length, verifier: verifier)
        items.append(Item(buffer: buffer, target: target))
        return buffer
    }

    /// Joins a buffer the caller got and locked from `target`; the transaction now releases
    /// it. Joining a buffer twice is a no-op.
    public func join(_ buffer: Buffer, from target: any BufferTarget) {
        guard index(of: buffer) == nil else { return }
        items.append(Item(buffer: buffer, target: target))
    }

    /// Records that the operation is about to change `buffer`: an undoable transaction
    /// copies the bytes aside the first time. Call before the first change when
    /// `keepsBeforeImages`; `log` calls it too, for callers that change then log.
    ///
    /// - Precondition: the buffer is joined.
    @inlinable
    public func willChange(_ buffer: Buffer) {
        guard keepsBeforeImages else { return }
        guard let i = index(of: buffer) else { preconditionFailure("\(buffer) is not joined to this transaction") }
        saveBeforeImage(at: i)
    }

    @usableFromInline
    func saveBeforeImage(at i: Int) {
        guard items[i].beforeImage < 0 else { return }
        let buffer = items[i].buffer
        if beforeImagesUsed == beforeImages.count { beforeImages.append([]) }
        buffer.withUnsafeBytes { bytes in
            beforeImages[beforeImagesUsed].removeAll(keepingCapacity: true)
            beforeImages[beforeImagesUsed].append(contentsOf: bytes)
        }
        items[i].beforeImage = beforeImagesUsed
        beforeImagesUsed += 1
    }

    /// Logs a changed byte range of a joined buffer: the buffer becomes dirty and is
    /// verified when the transaction commits.
    ///
    /// - Precondition: the buffer is joined and the range lies inside it.
    @inlinable
    public func log(_ buffer: Buffer, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= buffer.length,
                     "logged range \(range) is outside \(buffer)")
        guard let i = index(of: buffer) else { preconditionFailure("\(buffer) is not joined to this transaction") }
        if keepsBeforeImages { saveBeforeImage(at: i) }
        items[i].isLogged = true
        buffer.markDirty()
    }

    /// Gives back one reference to a joined buffer (`xfs_trans_brelse`): when the last
    /// reference goes, a buffer this transaction has not changed is released at once; a
    /// changed one stays joined until the transaction ends.
    @inlinable
    public func release(_ buffer: Buffer) {
        guard let i = index(of: buffer) else { return }
        if items[i].references > 0 { items[i].references -= 1 }
        guard items[i].references == 0, !items[i].isLogged else { return }
        let item = items.remove(at: i)
        item.target.release(item.buffer)
    }

    /// Marks a joined buffer's block as freed (`xfs_trans_binval`): it is stale, and its
    /// page is punched when the transaction commits.
    ///
    /// - Precondition: the buffer is joined.
    public func invalidate(_ buffer: Buffer) {
        guard let i = index(of: buffer) else { preconditionFailure("\(buffer) is not joined to this transaction") }
        if keepsBeforeImages { saveBeforeImage(at: i) }
        items[i].isLogged = true
        buffer.markStale()
    }

    /// Ends the transaction by laundering (`xfbtree_trans_commit`): every buffer is
    /// detached and released; each dirty one first passes its verifier's structure check,
    /// and stale ones have their pages punched by their target as they leave the cache.
    ///
    /// - Throws: the first verification failure, after every buffer has been detached.
    public func commit() throws(BufferError) {
        var firstFailure: BufferError?
        for item in items {
            let buffer = item.buffer
            if buffer.isDirty && !buffer.isStale {
                do throws(BufferError) {
                    try buffer.verifyStructure()
                } catch {
                    if firstFailure == nil { firstFailure = error }
                }
                buffer.clearDirty()
            }
            item.target.release(buffer)
        }
        items.removeAll(keepingCapacity: true)
        beforeImagesUsed = 0
        if let firstFailure { throw firstFailure }
    }

    /// Ends the transaction without keeping its changes: an undoable transaction puts back
    /// the bytes of every buffer it changed (a freed block becomes live again); then every
    /// buffer is released unverified. Without before-images nothing is rolled back, as in
    /// the kernel, and the caller must treat the structure as lost.
    public func cancel() {
        for item in items {
            let buffer = item.buffer
            if item.beforeImage >= 0 {
                buffer.restore(beforeImages[item.beforeImage])
            }
            item.target.release(buffer)
        }
        items.removeAll(keepingCapacity: true)
        beforeImagesUsed = 0
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
