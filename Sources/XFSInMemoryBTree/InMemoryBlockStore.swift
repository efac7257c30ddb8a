import XFSBTree
import XFSBuffer
import XFSTransaction

/// A held block of an in-memory btree: its buffer, unretained, and its page.
///
/// Trivially copyable, so the engine's cursor levels are plain values (no reference
/// counting, no value witnesses). Valid from `readBlock`/`newBlock` until the matching
/// `release`: the transaction holds the buffer until then, and a held buffer is owned by
/// its target's cache (see `BufferCache`), so the unretained reference cannot dangle.
public struct InMemoryBlockHandle {
    /// The buffer, held through the open transaction.
    public let buffer: Unmanaged<Buffer>
    /// The block's bytes: the buffer's page.
    public let memory: UnsafeMutableRawPointer

    @inlinable
    init(_ buffer: Unmanaged<Buffer>) {
        self.buffer = buffer
        self.memory = buffer._withUnsafeGuaranteedRef { $0.unsafeMutableBytes.baseAddress.unsafelyUnwrapped }
    }
}

/// Where an in-memory btree's blocks live: pages of a memory target, got through the
/// transaction the tree's current operation runs in (the kernel's `xfbtree` ops).
///
/// Holds the tree's state that lives only in RAM: the root, the height and the block
/// allocator, with what they were when the open transaction began, so a cancel can
/// restore them.
///
/// Thread safety: one thread at a time, as its tree (`InMemoryBTree`).
public final class InMemoryBlockStore<Format: BTreeRecordFormat>: BTreeBlockStore {
    public typealias Pointer = UInt64
    public typealias BlockHandle = InMemoryBlockHandle

    /// The memory target whose pages are the blocks.
    public let target: MemoryTarget
    public let owner: UInt64
    public let uuid: BTreeUUID
    public let blockSize: Int
    public let maxHeight: Int
    /// How inserts into full blocks make room.
    public let growthPolicy: BTreeGrowthPolicy
    @exclusivity(unchecked) public private(set) var root: UInt64 = 0
    @exclusivity(unchecked) public private(set) var height: Int = 1
    /// The limits every block of this tree uses.
    let limits: BTreeRecordLimits
    let verifier: InMemoryBlockVerifier
    /// `verifier`, boxed once and attached to every block's buffer: attaching allocates
    /// nothing, and commit calls it in place (see `Buffer.attach(_:)`).
    @usableFromInline let sharedVerifier: BufferVerifierBox
    @usableFromInline @exclusivity(unchecked) var allocator: BlockAllocator
    @usableFromInline let sectorsPerBlock: UInt64
    /// The target's pages in the memory file's window (block `p` at `p * blockSize`), and
    /// how many blocks from there are known to be mapped: the lent and prefetched
    /// addresses of a descent are two compares and an add (see `peekBlock`).
    @usableFromInline let pages: UnsafeMutableRawPointer
    @usableFromInline @exclusivity(unchecked) var mappedBlocks: UInt64 = 0
    /// The target's size in blocks.
    @usableFromInline let capacity: UInt64

    /// The last transaction the store was bound to, kept (retained) after it ends so that
    /// a loop of operations through one transaction does not retain and release it each
    /// time.
    @usableFromInline @exclusivity(unchecked) var lastTransaction: Transaction?
    /// The transaction blocks join, unretained (`lastTransaction` keeps it): set for the
    /// length of one operation, nil between operations.
    @usableFromInline @exclusivity(unchecked) var unretainedTransaction: Unmanaged<Transaction>?
    /// Whether the tree's RAM state has changed since the last commit, and what it was.
    @usableFromInline @exclusivity(unchecked) var isInTransaction = false
    @exclusivity(unchecked) private var rootAtBegin: UInt64 = 0
    @exclusivity(unchecked) private var heightAtBegin = 1

