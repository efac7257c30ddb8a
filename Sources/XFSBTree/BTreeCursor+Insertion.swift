extension BTreeCursor {
    /// An entry on its way into a block: a record (leaf) or a child's keys and pointer (node).
    @usableFromInline
    enum Entry {
        case record(Format.Record)
        case child(low: Format.Key, high: Format.Key, pointer: Store.Pointer)

        /// The entry's (low, high) keys.
        @inlinable
        var keys: (Format.Key, Format.Key) {
            switch self {
            case .record(let r): (Format.lowKey(of: r), Format.highKey(of: r))
            case .child(let low, let high, _): (low, high)
            }
        }
    }

    /// Inserts `record` in key order (libxfs `xfs_btree_insert`), placing it before any
    /// records with an equal key, and leaves the cursor on it. Full blocks first shift an
    /// entry into the right sibling, else into the left sibling, else split; a splitting root
    /// grows the tree by one level. Duplicate keys are not refused (callers check with an
    /// `.equal` lookup first, as libxfs callers do); the verifier reports them.
    @inlinable
    public mutating func insert(_ record: Format.Record) throws {
        let key = Format.lowKey(of: record)
        try descend(to: key, forInsert: true)
        path[0].index = leafBound(key, strict: false)
        try insertRecordAtPath(record, key: key)
    }

    /// Inserts `record` unless a record with an equal low key is present, and says whether
    /// it did; when it did not, the tree is unchanged (the cursor rests on the record with
    /// the key). One descent either way: the leaf a descent to the key chooses holds any
    /// record with that key at the place the new one would go, since a descent takes the
    /// last child whose low key is not above the key.
    @inlinable
    public mutating func insertUnique(_ record: Format.Record) throws -> Bool {
        let key = Format.lowKey(of: record)
        try descend(to: key, forInsert: true)
        let i = leafBound(key, strict: false)
        path[0].index = i
        let b = path[0].block
        if i < b.numrecs && Format.loadLowKey(fromRecord: b.record(i, layout)) == key { return false }
        try insertRecordAtPath(record, key: key)
        return true
    }

    /// Inserts `record` at the cursor's position, without a new descent (libxfs'
    /// `xfs_btree_insert` on a cursor its caller positioned), and leaves the cursor on it.
    ///
    /// For callers that have just looked at the neighbours: after a `.lessOrEqual` lookup
    /// of the record's key, then `increment()` (whether it found a record or not), or after
    /// a failed `.lessOrEqual` followed by a `.greaterOrEqual` lookup, the cursor rests
    /// exactly where the record belongs.
    ///
    /// - Precondition: the cursor is positioned in a leaf, between a record with a smaller
    ///   key and one with a key at least as large (checked in debug builds within the leaf).
    @inlinable
    public mutating func insertAtCursor(_ record: Format.Record) throws {
        precondition(!path.isEmpty && path[0].base != nil, "insertAtCursor on an unpositioned btree cursor")
        let key = Format.lowKey(of: record)
        let b = path[0].block
        let i = max(0, path[0].index)
        path[0].index = i
        assert(i <= b.numrecs, "cursor index \(i) past the leaf's \(b.numrecs) records")
        assert(i == 0 || Format.loadLowKey(fromRecord: b.record(i - 1, layout)) < key, "insertAtCursor: the record before the cursor does not sort first")
        assert(i == b.numrecs || !(Format.loadLowKey(fromRecord: b.record(i, layout)) < key), "insertAtCursor: the record at the cursor sorts before the new one")
        try insertRecordAtPath(record, key: key)
    }

    /// The end of both inserts: `record` (whose low key is `key`) goes in at the leaf
    /// position on the path, and the cursor is left on it (found again after a split).
    @inlinable
    mutating func insertRecordAtPath(_ record: Format.Record, key: Format.Key) throws {
        if try insertEntry(.record(record)) {
            _ = try lookup(key, .equal)
        }
        #if BTREE_INTERNAL_CHECKS
        checkInvariants()
        #endif
    }

    /// Inserts `first` at the leaf position on the path, making room level by level.
    /// Returns true when a split left the path inconsistent (the caller repositions).
    @inlinable
    mutating func insertEntry(_ first: Entry) throws -> Bool {
        // The common insert changes the leaf alone: it has room, the entry does not go
        // first (so the leaf's low key stays), and (overlapping trees) its high key does
        // not pass the leaf's (so the high keys above stay too). Anything else may change
        // blocks above, which a descent may only have visited: hold them first.
        if path.count > 1 {
            let pos = path[0].index
            let b = path[0].block
            if pos > 0 && b.numrecs < layout.limits.maxRecords(level: 0)
                && (!Format.isOverlapping
                    || !(first.keys.1 > Format.loadKey(from: path[1].block.highKey(path[1].index, layout)))) {
                try hold(0)
                putEntry(first, into: b, handle: path[0].handle!, level: 0, at: pos)
                return false
            }
            try holdPath()
        } else {
            try hold(0)
        }
        var entry = first
        var level = 0
        var structural = false
        while true {
            let pos = path[level].index
            let b = path[level].block
            let n = b.numrecs
            let isRoot = level == path.count - 1
            if n < layout.limits.maxRecords(level: level) {
                putEntry(entry, into: b, handle: path[level].handle!, level: level, at: pos)
                path[level].index = pos
                let (low, high) = entry.keys
                updateKeysAfterAdding(level: level, index: pos, low: low, high: high)
                return structural
            }
            if !isRoot {
                // The high key the parent holds for this block, and whether the entries a
                // shift moves out hold it: if not, the block's high key after the shift is
                // still that one (plus the new entry's), and no rescan is needed.
                let parentHigh = Format.isOverlapping
                    ? Format.loadKey(from: path[level + 1].block.highKey(path[level + 1].index, layout))
                    : Format.loadKey(from: path[level + 1].block.key(path[level + 1].index, layout))
                if let removedHigh = try shiftRightToMakeRoom(level: level) {
                    putEntry(entry, into: b, handle: path[level].handle!, level: level, at: pos)
                    let (low, high) = entry.keys
                    if !Format.isOverlapping || removedHigh < parentHigh {
                        // Only entries after the insert position left: the low key changes
                        // only if the entry went first, and the high key can only grow.
                        updateKeysAfterAdding(level: level, index: pos, low: low,
                                              high: high > parentHigh ? high : parentHigh)
                    } else {
                        updateKeysAfterChanging(fromLevel: level)
                    }
                    return structural
                }
                if let (moved, removedHigh) = try shiftLeftToMakeRoom(level: level) {
                    putEntry(entry, into: b, handle: path[level].handle!, level: level, at: pos - moved)
                    path[level].index = pos - moved
                    if !Format.isOverlapping || removedHigh < parentHigh {
                        // Only entries before the insert position left: the low key is the
                        // new first entry's; the high key can only grow.
                        let (_, high) = entry.keys
                        let (low, _) = entryKeys(b, 0, level: level)
                        updateKeysAfterAdding(level: level, index: 0, low: low,
                                              high: high > parentHigh ? high : parentHigh)
                    } else {
                        updateKeysAfterChanging(fromLevel: level)
                    }
                    return structural
                }
            }
            var rootPointer = Store.Pointer.null
            if isRoot {
                guard path.count < maxHeight else {
                    throw BTreeError.tooTall(btree: Format.name, levels: path.count + 1, maxHeight: maxHeight)
                }
                guard let p = try store.allocateBlock() else { throw BTreeError.noSpace(btree: Format.name) }
                rootPointer = p
            }
            let right = try split(level: level, entry: entry, at: pos)
            structural = true
            if isRoot {
                try makeNewRoot(at: rootPointer, over: level, right: right)
                return true
            }
            level += 1
            path[level].index += 1
            entry = right
        }
    }

    /// Opens a slot at `pos` of block `b` and writes `entry` there; logs the change.
    @inlinable
    func putEntry(_ entry: Entry, into b: BTreeBlock, handle: Store.BlockHandle, level: Int, at pos: Int) {
        let n = b.numrecs
        b.moveEntries(from: pos, to: pos + 1, count: n - pos, level: level, layout)
        switch entry {
        case .record(let r):
            Format.storeRecord(r, to: b.record(pos, layout))
        case .child(let low, let high, let p):
            Format.storeKey(low, to: b.key(pos, layout))
            if Format.isOverlapping { Format.storeKey(high, to: b.highKey(pos, layout)) }
            b.setPointer(p, pos, layout)
        }
        b.numrecs = n + 1
        logEntries(handle, level: level, from: pos, to: n + 1)
    }

    /// Logs the header and entries `[from, to)` of a block.
    @inlinable
    func logEntries(_ handle: Store.BlockHandle, level: Int, from: Int, to: Int) {
        store.markDirty(handle, range: 0..<layout.headerSize)
        guard from < to else { return }
        store.markDirty(handle, range: BTreeBlock.slotRange(from: from, to: to, level: level, layout))
        if level > 0 { store.markDirty(handle, range: BTreeBlock.pointerRange(from: from, to: to, layout)) }
    }

    /// Moves the last entry of the full block at `level` into its right sibling, if the
    /// sibling has room and the moved entry is not where the insert goes (libxfs `rshift`);
    /// under the `.batchedShifts` growth policy, entries after the insert position, up to
    /// half the sibling's room. Returns the largest high key moved, or nil when nothing
    /// moved.
    @inlinable
    mutating func shiftRightToMakeRoom(level: Int) throws -> Format.Key? {
        let b = path[level].block
        let n = b.numrecs
        let right = b.rightSibling(Store.Pointer.self)
        if right.isNull || path[level].index >= n - 1 { return nil }
        guard try siblingHasRoom(right, level: level) else { return nil }
        // Usually the sibling hangs off the same parent, in the next slot: it is held alone
        // and its keys go up through that slot of this cursor's (held) path. Otherwise a
        // cursor is moved to it, through its own parent.
        let parent = path[level + 1]
        if parent.index + 1 < parent.block.numrecs {
            guard parent.block.pointer(parent.index + 1, layout, as: Store.Pointer.self) == right else {
                throw corrupt(.siblings, level: level, "right sibling \(right) is not the next block under the parent")
            }
            let (rh, rb) = try Self.readChecked(store, layout, right, level: level, isRoot: false)
            defer { store.release(rh) }
            guard let (low, movedHigh) = moveLastEntries(of: level, into: rb, handle: rh) else { return nil }
            path[level + 1].index += 1
            updateKeysAfterAdding(level: level, index: 0, low: low, high: movedHigh)
            path[level + 1].index -= 1
            return movedHigh
        }
        let t = try siblingCursor(right, rightward: true, level: level)
        guard let (low, movedHigh) = moveLastEntries(of: level, into: t.path[level].block,
                                                     handle: t.path[level].handle!) else { return nil }
        t.updateKeysAfterAdding(level: level, index: 0, low: low, high: movedHigh)
        return movedHigh
    }

    /// The right shift's move: the last entries of the block at `level` (one, or under
    /// `.batchedShifts` those after the insert position, up to half the sibling's room) go
    /// to the start of the right sibling `rb`; both are logged. Returns the sibling's new
    /// low key and the moved entries' largest high key (the sibling only gained entries,
    /// at its start, so its keys follow without a rescan), or nil when it is full.
    @inlinable
    func moveLastEntries(of level: Int, into rb: BTreeBlock, handle rh: Store.BlockHandle) -> (Format.Key, Format.Key)? {
        let b = path[level].block
        let n = b.numrecs
        let rn = rb.numrecs
        if rn >= layout.limits.maxRecords(level: level) { return nil }
        let k = store.growthPolicy == .batchedShifts
            ? min(n - 1 - path[level].index, (layout.limits.maxRecords(level: level) - rn + 1) / 2) : 1
        let movedHigh = entriesHighKey(b, from: n - k, count: k, level: level)
        rb.moveEntries(from: 0, to: k, count: rn, level: level, layout)
        rb.copyEntries(from: b, at: n - k, to: 0, count: k, level: level, layout)
        rb.numrecs = rn + k
        b.numrecs = n - k
        logEntries(rh, level: level, from: 0, to: rn + k)
        store.markDirty(path[level].handle!, range: 0..<layout.headerSize)
        return (entryKeys(rb, 0, level: level).0, movedHigh)
    }

    /// Moves the first entry of the full block at `level` into its left sibling, if the
    /// sibling has room and the insert does not go first (libxfs `lshift`); under the
    /// `.batchedShifts` growth policy, every entry before the insert position that the
    /// sibling has room for. Returns how many entries moved and their largest high key, or
    /// nil when nothing moved.
    @inlinable
    mutating func shiftLeftToMakeRoom(level: Int) throws -> (moved: Int, high: Format.Key)? {
        let b = path[level].block
        let left = b.leftSibling(Store.Pointer.self)
        if left.isNull || path[level].index <= 0 { return nil }
        guard try siblingHasRoom(left, level: level) else { return nil }
        // As for the right shift: a sibling in the parent's previous slot is held alone, and
        // its keys go up through that slot of this cursor's path.
        let parent = path[level + 1]
        if parent.index > 0 {
            guard parent.block.pointer(parent.index - 1, layout, as: Store.Pointer.self) == left else {
                throw corrupt(.siblings, level: level, "left sibling \(left) is not the previous block under the parent")
            }
            let (lh, lb) = try Self.readChecked(store, layout, left, level: level, isRoot: false)
            defer { store.release(lh) }
            guard let (moved, at, low, high) = moveFirstEntries(of: level, into: lb, handle: lh) else { return nil }
            path[level + 1].index -= 1
            updateKeysAfterAdding(level: level, index: at, low: low, high: high)
            path[level + 1].index += 1
            return (moved, high)
        }
        let t = try siblingCursor(left, rightward: false, level: level)
        guard let (moved, at, low, high) = moveFirstEntries(of: level, into: t.path[level].block,
                                                            handle: t.path[level].handle!) else { return nil }
        t.updateKeysAfterAdding(level: level, index: at, low: low, high: high)
        return (moved, high)
    }

    /// The left shift's move: the first entries of the block at `level` (one, or under
    /// `.batchedShifts` every entry before the insert position that fits) go to the end of
    /// the left sibling `lb`; both are logged. Returns how many moved, where they start in
    /// the sibling, and their low key and largest high key (the sibling only gained
    /// entries, at its end, so its keys follow without a rescan), or nil when it is full.
    @inlinable
    func moveFirstEntries(of level: Int, into lb: BTreeBlock, handle lh: Store.BlockHandle)
        -> (moved: Int, at: Int, low: Format.Key, high: Format.Key)?
    {
        let b = path[level].block
        let n = b.numrecs
        let ln = lb.numrecs
        if ln >= layout.limits.maxRecords(level: level) { return nil }
        let k = store.growthPolicy == .batchedShifts
            ? min(path[level].index, layout.limits.maxRecords(level: level) - ln) : 1
        let movedLow = entryKeys(b, 0, level: level).0
        let movedHigh = entriesHighKey(b, from: 0, count: k, level: level)
        lb.copyEntries(from: b, at: 0, to: ln, count: k, level: level, layout)
        lb.numrecs = ln + k
        b.moveEntries(from: k, to: 0, count: n - k, level: level, layout)
        b.numrecs = n - k
        logEntries(lh, level: level, from: ln, to: ln + k)
        logEntries(path[level].handle!, level: level, from: 0, to: n - k)
        return (k, ln, movedLow, movedHigh)
    }

    /// The largest high key of entries `[from, from + count)` of block `b` at `level` (for
    /// trees without overlapping keys, the first entry's key).
    @inlinable
    func entriesHighKey(_ b: BTreeBlock, from: Int, count: Int, level: Int) -> Format.Key {
        if !Format.isOverlapping || count == 1 { return entryKeys(b, from, level: level).1 }
        if level == 0 { return Format.maxHighKey(ofRecords: b.record(from, layout), count: count) }
        var high = Format.loadKey(from: b.highKey(from, layout))
        for i in from + 1 ..< from + count {
            let h = Format.loadKey(from: b.highKey(i, layout))
            if h > high { high = h }
        }
        return high
    }

    /// Whether the sibling block at `pointer` has room for one more entry. Only looked at
    /// (a store that lends blocks), or read and released at once: when it is full this
    /// saves duplicating the whole path only to find that out.
    @inlinable
    func siblingHasRoom(_ pointer: Store.Pointer, level: Int) throws -> Bool {
        if store.isValid(pointer), let memory = store.peekBlock(pointer) {
            let b = BTreeBlock(memory)
            if Self.headerIsSane(b, store, layout, pointer, level: level, isRoot: false) {
                return b.numrecs < layout.limits.maxRecords(level: level)
            }
        }
        // Not lent, or damaged: the checked read says what is wrong.
        let (h, b) = try Self.readChecked(store, layout, pointer, level: level, isRoot: false)
        defer { store.release(h) }
        return b.numrecs < layout.limits.maxRecords(level: level)
    }

    /// The (low, high) keys of entry `i` of block `b` at `level`.
    @inlinable
    func entryKeys(_ b: BTreeBlock, _ i: Int, level: Int) -> (Format.Key, Format.Key) {
        if level == 0 {
            let r = Format.loadRecord(from: b.record(i, layout))
            return (Format.lowKey(of: r), Format.highKey(of: r))
        }
        let low = Format.loadKey(from: b.key(i, layout))
        return (low, Format.isOverlapping ? Format.loadKey(from: b.highKey(i, layout)) : low)
    }

    /// Splits the full block at `level`: a new right block takes half the entries (the odd
    /// one goes where the insert position leaves the halves even), `entry` goes into whichever
    /// half holds `pos`, the left block's keys are updated, and the new block's entry for the
    /// parent is returned (libxfs `xfs_btree_split`).
    @inlinable
    mutating func split(level: Int, entry: Entry, at pos: Int) throws -> Entry {
        let b = path[level].block
        let bPointer = path[level].pointer
        let n = b.numrecs
        let oldRight = b.rightSibling(Store.Pointer.self)
        // Acquire everything that can fail before changing anything.
        var rightNeighbour: (Store.BlockHandle, BTreeBlock)? = nil
        if !oldRight.isNull {
            rightNeighbour = try Self.readChecked(store, layout, oldRight, level: level, isRoot: false)
        }
        defer { if let (h, _) = rightNeighbour { store.release(h) } }
        guard let nPointer = try store.allocateBlock() else { throw BTreeError.noSpace(btree: Format.name) }
        let nh = try store.newBlock(nPointer)
        defer { store.release(nh) }
        let nb = BTreeBlock(store.memory(of: nh))
        nb.formatHeader(
            magic: Format.magic, level: level, numrecs: 0, left: bPointer, right: oldRight,
            blkno: store.diskAddress(of: nPointer), owner: store.owner, uuid: store.uuid)

        var rrecs = n / 2
        if n & 1 != 0 && pos <= rrecs { rrecs += 1 }
        let lrecs = n - rrecs
        nb.copyEntries(from: b, at: lrecs, to: 0, count: rrecs, level: level, layout)
        nb.numrecs = rrecs
        b.numrecs = lrecs
        b.setRightSibling(nPointer)
        if let (rh, rb) = rightNeighbour {
            rb.setLeftSibling(nPointer)
            store.markDirty(rh, range: 0..<layout.headerSize)
        }
        store.markDirty(path[level].handle!, range: 0..<layout.headerSize)
        if pos <= lrecs {
            putEntry(entry, into: b, handle: path[level].handle!, level: level, at: pos)
        } else {
            putEntry(entry, into: nb, handle: nh, level: level, at: pos - lrecs)
        }
        logEntries(nh, level: level, from: 0, to: nb.numrecs)
        updateKeys(fromLevel: level)
        let (low, high) = Self.blockKeys(nb, level: level, layout)
        return .child(low: low, high: high, pointer: nPointer)
    }

    /// Grows the tree: a new root at `rootPointer` one level above `level`, holding the old
    /// root (the block at `level`) and its new right sibling (libxfs `xfs_btree_new_root`).
    @inlinable
    mutating func makeNewRoot(at rootPointer: Store.Pointer, over level: Int, right: Entry) throws {
        let rh = try store.newBlock(rootPointer)
        let rb = BTreeBlock(store.memory(of: rh))
        rb.formatHeader(
            magic: Format.magic, level: level + 1, numrecs: 0, left: Store.Pointer.null,
            right: Store.Pointer.null, blkno: store.diskAddress(of: rootPointer), owner: store.owner,
            uuid: store.uuid)
        let (low, high) = Self.blockKeys(path[level].block, level: level, layout)
        putEntry(.child(low: low, high: high, pointer: path[level].pointer), into: rb, handle: rh, level: level + 1, at: 0)
        putEntry(right, into: rb, handle: rh, level: level + 1, at: 1)
        store.setRoot(rootPointer, height: path.count + 1)
        path.append(Level(pointer: rootPointer, handle: rh, base: rb.base, index: 0))
    }
}
