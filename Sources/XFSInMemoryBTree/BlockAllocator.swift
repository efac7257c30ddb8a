/// The block allocator of an in-memory btree: a bump pointer over never-used block
/// numbers plus a free list of released ones, with a journal so that a cancelled
/// transaction can take its allocations and frees back.
///
/// Blocks freed in a transaction become reusable only when it commits: until then their
/// pages still hold what a cancel may need, and a block is never freed and reallocated
/// within one transaction.
@usableFromInline
struct BlockAllocator {
    /// The lowest block number never handed out.
    @usableFromInline private(set) var nextUnused: UInt64 = 0
    /// Released block numbers, reused last-in first-out.
    private(set) var reusable: [UInt64] = []
    /// Blocks freed by the open transaction.
    private var freedInTransaction: [UInt64] = []
    /// Blocks taken from `reusable` by the open transaction, in order.
    private var reusedInTransaction: [UInt64] = []
    /// `nextUnused` when the open transaction began.
    private var nextUnusedAtBegin: UInt64 = 0
    /// The number of block numbers the memory target can address.
    let capacity: UInt64

    init(capacity: UInt64) {
        self.capacity = capacity
    }

    /// Blocks in use (handed out and not freed, counting frees of the open transaction).
    var blocksInUse: UInt64 { nextUnused - UInt64(reusable.count) - UInt64(freedInTransaction.count) }

    /// Blocks the open transaction can still allocate (never used, or reusable).
    var allocatableBlocks: UInt64 { capacity - nextUnused + UInt64(reusable.count) }

    /// A block number not in use, or nil when the target is full.
    mutating func allocate() -> UInt64? {
        if let block = reusable.popLast() {
            reusedInTransaction.append(block)
            return block
        }
        guard nextUnused < capacity else { return nil }
        defer { nextUnused += 1 }
        return nextUnused
    }

    /// Releases a block; it becomes reusable when the transaction commits.
    mutating func free(_ block: UInt64) {
        assert(block < nextUnused, "freeing block \(block), never allocated")
        freedInTransaction.append(block)
    }

    /// Makes the open transaction's work permanent.
    mutating func commit() {
        nextUnusedAtBegin = nextUnused
        // Most transactions neither free nor reuse a block: leave the arrays untouched.
        if !freedInTransaction.isEmpty {
            reusable.append(contentsOf: freedInTransaction)
            freedInTransaction.removeAll(keepingCapacity: true)
        }
        if !reusedInTransaction.isEmpty { reusedInTransaction.removeAll(keepingCapacity: true) }
    }

    /// Takes back every allocation and free of the open transaction.
    mutating func rollback() {
        reusable.append(contentsOf: reusedInTransaction.reversed())
        freedInTransaction.removeAll(keepingCapacity: true)
        reusedInTransaction.removeAll(keepingCapacity: true)
        nextUnused = nextUnusedAtBegin
    }
}