    init(target: MemoryTarget, owner: UInt64, uuid: BTreeUUID, limits: BTreeRecordLimits?,
         growthPolicy: BTreeGrowthPolicy) {
        self.target = target
        self.growthPolicy = growthPolicy
        self.owner = owner
        self.uuid = uuid
        self.blockSize = MemoryTarget.blockSize
        self.sectorsPerBlock = UInt64(MemoryTarget.sectorsPerBlock)
        let capacity = UInt64(target.size / MemoryTarget.blockSize)
        self.capacity = capacity
        self.pages = target.unsafePagesStart
        let limits = limits ?? BTreeRecordLimits.computed(blockSize: blockSize, format: Format.self, pointer: UInt64.self)
        self.limits = limits
        self.maxHeight = Self.maxHeight(blocks: capacity, limits: limits)
        self.allocator = BlockAllocator(capacity: capacity)
        self.verifier = InMemoryBlockVerifier(
            format: Format.self, uuid: uuid, limits: limits, maxHeight: maxHeight, blockCount: capacity,
            sectorsPerBlock: UInt64(MemoryTarget.sectorsPerBlock))
        self.sharedVerifier = BufferVerifierBox(verifier)
    }

    /// The tallest tree `blocks` blocks could hold with every block at its minimum fill
    /// (libxfs' `xfs_btree_compute_maxlevels` over the most records that fit).
    static func maxHeight(blocks: UInt64, limits: BTreeRecordLimits) -> Int {
        let leafMin = UInt64(max(limits.leafMin, 1)), nodeMin = UInt64(max(limits.nodeMin, 2))
        let records = blocks.multipliedReportingOverflow(by: UInt64(limits.leafMax))
        var levelBlocks = (records.overflow ? UInt64.max : records.partialValue) / leafMin + 1
        var height = 1
        while levelBlocks > 1 && height < 64 {
            levelBlocks = levelBlocks / nodeMin + 1
            height += 1
        }
        return height
    }

    // MARK: Transactions

    /// Binds the store to `transaction` for one operation, remembering the RAM state the
    /// first time in a transaction.
    @usableFromInline
    func begin(_ transaction: Transaction) {
        if lastTransaction !== transaction { lastTransaction = transaction }
        unretainedTransaction = Unmanaged.passUnretained(transaction)
        if !isInTransaction {
            isInTransaction = true
            rootAtBegin = root
            heightAtBegin = height
        }
    }

    /// Makes the RAM state permanent (the pages were laundered by the transaction).
    func commitState() {
        allocator.commit()
        isInTransaction = false
        unretainedTransaction = nil
    }

    /// Begins a transaction that will change nothing (a read): no RAM state to save.
    @inlinable @inline(__always)
    func beginUnchanged(_ transaction: Transaction) {
        if lastTransaction !== transaction { lastTransaction = transaction }
        unretainedTransaction = Unmanaged.passUnretained(transaction)
        isInTransaction = true
    }

    /// Ends a transaction that changed nothing (a read): no RAM state to keep or put back.
    @inlinable @inline(__always)
    func endUnchanged() {
        isInTransaction = false
        unretainedTransaction = nil
    }

    /// Puts the RAM state back as it was when the transaction began.
    func rollbackState() {
        if isInTransaction {
            root = rootAtBegin
            height = heightAtBegin
        }
        allocator.rollback()
        isInTransaction = false
        unretainedTransaction = nil
    }

    @inlinable @inline(__always)
    var openTransaction: Transaction {
        guard let unretainedTransaction else { preconditionFailure("in-memory btree used outside a transaction") }
        return unretainedTransaction.takeUnretainedValue()
    }

    /// Runs `body` on the open transaction without retaining it (`transaction` owns it).
    @inlinable @inline(__always)
    func withTransaction<Result>(_ body: (Transaction) throws -> Result) rethrows -> Result {
        guard let unretainedTransaction else { preconditionFailure("in-memory btree used outside a transaction") }
        return try unretainedTransaction._withUnsafeGuaranteedRef(body)
    }

    // MARK: BTreeBlockStore

    public func setRoot(_ root: UInt64, height: Int) {
        self.root = root
        self.height = height
    }

    public func recordLimits(suggested: BTreeRecordLimits) -> BTreeRecordLimits { limits }

    @inlinable @inline(__always)
    public func diskAddress(of pointer: UInt64) -> UInt64 { pointer &* sectorsPerBlock }

    @inlinable @inline(__always)
    public func isValid(_ pointer: UInt64) -> Bool { pointer < allocator.nextUnused }

    @inlinable @inline(__always)
    func address(_ pointer: UInt64) -> DiskAddress { DiskAddress(Int64(pointer &* sectorsPerBlock)) }

