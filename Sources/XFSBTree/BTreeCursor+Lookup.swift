extension BTreeCursor {
    /// Descends from the root to the leaf that may hold `key`: at each node, the last entry
    /// whose low key is <= `key` (or the first entry when none is). Returns with the leaf held.
    @inlinable
    mutating func descend(to key: Format.Key) throws {
        let h = try preparePath()
        var ptr = store.root
        var level = h - 1
        while level > 0 {
            try load(level, ptr)
            let b = path[level].block
            var lo = 0
            var hi = b.numrecs
            while lo < hi {
                let mid = (lo &+ hi) &>> 1
                if Format.loadKey(from: b.key(mid, layout)) <= key { lo = mid &+ 1 } else { hi = mid }
            }
            let i = lo > 0 ? lo - 1 : 0
            path[level].index = i
            ptr = b.pointer(i, layout, as: Store.Pointer.self)
            level -= 1
        }
        try load(0, ptr)
    }

    /// The index of the first leaf record whose low key is >= `key` (`strict`: > `key`).
    @inlinable @inline(__always)
    func leafBound(_ key: Format.Key, strict: Bool) -> Int {
        let b = path[0].block
        var lo = 0
        var hi = b.numrecs
        while lo < hi {
            let mid = (lo &+ hi) &>> 1
            let k = Format.loadLowKey(fromRecord: b.record(mid, layout))
            if k < key || (strict && k == key) { lo = mid &+ 1 } else { hi = mid }
        }
        return lo
    }

    /// Positions the cursor by `key` (libxfs `xfs_btree_lookup`) and says whether a record
    /// matched: LE rests on the last record <= key (or before the first record: false); GE on
    /// the first record >= key, moving into the next leaf (or after the last: false); EQ on the
    /// first record >= key and is true when its key equals `key`. An empty tree is one empty
    /// leaf, where every lookup is false.
    @inlinable
    public mutating func lookup(_ key: Format.Key, _ mode: BTreeLookupMode) throws -> Bool {
        try descend(to: key)
        switch mode {
        case .lessOrEqual:
            let i = leafBound(key, strict: true) - 1
            path[0].index = i
            return i >= 0
        case .greaterOrEqual, .equal:
            let i = leafBound(key, strict: false)
            path[0].index = i
            let b = path[0].block
            if i < b.numrecs {
                return mode == .greaterOrEqual || Format.loadLowKey(fromRecord: b.record(i, layout)) == key
            }
            if mode == .equal { return false }
            return try stepRight(atLevel: 0)
        }
    }

    /// Positions the cursor on the first record; false (before the first) when the tree is
    /// empty. libxfs `goto_left_edge` plus an increment.
    @inlinable
    public mutating func moveToFirst() throws -> Bool {
        let h = try preparePath()
        var ptr = store.root
        var level = h - 1
        while true {
            try load(level, ptr)
            path[level].index = 0
            if level == 0 { break }
            ptr = path[level].block.pointer(0, layout, as: Store.Pointer.self)
            level -= 1
        }
        return path[0].block.numrecs > 0
    }

    /// Positions the cursor on the last record; false when the tree is empty.
    @inlinable
    public mutating func moveToLast() throws -> Bool {
        let h = try preparePath()
        var ptr = store.root
        var level = h - 1
        while true {
            try load(level, ptr)
            let n = path[level].block.numrecs
            path[level].index = n - 1
            if level == 0 { return n > 0 }
            ptr = path[level].block.pointer(n - 1, layout, as: Store.Pointer.self)
            level -= 1
        }
    }
}
