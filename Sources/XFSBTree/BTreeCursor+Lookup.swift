import CXFSShims

extension BTreeCursor {
    /// Descends from the root to the leaf that may hold `key`: at each node, the last entry
    /// whose low key is <= `key` (or the first entry when none is). Returns with the leaf
    /// held for an insert, else visited (see `visit`): a lookup that only reads, as most do,
    /// then touches no buffer at all on a store that lends blocks.
    ///
    /// When the blocks the cursor already holds are the ones this descent would choose (see
    /// `heldPathLeads(to:height:)`), nothing is searched again: a caller's lookups near
    /// each other (the rmap `map` operation makes four) cost a few key comparisons.
    ///
    /// The parent of the leaf guesses where in the leaf the key sits (`leafFraction`), and
    /// the lines the leaf's search will read are asked for at once. With `forInsert`, the
    /// lines from there to the leaf's end are asked for, for writing: an insert shifts the
    /// records after its place, on average half the leaf, and those lines then arrive with
    /// the search's instead of one after another in the shift; the leaf's buffer, which the
    /// insert holds at once, is asked for too (`prefetchHold`).
    @inlinable
    mutating func descend(to key: Format.Key, forInsert: Bool = false) throws {
        leafGuess = -1
        let h = try preparePath()
        if h > 1 && heldPathLeads(to: key, height: h) {
            assert(searchedIndicesMatchPath(key), "the held path disagrees with a searched descent")
            return
        }
        var ptr = store.root
        var level = h - 1
        // Whether the lines the search of the block at `level` reads were asked for from
        // the level above (the store says where its blocks are); else the read asks for
        // its search's first probes.
        var prefetched = false
        while level > 0 {
            try visit(level, ptr, probes: !prefetched)
            let i = nodeBound(key, level: level)
            path[level].index = i
            ptr = path[level].block.pointer(i, layout, as: Store.Pointer.self)
            level -= 1
            if level > 0 {
                prefetched = Self.prefetchBlock(store, layout, ptr, level: level)
                continue
            }
            leafGuess = Self.leafFraction(of: key, entry: i, of: path[1].block, layout)
            if forInsert {
                store.prefetchHold(of: ptr)
                prefetched = Self.prefetchTailForInsert(store, layout, ptr, fraction: leafGuess)
            } else if leafGuess >= 0 {
                prefetched = Self.prefetchGuessedRecords(store, layout, ptr, fraction: leafGuess)
            } else {
                prefetched = Self.prefetchBlock(store, layout, ptr, level: 0)
            }
        }
        if forInsert { try load(0, ptr, probes: !prefetched) } else { try visit(0, ptr, probes: !prefetched) }
    }

    /// The entry a descent to `key` takes at `level`: the last whose low key is <= `key`,
    /// or the first when none is. Searched over the node's capacity, as `leafBound` is.
    @inlinable @inline(__always)
    func nodeBound(_ key: Format.Key, level: Int) -> Int {
        let preceding = Self.countPreceding(path[level].block, layout, level: level) {
            Format.loadKey(from: $0) <= key
        }
        return preceding > 0 ? preceding - 1 : 0
    }

    /// How many of a block's entries satisfy `precedes` (which must hold for a prefix of
    /// them: entries sorted by the key it compares), by a binary search over the block's
    /// capacity. Slots past the last entry count as not preceding; they are read (they lie
    /// inside the block) but their bytes never decide anything.
    ///
    /// Each step halves the candidate range without a branch on the comparison (a
    /// conditional move), so random keys cost no mispredicted jumps. The first three
    /// steps probe fixed slots, whose lines `prefetchProbes` asks for when the block is
    /// read; before the fourth, the lines of the range left are asked for at once.
    @inlinable @inline(__always)
    static func countPreceding(
        _ b: BTreeBlock, _ layout: BTreeLayout, level: Int, _ precedes: (UnsafeMutableRawPointer) -> Bool
    ) -> Int {
        let n = b.numrecs
        let stride = layout.slotSize(level: level)
        let first = b.base + layout.headerSize
        var base = 0
        var length = max(n, layout.limits.maxRecords(level: level))
        var step = 0
        while length > 1 {
            step &+= 1
            if step == 4 { prefetchRange(b, layout, stride: stride, base, min(base &+ length, n)) }
            let half = length &>> 1
            let mid = base &+ half
            let inside = mid < n
            let before = precedes(first + mid &* stride)
            base = inside && before ? mid : base
            length &-= half
        }
        let inside = base < n
        let before = precedes(first + base &* stride)
        return inside && before ? base &+ 1 : base
    }