    @inlinable
    public func readBlock(_ pointer: UInt64) throws -> InMemoryBlockHandle {
        try withTransaction { transaction in
            // Got, not read: for a memory target a read is a get plus the verifier's read
            // check on first use, which `firstRead` does, so the hot path never copies the
            // verifier existential (a retain of its box).
            let buffer = try transaction.getBufferUnretained(target, at: address(pointer), length: blockSize)
            if buffer._withUnsafeGuaranteedRef({ !$0.isDone || !$0.hasVerifier }) {
                try firstRead(buffer, in: transaction)
            }
            // The engine writes first and logs after, so an undoable transaction keeps every
            // block it reads as it was.
            if transaction.keepsBeforeImages { transaction.willChange(unretained: buffer) }
            return InMemoryBlockHandle(buffer)
        }
    }

    /// The read check of a block not read since its page was mapped (or reused), and the
    /// verifier attached for commit; on failure the block is given back, stale.
    @usableFromInline
    func firstRead(_ unretained: Unmanaged<Buffer>, in transaction: Transaction) throws(BufferError) {
        let buffer = unretained.takeUnretainedValue()
        if !buffer.isDone {
            do throws(VerificationFailure) {
                try verifier.verifyRead(buffer)
            } catch {
                buffer.markStale()
                transaction.release(unretained: unretained)
                throw .verificationFailed(error)
            }
            buffer.markDone()
        }
        if !buffer.hasVerifier { buffer.attach(sharedVerifier) }
    }

    public func newBlock(_ pointer: UInt64) throws -> InMemoryBlockHandle {
        let transaction = openTransaction
        let buffer = try transaction.getBufferUnretained(target, at: address(pointer), length: blockSize)
        buffer._withUnsafeGuaranteedRef { $0.attach(sharedVerifier) }
        if transaction.keepsBeforeImages { transaction.willChange(unretained: buffer) }
        return InMemoryBlockHandle(buffer)
    }

    /// The block's page in the memory file's window (the block need not be cached, nor
    /// its page mapped: a prefetch never faults).
    @inlinable @inline(__always)
    public func prefetchAddress(of pointer: UInt64) -> UnsafeRawPointer? {
        guard pointer < capacity else { return nil }
        return UnsafeRawPointer(pages + Int(truncatingIfNeeded: pointer) &* blockSize)
    }

    /// The block's buffer, when the target caches it (see `MemoryTarget.prefetchBuffer`).
    @inlinable
    public func prefetchHold(of pointer: UInt64) {
        target.prefetchBuffer(at: address(pointer))
    }

    /// The block's page, unheld: the tree has one owner at a time, which serializes every
    /// operation, and a page of a live tree stays mapped as long as the target. Nil for a
    /// pointer past the blocks handed out, or a page not mapped yet.
    @inlinable @inline(__always)
    public func peekBlock(_ pointer: UInt64) -> UnsafeMutableRawPointer? {
        guard isValid(pointer) else { return nil }
        guard pointer < mappedBlocks || isMapped(pointer) else { return nil }
        return pages + Int(truncatingIfNeeded: pointer) &* blockSize
    }

    /// Whether the window maps the page of block `pointer` now (it learns how far the
    /// target is mapped, which only grows).
    @usableFromInline @inline(never)
    func isMapped(_ pointer: UInt64) -> Bool {
        mappedBlocks = UInt64(target.mappedBytes / blockSize)
        return pointer < mappedBlocks
    }

    @inlinable @inline(__always)
    public func memory(of handle: InMemoryBlockHandle) -> UnsafeMutableRawPointer {
        handle.memory
    }

    @inlinable
    public func release(_ handle: InMemoryBlockHandle) {
        withTransaction { $0.release(unretained: handle.buffer) }
    }

    @inlinable
    public func markDirty(_ handle: InMemoryBlockHandle, range: Range<Int>) {
        withTransaction { $0.log(unretained: handle.buffer, range: range) }
    }

    public func allocateBlock() throws -> UInt64? {
        allocator.allocate()
    }

    public func freeBlock(_ handle: InMemoryBlockHandle, at pointer: UInt64) throws {
        openTransaction.invalidate(unretained: handle.buffer)
        allocator.free(pointer)
    }
}
