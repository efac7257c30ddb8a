import XFSBTree
import XFSBuffer
import XFSTransaction

/// An XFS btree whose blocks are the pages of a memory target (the kernel's `struct
/// xfbtree`), run by the same generic engine as the btrees on disk.
///
/// Every operation runs in a transaction: get a cursor with `withCursor(in:_:)`, then end
/// the transaction with `commit(_:)` (laundering: verify dirty blocks, punch freed ones)
/// or `cancel(_:)`. With an undoable transaction (`Transaction(keepingBeforeImages: true)`)
/// a cancel restores the tree exactly; otherwise, as in the kernel, a cancelled tree must
/// not be used again.
///
/// One thread at a time: callers serialise operations on a tree.
public final class InMemoryBTree<Format: BTreeRecordFormat> {
    /// The store holding the blocks and the RAM-only state.
    public let store: InMemoryBlockStore<Format>
    /// Block layout, computed once.
    public let layout: BTreeLayout
    /// Set once a cancel without before-images left the tree unusable.
    @exclusivity(unchecked) public private(set) var isLost = false
    /// The path memory of the last cursor `withCursor` closed, for the next one.
    /// The transaction of `withReadCursor`, reused.
    @usableFromInline let readTransaction = Transaction()
    /// The cursor of `withReadCursor`, kept between reads (it holds nothing between them).
    @usableFromInline @exclusivity(unchecked)
    var readCursor: BTreeCursor<Format, InMemoryBlockStore<Format>>
    @usableFromInline @exclusivity(unchecked)
    var spareCursorPath = BTreeCursor<Format, InMemoryBlockStore<Format>>.PathStorage()

    /// An empty tree (one empty leaf at block 0) on `target`.
    ///
    /// - Parameters:
    ///   - target: the memory target whose pages hold the blocks.
    ///   - owner: the owner written in block headers.
    ///   - uuid: the filesystem uuid written in block headers.
    ///   - recordLimits: smaller limits than a page allows, for tests that want deep trees.
    ///   - growthPolicy: how inserts into full blocks make room. The default,
    ///     `.batchedShifts`, keeps the kernel's order of preference but moves several
    ///     entries per shift: on a million random rmap records, inserts take about 0.7 of
    ///     the time and the tree 0.94 of the memory (BENCHMARKS.md). `.kernel` makes
    ///     exactly the shapes the Linux kernel makes, for comparing trees block by block.
    public init(target: MemoryTarget, owner: UInt64 = 0, uuid: BTreeUUID = .zero,
                recordLimits: BTreeRecordLimits? = nil, growthPolicy: BTreeGrowthPolicy = .batchedShifts) throws {
        store = InMemoryBlockStore(target: target, owner: owner, uuid: uuid, limits: recordLimits,
                                   growthPolicy: growthPolicy)
        layout = BTreeLayout(format: Format.self, store: store)
        readCursor = BTreeCursor(store: store, layout: layout)
        let transaction = Transaction()
        store.begin(transaction)
        do {
            guard let rootBlock = store.allocator.allocate() else {
                throw BufferError.beyondTarget(address: DiskAddress(0), length: MemoryTarget.blockSize, targetSize: target.size)
            }
            let buffer = try store.newBlock(rootBlock)
            BTreeBlock(store.memory(of: buffer)).formatHeader(
                magic: Format.magic, level: 0, numrecs: 0, left: UInt64.null, right: UInt64.null,
                blkno: store.diskAddress(of: rootBlock), owner: owner, uuid: uuid)
            store.markDirty(buffer, range: 0..<layout.headerSize)
            store.setRoot(rootBlock, height: 1)
            try commit(transaction)
        } catch {
            transaction.cancel()
            throw error
        }
    }

    /// The root block number.
    public var root: UInt64 { store.root }
    /// The number of levels.
    public var height: Int { store.height }
    /// Blocks in use.
    public var blockCount: UInt64 { store.allocator.blocksInUse }
    /// Blocks an operation can still allocate before the memory target is full (blocks
    /// never used, and freed blocks whose transaction committed).
    public var allocatableBlocks: UInt64 { store.allocator.allocatableBlocks }
    /// The memory target.
    public var target: MemoryTarget { store.target }

    /// Runs `body` with a new cursor on the tree whose blocks join `transaction`; the
    /// cursor's holds are given back when `body` returns. Make a new cursor for each
    /// operation, as with the kernel's `xfs_rmapbt_mem_cursor`.
    @inlinable
    public func withCursor<Result>(
        in transaction: Transaction,
        _ body: (inout BTreeCursor<Format, InMemoryBlockStore<Format>>) throws -> Result
    ) throws -> Result {
        precondition(!isLost, "in-memory \(Format.name) used after a cancel without before-images")
        store.begin(transaction)
        var cursor = BTreeCursor<Format, InMemoryBlockStore<Format>>(
            store: store, layout: layout, reusing: spareCursorPath.take())
        defer { spareCursorPath = cursor.takePathStorage() }
        return try body(&cursor)
    }

