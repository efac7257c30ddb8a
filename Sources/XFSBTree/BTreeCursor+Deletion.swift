extension BTreeCursor {
    /// How an underfull block was dealt with.
    @usableFromInline
    enum Rebalance {
        /// Nothing more to do on the levels above.
        case done
        /// Two blocks were joined; the parent entry the path now points at must go.
        case removeParentEntry
    }

    /// Deletes the record at the cursor (libxfs `xfs_btree_delete`) and leaves the cursor on
    /// the record that followed it: the first record whose key is >= the deleted key (after
    /// the last record, with `record == nil`, when none follows). A block left below minrecs
    /// borrows an entry from its right, else its left sibling when one can spare it, else is
    /// joined with a sibling (one block freed) and the parent loses an entry, recursively;
    /// a root node left with one child is freed and its child becomes the root.
    @inlinable
    public mutating func delete() throws {
        precondition(isAtRecord, "delete needs a cursor resting on a record")
        try holdPath()
        let key = Format.loadLowKey(fromRecord: path[0].block.record(path[0].index, layout))
        if try deleteEntry() {
            _ = try lookup(key, .greaterOrEqual)
        } else if path[0].index >= path[0].block.numrecs {
            path[0].index = path[0].block.numrecs
            _ = try stepRight(atLevel: 0)
        }
        #if BTREE_INTERNAL_CHECKS
        checkInvariants()
        #endif
    }

    /// Removes the entry at the path's leaf position, rebalancing upward. Returns true when
    /// the path no longer describes the position (the caller repositions).
    @inlinable
    mutating func deleteEntry() throws -> Bool {
        var level = 0
        var structural = false
        while true {
            let b = path[level].block
            let n = b.numrecs
            let pos = path[level].index
            b.moveEntries(from: pos + 1, to: pos, count: n - pos - 1, level: level, layout)
            b.numrecs = n - 1
            logEntries(path[level].handle!, level: level, from: pos, to: n - 1)
            if level == path.count - 1 {
                if level > 0 && n - 1 == 1 {
                    try killRoot()
                    structural = true
                }
                return structural
            }
            if n - 1 >= layout.limits.minRecords(level: level) {
                updateKeys(fromLevel: level)
                return structural
            }
            structural = true
            switch try rebalance(level: level) {
            case .done: return true
            case .removeParentEntry: level += 1
            }
        }
    }

    /// Frees a root node that has a single child and makes the child the root
    /// (libxfs `xfs_btree_kill_root`); repeats while the new root is itself a node with one
    /// entry (possible when node minrecs is 1).
    @inlinable
    mutating func killRoot() throws {
        while path.count > 1 {
            let level = path.count - 1
            let child = path[level].block.pointer(0, layout, as: Store.Pointer.self)
            guard !child.isNull && store.isValid(child) else {
                throw corrupt(.pointer, level: level, "root's only child pointer \(child) is invalid")
            }
            store.setRoot(child, height: level)
            let rootPointer = path[level].pointer
            let h = path[level].handle!
            path.removeLast()
            do {
                try store.freeBlock(h, at: rootPointer)
            } catch {
                store.release(h)
                throw error
            }
            store.release(h)
            // Hold the new root at its level so the loop can look at it.
            if path[level - 1].base != nil && path[level - 1].pointer != child { unload(level - 1) }
            try load(level - 1, child)
            if level - 1 == 0 || path[level - 1].block.numrecs != 1 { return }
        }
    }

    /// Fixes the underfull block at `level`: borrow from the right sibling, borrow from the
    /// left sibling, join into the left sibling, join the right sibling in, in that order.
    @inlinable
    mutating func rebalance(level: Int) throws -> Rebalance {
        let b = path[level].block
        let bn = b.numrecs
        let bPointer = path[level].pointer
        let maxr = layout.limits.maxRecords(level: level)
        let minr = layout.limits.minRecords(level: level)
        let rightPointer = b.rightSibling(Store.Pointer.self)
        let leftPointer = b.leftSibling(Store.Pointer.self)

        if !rightPointer.isNull {
            let t = try siblingCursor(rightPointer, rightward: true, level: level)
            let rb = t.path[level].block
            let rn = rb.numrecs
            if rn - 1 >= minr {
                b.copyEntries(from: rb, at: 0, to: bn, count: 1, level: level, layout)
                b.numrecs = bn + 1
                rb.moveEntries(from: 1, to: 0, count: rn - 1, level: level, layout)
                rb.numrecs = rn - 1
                logEntries(path[level].handle!, level: level, from: bn, to: bn + 1)
                logEntries(t.path[level].handle!, level: level, from: 0, to: rn - 1)
                updateKeys(fromLevel: level)
                t.updateKeys(fromLevel: level)
                return .done
            }
        }
        if !leftPointer.isNull {
            let t = try siblingCursor(leftPointer, rightward: false, level: level)
            let lb = t.path[level].block
            let ln = lb.numrecs
            if ln - 1 >= minr {
                b.moveEntries(from: 0, to: 1, count: bn, level: level, layout)
                b.copyEntries(from: lb, at: ln - 1, to: 0, count: 1, level: level, layout)
                b.numrecs = bn + 1
                lb.numrecs = ln - 1
                logEntries(path[level].handle!, level: level, from: 0, to: bn + 1)
                logEntries(t.path[level].handle!, level: level, from: ln - 1, to: ln - 1)
                path[level].index += 1
                updateKeys(fromLevel: level)
                t.updateKeys(fromLevel: level)
                return .done
            }
            if ln + bn <= maxr {
                // Join this block into the left sibling and free it.
                try join(b, into: lb, at: leftPointer, handle: t.path[level].handle!, level: level)
                t.updateKeys(fromLevel: level)
                try freeBlock(atLevel: level, pointer: bPointer)
                return .removeParentEntry
            }
        }
        if !rightPointer.isNull {
            var t = try siblingCursor(rightPointer, rightward: true, level: level)
            let rb = t.path[level].block
            let rn = rb.numrecs
            if bn + rn <= maxr {
                // Join the right sibling into this block and free it.
                try join(rb, into: b, at: bPointer, handle: path[level].handle!, level: level)
                updateKeys(fromLevel: level)
                try t.freeBlock(atLevel: level, pointer: rightPointer)
                // The parent entry to remove is the right sibling's: the next one at level + 1.
                let parent = level + 1
                if path[parent].index + 1 < path[parent].block.numrecs {
                    path[parent].index += 1
                } else if try !stepRight(atLevel: parent) {
                    throw corrupt(.siblings, level: parent, "no parent entry for right sibling \(rightPointer.pointerText)")
                }
                let p = path[parent].block.pointer(path[parent].index, layout, as: Store.Pointer.self)
                guard p == rightPointer else {
                    throw corrupt(.siblings, level: parent, "next parent entry points at \(p.pointerText), not right sibling \(rightPointer.pointerText)")
                }
                return .removeParentEntry
            }
        }
        // Neither sibling can spare an entry nor be joined: leave the block underfull.
        updateKeys(fromLevel: level)
        return .done
    }

    /// Appends every entry of block `right` to `left` (its left sibling, at `leftPointer`,
    /// held through `leftHandle`), and links `left` to `right`'s right sibling, which is
    /// read and relinked here; the caller then frees `right`.
    @inlinable
    func join(_ right: BTreeBlock, into left: BTreeBlock, at leftPointer: Store.Pointer,
              handle leftHandle: Store.BlockHandle, level: Int) throws {
        let farPointer = right.rightSibling(Store.Pointer.self)
        var far: (Store.BlockHandle, BTreeBlock)? = nil
        if !farPointer.isNull {
            far = try Self.readChecked(store, layout, farPointer, level: level, isRoot: false)
        }
        defer { if let (h, _) = far { store.release(h) } }
        let ln = left.numrecs, rn = right.numrecs
        left.copyEntries(from: right, at: 0, to: ln, count: rn, level: level, layout)
        left.numrecs = ln + rn
        left.setRightSibling(farPointer)
        if let (fh, fb) = far {
            fb.setLeftSibling(leftPointer)
            store.markDirty(fh, range: 0..<layout.headerSize)
        }
        logEntries(leftHandle, level: level, from: ln, to: ln + rn)
    }

    /// Frees the block held at `level` (the store sees it still held) and drops the hold.
    @inlinable
    mutating func freeBlock(atLevel level: Int, pointer: Store.Pointer) throws {
        let h = path[level].handle!
        path[level].handle = nil
        path[level].base = nil
        defer { store.release(h) }
        try store.freeBlock(h, at: pointer)
    }
}
