/// A leaf's records where the store keeps them, for a walk that reads them in place from one
/// operation to the next, with no cursor open in between. Only a store that lends its
/// blocks (`BTreeBlockStore.peekBlock`: one owner, pages that stay mapped) lends leaves; the
/// walker must check, before each read, that nothing changed the tree since it got the leaf
/// (a change may have moved, split or freed it).
public struct BTreeLentLeaf<Pointer: BTreePointer> {
    /// The leaf's pointer.
    public let pointer: Pointer
    /// The leaf's first record; records follow one another `BTreeLayout.recordSize` apart.
    public let records: UnsafeRawPointer
    /// The number of records in the leaf.
    public let count: Int
    /// The next leaf in key order; null at the last leaf.
    public let rightSibling: Pointer

    @inlinable
    init(pointer: Pointer, block: BTreeBlock, layout: BTreeLayout) {
        self.pointer = pointer
        self.records = UnsafeRawPointer(block.record(0, layout))
        self.count = block.numrecs
        self.rightSibling = block.rightSibling(Pointer.self)
    }
}

extension BTreeCursor {
    /// The leaf the cursor rests in, lent, with the cursor's index in it (-1 before its
    /// first record, `count` after its last); nil when the cursor is not positioned or the
    /// store does not lend the block.
    @inlinable
    public func lentLeaf() -> (leaf: BTreeLentLeaf<Store.Pointer>, index: Int)? {
        guard let level = path.first, level.base != nil, store.peekBlock(level.pointer) != nil else { return nil }
        return (BTreeLentLeaf(pointer: level.pointer, block: level.block, layout: layout), level.index)
    }

    /// The leaf at `pointer` (a lent leaf's right sibling), lent, with its header checked as
    /// on every read; nil when the store does not lend the block.
    ///
    /// - Throws: `BTreeError.corrupt` when the block is not a sane leaf of this tree.
    @inlinable
    public static func lentLeaf(at pointer: Store.Pointer, store: Store, layout: BTreeLayout) throws
        -> BTreeLentLeaf<Store.Pointer>?
    {
        guard !pointer.isNull, store.isValid(pointer), let memory = store.peekBlock(pointer) else { return nil }
        let b = BTreeBlock(memory)
        if !headerIsSane(b, store, layout, pointer, level: 0, isRoot: false),
           let fault = headerFault(b, store, layout, pointer, level: 0, isRoot: false) {
            throw BTreeError.corrupt(btree: Format.name, fault)
        }
        return BTreeLentLeaf(pointer: pointer, block: b, layout: layout)
    }
}
