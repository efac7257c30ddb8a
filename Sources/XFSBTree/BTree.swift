/// A btree of `Format` records in `Store`: the entry points that work on a whole tree
/// (create, cursors, queries, block walks, bulk load, verify). Operations at a position go
/// through a `BTreeCursor`.
///
/// Thread safety: as safe as its store. Cursors on one tree are used by one thread at a
/// time unless the store says otherwise (the disk stores of an `XFSImage` may be read
/// from several threads, each with its own cursor).
public struct BTree<Format: BTreeRecordFormat, Store: BTreeBlockStore> {
    /// Where the blocks live.
    public let store: Store
    /// The block layout of this format in this store.
    public let layout: BTreeLayout

    /// The tree held by `store` (its `root` and `height`).
    @inlinable
    public init(store: Store) {
        self.store = store
        self.layout = BTreeLayout(format: Format.self, store: store)
    }

    /// Makes `store` hold a new empty tree: allocates one block, formats it as an empty leaf
    /// and sets it as the root with height 1 (what `xfbtree_init` does for block 0).
    @inlinable
    public static func createEmpty(in store: Store) throws -> BTree {
        let tree = BTree(store: store)
        guard let p = try store.allocateBlock() else { throw BTreeError.noSpace(btree: Format.name) }
        let h = try store.newBlock(p)
        defer { store.release(h) }
        BTreeBlock(store.memory(of: h)).formatHeader(
            magic: Format.magic, level: 0, numrecs: 0, left: Store.Pointer.null, right: Store.Pointer.null,
            blkno: store.diskAddress(of: p), owner: store.owner, uuid: store.uuid)
        store.markDirty(h, range: 0..<tree.layout.headerSize)
        store.setRoot(p, height: 1)
        return tree
    }

    /// A new, unpositioned cursor on this tree.
    @inlinable
    public func makeCursor() -> BTreeCursor<Format, Store> {
        BTreeCursor(store: store, layout: layout)
    }

    /// Calls `body` with every record overlapping [`low`, `high`] in key order.
    @inlinable @discardableResult
    public func query(
        from low: Format.Key, through high: Format.Key, _ body: (Format.Record) throws -> BTreeVisitAction
    ) throws -> BTreeVisitAction {
        var c = makeCursor()
        return try c.query(from: low, through: high, body)
    }

    /// Calls `body` with every record in key order.
    @inlinable @discardableResult
    public func queryAll(_ body: (Format.Record) throws -> BTreeVisitAction) throws -> BTreeVisitAction {
        var c = makeCursor()
        return try c.queryAll(body)
    }

    /// Whether records cover [`low`, `high`] fully, sparsely or not at all.
    @inlinable
    public func hasRecords(from low: Format.Key, through high: Format.Key) throws -> BTreeRecordPacking {
        var c = makeCursor()
        return try c.hasRecords(from: low, through: high)
    }

    /// Calls `body` with every block, level by level from the root, left to right.
    @inlinable @discardableResult
    public func visitBlocks(_ body: (BTreeBlockInfo) throws -> BTreeVisitAction) throws -> BTreeVisitAction {
        var c = makeCursor()
        return try c.visitBlocks(body)
    }

    /// The number of blocks in the tree.
    @inlinable
    public func countBlocks() throws -> Int {
        var c = makeCursor()
        return try c.countBlocks()
    }

    /// Checks the whole tree and returns every fault found.
    public func verify() -> BTreeVerifyReport {
        BTreeVerifier<Format, Store>.verify(store, layout: layout)
    }
}