    /// Fills the empty tree bottom-up from `records` (`count` of them, in strictly
    /// increasing key order) with the engine's bulk loader (`xfs_btree_bload` on an
    /// xfbtree), in `transaction`: one pass, no splits, every block written once. The
    /// slacks are as for `BTreeBulkLoader.geometry`; the default, 0, fills every block (a
    /// tree that will only be read). The empty root leaf is freed.
    ///
    /// This is the fast way to build a tree from records known all at once (an offline
    /// scan, sorted); inserts are the way for records that arrive one by one.
    ///
    /// - Precondition: the tree holds no records.
    @inlinable
    public func bulkLoad<S: Sequence>(_ records: S, count: Int, leafSlack: Int? = 0, nodeSlack: Int? = 0,
                                      in transaction: Transaction) throws where S.Element == Format.Record {
        guard count > 0 else { return }
        try withCursor(in: transaction) { _ in
            let emptyRoot = store.root
            let handle = try store.readBlock(emptyRoot)
            precondition(store.height == 1 && BTreeBlock(store.memory(of: handle)).numrecs == 0,
                         "bulk load into an in-memory \(Format.name) that holds records")
            do {
                try BTreeBulkLoader<Format, InMemoryBlockStore<Format>>.load(
                    records, count: count, into: store, leafSlack: leafSlack, nodeSlack: nodeSlack
                ) {
                    guard let block = try store.allocateBlock() else { throw BTreeError.noSpace(btree: Format.name) }
                    return block
                }
            } catch {
                store.release(handle)
                throw error
            }
            // Freeing gives the hold back.
            try store.freeBlock(handle, at: emptyRoot)
        }
    }

    /// Runs `body` with a new cursor that only reads, in a transaction of the tree's own
    /// that ends when `body` returns: the cheap way to answer one lookup or walk one range
    /// outside any transaction of the caller's. A lookup holds no block (the descent only
    /// visits them), so ending the read costs next to nothing.
    ///
    /// - Precondition: no transaction is open on the tree (read through `withCursor(in:_:)`
    ///   within one), and `body` does not change the tree.
    @inlinable
    public func withReadCursor<Result>(
        _ body: (inout BTreeCursor<Format, InMemoryBlockStore<Format>>) throws -> Result
    ) throws -> Result {
        beginRead()
        defer {
            readCursor.releaseHolds()
            endRead()
        }
        return try body(&readCursor)
    }

    /// Opens the read transaction of `withReadCursor`.
    @inlinable @inline(__always)
    func beginRead() {
        precondition(!isLost, "in-memory \(Format.name) used after a cancel without before-images")
        precondition(!store.isInTransaction, "withReadCursor on an in-memory \(Format.name) with a transaction open")
        store.beginUnchanged(readTransaction)
    }

    /// Ends the read transaction of `withReadCursor`, releasing whatever the cursor held
    /// (a lookup holds nothing: the transaction is empty).
    @inlinable @inline(__always)
    func endRead() {
        if readTransaction.joinedCount > 0 { releaseRead() }
        store.endUnchanged()
    }

    /// Gives back the blocks a read cursor held.
    @usableFromInline
    func releaseRead() {
        precondition(!readTransaction.isDirty, "a read cursor changed an in-memory \(Format.name)")
        readTransaction.cancel()
    }

    /// Checks the whole tree's structure with the engine's verifier (keys, high keys,
    /// siblings, levels, record counts, headers), in a transaction of its own.
    public func verify() -> BTreeVerifyReport {
        let transaction = Transaction()
        store.begin(transaction)
        defer {
            transaction.cancel()
            store.rollbackState()
        }
        return BTreeVerifier<Format, InMemoryBlockStore<Format>>.verify(store, layout: layout)
    }

    /// Ends `transaction` by laundering (`xfbtree_trans_commit`): dirty blocks pass the
    /// structure verifier, freed blocks' pages are punched, every buffer is released, and
    /// the root, height and allocator changes become permanent.
    ///
    /// - Throws: the first verification failure (every buffer is released all the same).
    public func commit(_ transaction: Transaction) throws {
        defer { store.commitState() }
        try transaction.commit()
    }

    /// Ends `transaction` without keeping its changes. An undoable transaction restores the
    /// tree exactly (pages, root, height, allocator); otherwise the tree is lost, as in the
    /// kernel (`xfbtree_trans_cancel`).
    public func cancel(_ transaction: Transaction) {
        if !transaction.keepsBeforeImages && transaction.isDirty { isLost = true }
        transaction.cancel()
        store.rollbackState()
    }
}