    /// Asks for the lines of the block at `pointer` that reading and searching it touches
    /// first (the header; at a leaf, the first probes' records), when the store can say
    /// where the block is before it is got: the memory then arrives while the store finds
    /// the block's buffer.
    /// Returns whether it could (the store gave the block's address).
    @inlinable @inline(__always)
    static func prefetchBlock(_ store: Store, _ layout: BTreeLayout, _ pointer: Store.Pointer, level: Int) -> Bool {
        guard let address = store.prefetchAddress(of: pointer) else { return false }
        let b = BTreeBlock(UnsafeMutableRawPointer(mutating: address))
        cxfs_prefetch(address)
        prefetchProbes(b, layout, level: level)
        return true
    }

    /// How far (in records) a leaf search trusts a guess: it looks within this many records
    /// on either side of the guessed place before it falls back to the binary search.
    ///
    /// Where the k-th of n evenly spread keys lands strays from k by about sqrt(n)/2
    /// records (6 in a full 4 KiB rmap leaf), and a missed guess costs a binary search
    /// whose lines nobody asked for: two or three more waits for memory. In the 1M-record
    /// benchmark 9.1 % of leaf searches missed with a radius of 8, 1.8 % with 12, 0.3 %
    /// with 16; the window's few extra lines are contiguous and arrive together.
    @inlinable
    static var guessRadius: Int { 16 }

    /// Where a search for `key` should land in the leaf under entry `i` of `node`, as a
    /// fraction of the leaf's records (0 at the first, 1 past the last), interpolated from
    /// the key range the entry gives the leaf: its low key and its high key (overlapping
    /// trees) or the next entry's low key. Negative when the format makes no guesses
    /// (`interpolationPosition`) or the range is empty.
    @inlinable @inline(__always)
    static func leafFraction(of key: Format.Key, entry i: Int, of node: BTreeBlock, _ layout: BTreeLayout) -> Double {
        guard let position = Format.interpolationPosition(of: key),
              let low = Format.interpolationPosition(of: Format.loadKey(from: node.key(i, layout)))
        else { return -1 }
        let bound: Format.Key
        if Format.isOverlapping {
            bound = Format.loadKey(from: node.highKey(i, layout))
        } else if i + 1 < node.numrecs {
            bound = Format.loadKey(from: node.key(i + 1, layout))
        } else {
            return -1
        }
        guard let high = Format.interpolationPosition(of: bound), high > low else { return -1 }
        if position <= low { return 0 }
        if position >= high { return 1 }
        return Double(position - low) / Double(high - low)
    }

    /// Asks for the header line of the leaf at `pointer` and the lines of the records a
    /// search guided by `fraction` can look at: whatever the leaf's record count (between
    /// the minimum and the maximum), the guessed place and `guessRadius` records around it.
    /// One wait for memory instead of the binary search's two. Returns whether it could
    /// (the store gave the block's address).
    @inlinable @inline(__always)
    static func prefetchGuessedRecords(_ store: Store, _ layout: BTreeLayout, _ pointer: Store.Pointer, fraction: Double) -> Bool {
        guard let address = store.prefetchAddress(of: pointer) else { return false }
        cxfs_prefetch(address)
        let window = guessedRecords(fraction: fraction, layout)
        prefetchRange(BTreeBlock(UnsafeMutableRawPointer(mutating: address)), layout,
                      stride: layout.slotSize(level: 0), window.lowerBound, window.upperBound)
        return true
    }

    /// The records a search guided by `fraction` can look at in a leaf of any valid fill:
    /// `guessRadius` around the guessed place in a leaf at its minimum and at its maximum.
    @inlinable @inline(__always)
    static func guessedRecords(fraction: Double, _ layout: BTreeLayout) -> Range<Int> {
        let minr = layout.limits.minRecords(level: 0), maxr = layout.limits.maxRecords(level: 0)
        let lo = max(0, Int(fraction * Double(minr)) &- guessRadius)
        return lo..<max(lo, min(maxr, Int(fraction * Double(maxr)) &+ guessRadius))
    }

    /// Asks, for writing, for the lines an insert into the leaf at `pointer` touches: from
    /// the first record a search guided by `fraction` can look at (the header and the whole
    /// block without a guess) to the end of the leaf's records, which the insert shifts.
    /// Returns whether it could (the store gave the block's address).
    @inlinable @inline(__always)
    static func prefetchTailForInsert(_ store: Store, _ layout: BTreeLayout, _ pointer: Store.Pointer, fraction: Double) -> Bool {
        guard let address = store.prefetchAddress(of: pointer) else { return false }
        var offset = 0
        if fraction >= 0 {
            cxfs_prefetch_for_write(address)
            let first = guessedRecords(fraction: fraction, layout).lowerBound
            offset = (layout.headerSize &+ first &* layout.slotSize(level: 0)) & ~63
        }
        let end = layout.headerSize &+ layout.limits.maxRecords(level: 0) &* layout.slotSize(level: 0)
        while offset < end {
            cxfs_prefetch_for_write(address + offset)
            offset &+= 64
        }
        return true
    }

    /// Whether a descent to `key` would choose exactly the entries and blocks the cursor
    /// holds now: from the root down, each held node's entry is the last one whose key is
    /// <= `key` (or the first, when none is), and the block below is the one that entry
    /// points to. Two key comparisons per level instead of a binary search, and no block is
    /// got again. On nodes with sorted keys (every valid node) this equals the descent.
    @inlinable @inline(__always)
    func heldPathLeads(to key: Format.Key, height h: Int) -> Bool {
        guard path[h - 1].base != nil, path[h - 1].pointer == store.root else { return false }
        var level = h - 1
        while level > 0 {
            let b = path[level].block
            let i = path[level].index, n = b.numrecs
            guard i >= 0 && i < n else { return false }
            if i > 0 && !(Format.loadKey(from: b.key(i, layout)) <= key) { return false }
            if i + 1 < n && Format.loadKey(from: b.key(i + 1, layout)) <= key { return false }
            guard path[level - 1].base != nil,
                  path[level - 1].pointer == b.pointer(i, layout, as: Store.Pointer.self) else { return false }
            level -= 1
        }
        return true
    }

    /// Debug cross-check of `heldPathLeads`: each held node's index is what the descent's
    /// binary search picks.
    @usableFromInline
    func searchedIndicesMatchPath(_ key: Format.Key) -> Bool {
        for level in 1..<path.count {
            let b = path[level].block
            var lo = 0, hi = b.numrecs
            while lo < hi {
                let mid = (lo + hi) / 2
                if Format.loadKey(from: b.key(mid, layout)) <= key { lo = mid + 1 } else { hi = mid }
            }
            if path[level].index != (lo > 0 ? lo - 1 : 0) { return false }
        }
        return true
    }

    /// The index of the first leaf record whose low key is >= `key` (`strict`: > `key`).
    ///
    /// A leaf is 4 KiB that is seldom in cache, and each probe of a plain binary search waits
    /// for the line the previous one chose. So the search runs over the leaf's capacity (see
    /// `countPreceding`): its first probes are at fixed places, whose lines were asked for
    /// with the header (`prefetchProbes`), and the lines of the range left after three
    /// probes are asked for at once: about two waits for memory instead of seven.
    ///
    /// When the descent guessed where the key sits (`leafGuess`), the search starts there
    /// (`countPrecedingNear`).
    @inlinable @inline(__always)
    func leafBound(_ key: Format.Key, strict: Bool) -> Int {
        if strict {
            return leafSearch { Format.loadLowKey(fromRecord: $0) <= key }
        }
        return leafSearch { Format.loadLowKey(fromRecord: $0) < key }
    }

    /// `countPreceding` over the leaf, from the descent's guess when it made one.
    @inlinable @inline(__always)
    func leafSearch(_ precedes: (UnsafeMutableRawPointer) -> Bool) -> Int {
        let b = path[0].block
        guard leafGuess >= 0 else { return Self.countPreceding(b, layout, level: 0, precedes) }
        let guess = Int(leafGuess * Double(b.numrecs))
        return Self.countPrecedingNear(b, layout, guess: guess, precedes)
    }

    /// `countPreceding` at a leaf, for a search that guesses the answer is near `guess`:
    /// when the records just outside `guess ± guessRadius` show that the count lies
    /// inside, a binary search of that window (whose lines the descent asked for); else
    /// the whole search. The answer is the same either way, as long as `precedes` holds
    /// for a prefix of the records.
    @inlinable @inline(__always)
    static func countPrecedingNear(
        _ b: BTreeBlock, _ layout: BTreeLayout, guess: Int, _ precedes: (UnsafeMutableRawPointer) -> Bool
    ) -> Int {
        let n = b.numrecs
        let stride = layout.slotSize(level: 0)
        let first = b.base + layout.headerSize
        let lo = max(0, min(n, guess &- guessRadius))
        let hi = max(0, min(n, guess &+ guessRadius))
        // The count is at least lo when record lo - 1 precedes, at most hi when record hi
        // does not.
        guard lo == 0 || precedes(first + (lo &- 1) &* stride),
              hi == n || !precedes(first + hi &* stride)
        else { return countPreceding(b, layout, level: 0, precedes) }
        var base = lo
        var length = hi &- lo
        while length > 0 {
            let half = length &>> 1
            if precedes(first + (base &+ half) &* stride) {
                base &+= half &+ 1
                length &-= half &+ 1
            } else {
                length = half
            }
        }
        return base
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
    /// empty. libxfs `goto_left_edge` plus an increment. This starts a walk to the right:
    /// the store is asked to read ahead the children of each node on the way down.
    @inlinable
    public mutating func moveToFirst() throws -> Bool {
        let h = try preparePath()
        var ptr = store.root
        var level = h - 1
        while true {
            try load(level, ptr)
            path[level].index = 0
            if level == 0 { break }
            Self.readAheadChildren(of: path[level].block, layout, store)
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
