import CXFSShims

/// A position in one btree: one (block, entry index) per level, from the leaf (level 0) up to
/// the root, like libxfs' `xfs_btree_cur.bc_levels[]`.
///
/// Indices are **0-based**. At the leaf, `-1` means "before the first record" (after an LE
/// lookup below every key, or a decrement off the left edge) and `numrecs` means "after the
/// last record" (after a GE lookup or an increment off the right edge). ``record`` is nil
/// at both.
///
/// A cursor holds each block of its path through the store until it moves away, ``close()``
/// is called, or it is destroyed; it is non-copyable so that holds are released exactly once.
/// On a store that lends its blocks (`peekBlock`), a descent only visits them: nodes always,
/// and the leaf too when the descent is a lookup; the cursor holds a block before it
/// changes it.
/// Use ``duplicate()`` for a second, independently held cursor.
///
/// Every operation that reads blocks can throw: `BTreeError.corrupt` for a block that fails a
/// structural check, or the store's own error. After a thrown error the cursor's position is
/// unspecified: reposition it with a lookup or close it. A tree changed through one cursor
/// invalidates the position of every other cursor on it (as in libxfs).
///
/// Thread safety: a cursor is used by one thread.
public struct BTreeCursor<Format: BTreeRecordFormat, Store: BTreeBlockStore>: ~Copyable {
    /// One level of the path.
    @usableFromInline
    struct Level {
        /// The block's pointer.
        @usableFromInline var pointer: Store.Pointer
        /// The engine's hold on the block; nil when this level holds nothing.
        @usableFromInline var handle: Store.BlockHandle?
        /// The block's memory while held or visited.
        @usableFromInline var base: UnsafeMutableRawPointer?
        /// The entry index (0-based; see the type's documentation).
        @usableFromInline var index: Int

        @inlinable
        init(pointer: Store.Pointer, handle: Store.BlockHandle?, base: UnsafeMutableRawPointer?, index: Int) {
            self.pointer = pointer
            self.handle = handle
            self.base = base
            self.index = index
        }

        /// The block view; only while held or visited.
        @inlinable
        var block: BTreeBlock {
            @inline(__always) get { BTreeBlock(base!) }
        }
    }

    /// The store holding the tree's blocks.
    public let store: Store
    /// Block layout for this format in this store.
    public let layout: BTreeLayout
    /// The path: `path[0]` is the leaf level. Its count is the tree height seen by the last
    /// positioning operation; empty before the first one.
    ///
    /// An array, not a fixed-capacity inline array: inline, the path made the cursor about
    /// 1.4 KB, which every non-mutating engine method then copied on entry (more
    /// instructions in all than the copy-on-write checks it saved).
    @usableFromInline var path: [Level]
    /// The deepest tree this cursor will walk (the store's `maxHeight`).
    @usableFromInline let maxHeight: Int
    /// Where the last descent expects its key in the leaf, as a fraction of the leaf's
    /// records (see `leafFraction`); negative when it has no guess. Only `leafBound`, right
    /// after the descent, reads it.
    @usableFromInline var leafGuess: Double = -1

    /// A cursor on the tree in `store`, not yet positioned.
    @inlinable
    public init(store: Store) {
        self.init(store: store, layout: BTreeLayout(format: Format.self, store: store))
    }

    /// A cursor with a precomputed layout (saves recomputing limits per cursor).
    @inlinable
    public init(store: Store, layout: BTreeLayout) {
        self.init(store: store, layout: layout, reusing: PathStorage())
    }

    /// A cursor whose path lives in `storage`, taken from a closed cursor with
    /// `takePathStorage()`: a caller that makes a cursor per operation then allocates
    /// nothing per operation.
    @inlinable
    public init(store: Store, layout: BTreeLayout, reusing storage: consuming PathStorage) {
        self.store = store
        self.layout = layout
        self.maxHeight = store.maxHeight
        self.path = storage.levels
        assert(path.isEmpty, "path storage handed over with levels in it")
        if path.capacity == 0 { path.reserveCapacity(max(1, min(store.maxHeight, 32))) }
    }

    /// The memory of a closed cursor's path (see `init(store:layout:reusing:)`).
    public struct PathStorage {
        /// Hands over the memory, leaving none here.
        @inlinable
        public mutating func take() -> PathStorage {
            var taken = PathStorage()
            swap(&taken.levels, &levels)
            return taken
        }

        @usableFromInline var levels: [Level]

        /// No memory: a cursor made with it allocates its own.
        @inlinable
        public init() { levels = [] }
    }

    /// Closes the cursor and hands over its path's memory; the cursor is left closed, with
    /// no memory of its own.
    @inlinable
    public mutating func takePathStorage() -> PathStorage {
        close()
        var storage = PathStorage()
        swap(&storage.levels, &path)
        return storage
    }

    @inlinable
    deinit {
        var i = 0
        while i < path.count {
            if let h = path[i].handle { store.release(h) }
            i += 1
        }
    }

    /// Releases every block the cursor holds; it must be positioned again before use.
    /// Keeps its path storage, so a long-lived cursor allocates nothing per operation.
    @inlinable
    public mutating func close() {
        for i in path.indices {
            if let h = path[i].handle { store.release(h) }
        }
        path.removeAll(keepingCapacity: true)
    }

    /// Gives back every block the cursor holds and forgets its position, but keeps its
    /// levels: the next lookup positions it again with no allocation, which makes a cursor
    /// kept for many short reads cheaper than a new one per read.
    @inlinable
    public mutating func releaseHolds() {
        var i = 0
        while i < path.count {
            if let h = path[i].handle {
                store.release(h)
                path[i].handle = nil
            }
            path[i].base = nil
            i += 1
        }
    }

    /// A second cursor at the same position, holding its own references to the blocks
    /// (libxfs `xfs_btree_dup_cursor`).
    @inlinable
    public func duplicate() throws -> BTreeCursor {
        try duplicate(fromLevel: 0)
    }

    /// A duplicate holding only levels `start...`; lower levels hold nothing. Levels this
    /// cursor only visits (see `visit`) are visited by the duplicate too.
    @inlinable
    func duplicate(fromLevel start: Int) throws -> BTreeCursor {
        var c = BTreeCursor(store: store, layout: layout)
        c.path = path
        for i in c.path.indices where i < start {
            c.path[i].handle = nil
            c.path[i].base = nil
        }
        var i = start
        while i < c.path.count {
            if c.path[i].handle != nil {
                do {
                    let h = try store.readBlock(c.path[i].pointer)
                    c.path[i].handle = h
                    c.path[i].base = store.memory(of: h)
                } catch {
                    for j in i..<c.path.count {
                        c.path[j].handle = nil
                        c.path[j].base = nil
                    }
                    throw error
                }
            }
            i += 1
        }
        return c
    }

    // MARK: Position

    /// The tree height as seen by the last positioning operation (0 before any).
    @inlinable
    public var height: Int { path.count }

    /// Whether the cursor rests on a record.
    @inlinable
    public var isAtRecord: Bool {
        guard let first = path.first, first.base != nil else { return false }
        return first.index >= 0 && first.index < first.block.numrecs
    }

    /// The entry index at `level` (0-based; -1 or numrecs at the leaf edges).
    @inlinable
    public func index(atLevel level: Int) -> Int {
        precondition(level >= 0 && level < path.count, "level \(level) outside the cursor's \(path.count) levels")
        return path[level].index
    }

    /// The pointer of the block the cursor is in at `level`.
    @inlinable
    public func pointer(atLevel level: Int) -> Store.Pointer {
        precondition(level >= 0 && level < path.count, "level \(level) outside the cursor's \(path.count) levels")
        return path[level].pointer
    }

    /// The record at the cursor, or nil when the cursor is before the first or after the last
    /// record (libxfs `xfs_btree_get_rec`).
    @inlinable
    public var record: Format.Record? {
        guard !path.isEmpty, path[0].base != nil else { return nil }
        let b = path[0].block
        let i = path[0].index
        guard i >= 0 && i < b.numrecs else { return nil }
        return Format.loadRecord(from: b.record(i, layout))
    }

    // MARK: Reading blocks

    /// Reads the block at `pointer`, expected at `level`, and checks its header; releases it
    /// and throws `BTreeError.corrupt` if a check fails. With `probes` (a descent that is
    /// about to search the block and could not ask for its lines before the read), the
    /// lines of the search's first probes are asked for with the header (see
    /// `prefetchProbes`); every other read walks the block from an end, or not at all.
    @inlinable
    static func readChecked(
        _ store: Store, _ layout: BTreeLayout, _ pointer: Store.Pointer, level: Int, isRoot: Bool,
        probes: Bool = false
    ) throws -> (Store.BlockHandle, BTreeBlock) {
        guard !pointer.isNull, store.isValid(pointer) else {
            throw BTreeError.corrupt(
                btree: Format.name,
                BTreeFault(.pointer, pointer: UInt64(pointer), level: level, detail: "invalid block pointer"))
        }
        let h = try store.readBlock(pointer)
        let b = BTreeBlock(store.memory(of: h))
        // A block's first search probes sit at fixed places (see `leafBound`): ask for
        // them now, so they arrive with the header instead of after it.
        if probes { prefetchProbes(b, layout, level: level) }
        if !headerIsSane(b, store, layout, pointer, level: level, isRoot: isRoot),
           let fault = headerFault(b, store, layout, pointer, level: level, isRoot: isRoot) {
            store.release(h)
            throw BTreeError.corrupt(btree: Format.name, fault)
        }
        return (h, b)
    }

    /// Whether `headerFault` would find nothing: the same checks, as one expression with no
    /// fault to build, for the read path (the fault, with its text, only when this fails).
    @inlinable @inline(__always)
    static func headerIsSane(
        _ b: BTreeBlock, _ store: Store, _ layout: BTreeLayout, _ pointer: Store.Pointer,
        level: Int, isRoot: Bool
    ) -> Bool {
        let n = b.numrecs
        let left = b.leftSibling(Store.Pointer.self)
        let right = b.rightSibling(Store.Pointer.self)
        return b.magic == Format.magic && b.level == level
            && n <= layout.limits.maxRecords(level: level) && (n > 0 || (level == 0 && isRoot))
            && b.blkno(layout.headerFormat) == store.diskAddress(of: pointer)
            && left != pointer && right != pointer
            && (left.isNull || store.isValid(left)) && (right.isNull || store.isValid(right))
    }

    /// Prefetches the entries of a search's first three probes (all seven candidates),
    /// which `leafBound` and `descend` place by the block's capacity, so they are known
    /// before its header is read: records at a leaf, low keys at a node.
    @inlinable @inline(__always)
    static func prefetchProbes(_ b: BTreeBlock, _ layout: BTreeLayout, level: Int) {
        let n = layout.limits.maxRecords(level: level)
        guard n >= 32 else { return }
        let first = b.base + layout.headerSize
        let stride = layout.slotSize(level: level)
        // The halvings of `countPreceding`: step k probes base + half_k, where base is a
        // sum of earlier halves.
        let h1 = n &>> 1
        let h2 = (n &- h1) &>> 1
        let h3 = (n &- h1 &- h2) &>> 1
        cxfs_prefetch(first + h1 &* stride)
        cxfs_prefetch(first + h2 &* stride)
        cxfs_prefetch(first + (h1 &+ h2) &* stride)
        cxfs_prefetch(first + h3 &* stride)
        cxfs_prefetch(first + (h2 &+ h3) &* stride)
        cxfs_prefetch(first + (h1 &+ h3) &* stride)
        cxfs_prefetch(first + (h1 &+ h2 &+ h3) &* stride)
    }

    /// Prefetches the lines of entries `[lo, hi)` of a block's entries `stride` bytes
    /// apart: what a search has left after its fixed probes.
    @inlinable @inline(__always)
    static func prefetchRange(_ b: BTreeBlock, _ layout: BTreeLayout, stride: Int, _ lo: Int, _ hi: Int) {
        let start = b.base + (layout.headerSize &+ lo &* stride)
        let end = b.base + (layout.headerSize &+ hi &* stride)
        var line = UnsafeMutableRawPointer(bitPattern: UInt(bitPattern: start) & ~63)
        while let address = line, address < end {
            cxfs_prefetch(address)
            line = address + 64
        }
    }

    /// The header checks of every read (magic, level, numrecs, blkno, siblings), naming the
    /// first that fails; the read path calls it only when `headerIsSane` says one does.
    @inlinable @inline(never)
    static func headerFault(
        _ b: BTreeBlock, _ store: Store, _ layout: BTreeLayout, _ pointer: Store.Pointer,
        level: Int, isRoot: Bool
    ) -> BTreeFault? {
        let p = UInt64(pointer)
        if b.magic != Format.magic {
            return BTreeFault(.magic, pointer: p, level: level,
                              detail: "magic 0x\(String(b.magic, radix: 16)), expected 0x\(String(Format.magic, radix: 16))")
        }
        if b.level != level {
            return BTreeFault(.level, pointer: p, level: level, detail: "header level \(b.level), expected \(level)")
        }
        let n = b.numrecs
        let maxr = layout.limits.maxRecords(level: level)
        if n > maxr || (n == 0 && (level > 0 || !isRoot)) {
            return BTreeFault(.numrecs, pointer: p, level: level, detail: "numrecs \(n), max \(maxr)")
        }
        let blkno = b.blkno(layout.headerFormat)
        let expected = store.diskAddress(of: pointer)
        if blkno != expected {
            return BTreeFault(.blkno, pointer: p, level: level, detail: "blkno \(blkno), expected \(expected)")
        }
        let left = b.leftSibling(Store.Pointer.self)
        let right = b.rightSibling(Store.Pointer.self)
        if left == pointer || right == pointer
            || (!left.isNull && !store.isValid(left)) || (!right.isNull && !store.isValid(right))
        {
            return BTreeFault(.siblings, pointer: p, level: level, detail: "bad siblings left \(left.pointerText) right \(right.pointerText)")
        }
        return nil
    }

    /// Makes `path[level]` show the block at `pointer`, unheld when the store lends blocks
    /// (`peekBlock`), else held as `load` does. Only for reading: the engine calls
    /// `hold` or `holdPath()` before it changes a block. The header is checked as on every
    /// read. `probes` as for `readChecked`.
    @inlinable
    mutating func visit(_ level: Int, _ pointer: Store.Pointer, probes: Bool) throws {
        if path[level].base != nil && path[level].pointer == pointer { return }
        guard !pointer.isNull, store.isValid(pointer), let memory = store.peekBlock(pointer) else {
            try load(level, pointer, probes: probes)
            return
        }
        if let h = path[level].handle {
            store.release(h)
            path[level].handle = nil
        }
        let b = BTreeBlock(memory)
        let isRoot = level == path.count - 1
        if probes { Self.prefetchProbes(b, layout, level: level) }
        if !Self.headerIsSane(b, store, layout, pointer, level: level, isRoot: isRoot),
           let fault = Self.headerFault(b, store, layout, pointer, level: level, isRoot: isRoot) {
            path[level].base = nil
            throw BTreeError.corrupt(btree: Format.name, fault)
        }
        path[level].pointer = pointer
        path[level].base = memory
    }

    /// Takes a hold on every level that a descent only visited (see `visit`), so that
    /// the path's blocks can be changed and duplicated.
    @inlinable
    mutating func holdPath() throws {
        var level = 0
        while level < path.count {
            try hold(level)
            level += 1
        }
    }

    /// Takes a hold on `path[level]` if it is only visited.
    @inlinable @inline(__always)
    mutating func hold(_ level: Int) throws {
        if path[level].handle == nil, path[level].base != nil {
            let (h, b) = try Self.readChecked(store, layout, path[level].pointer, level: level,
                                              isRoot: level == path.count - 1)
            path[level].handle = h
            path[level].base = b.base
        }
    }

    /// Makes `path[level]` hold the block at `pointer` (reusing the hold if it already does).
    /// `probes` as for `readChecked`.
    @inlinable
    mutating func load(_ level: Int, _ pointer: Store.Pointer, probes: Bool = false) throws {
        if let h = path[level].handle {
            if path[level].pointer == pointer { return }
            store.release(h)
            path[level].handle = nil
            path[level].base = nil
        }
        let (h, b) = try Self.readChecked(store, layout, pointer, level: level, isRoot: level == path.count - 1,
                                          probes: probes)
        path[level].pointer = pointer
        path[level].handle = h
        path[level].base = b.base
    }

    /// Drops the hold (or the visit) at `level` (used before freeing a block).
    @inlinable
    mutating func unload(_ level: Int) {
        if let h = path[level].handle { store.release(h) }
        path[level].handle = nil
        path[level].base = nil
    }

    /// Sizes the path to the store's height; throws if the height is absurd.
    @inlinable
    mutating func preparePath() throws -> Int {
        let h = store.height
        guard h >= 1 && h <= maxHeight else {
            throw BTreeError.corrupt(
                btree: Format.name,
                BTreeFault(.height, pointer: UInt64(store.root), detail: "height \(h), allowed 1...\(maxHeight)"))
        }
        while path.count > h {
            if let hd = path.removeLast().handle { store.release(hd) }
        }
        while path.count < h {
            path.append(Level(pointer: .null, handle: nil, base: nil, index: 0))
        }
        return h
    }

    /// A corruption error at `level` of the path.
    @inlinable
    func corrupt(_ check: BTreeCheck, level: Int, _ detail: String) -> BTreeError {
        .corrupt(btree: Format.name, BTreeFault(check, pointer: UInt64(path[level].pointer), level: level, detail: detail))
    }

    // MARK: Moving

    /// Moves levels `level...` to the next block at `level` (index 0 there), climbing to the
    /// first ancestor with an entry to the right; false (path unchanged) at the right edge.
    @inlinable
    mutating func stepRight(atLevel level: Int) throws -> Bool {
        var lev = level + 1
        while lev < path.count && path[lev].index + 1 >= path[lev].block.numrecs { lev += 1 }
        if lev >= path.count { return false }
        path[lev].index += 1
        while lev > level {
            let p = path[lev].block.pointer(path[lev].index, layout, as: Store.Pointer.self)
            lev -= 1
            try load(lev, p)
            path[lev].index = 0
            // A walk to the right reads every child of a node it enters.
            if lev > 0 { Self.readAheadChildren(of: path[lev].block, layout, store) }
        }
        return true
    }

    /// Asks `store` to start reading every child of node `b` (`BTreeBlockStore.readAhead`).
    @inlinable
    static func readAheadChildren(of b: BTreeBlock, _ layout: BTreeLayout, _ store: Store) {
        for i in 0..<b.numrecs { store.readAhead(b.pointer(i, layout, as: Store.Pointer.self)) }
    }

    /// Moves levels `level...` to the previous block at `level` (its last entry); false
    /// (path unchanged) at the left edge.
    @inlinable
    mutating func stepLeft(atLevel level: Int) throws -> Bool {
        var lev = level + 1
        while lev < path.count && path[lev].index <= 0 { lev += 1 }
        if lev >= path.count { return false }
        path[lev].index -= 1
        while lev > level {
            let p = path[lev].block.pointer(path[lev].index, layout, as: Store.Pointer.self)
            lev -= 1
            try load(lev, p)
            path[lev].index = path[lev].block.numrecs - 1
        }
        return true
    }

    /// A duplicate of this cursor moved to the sibling at `level` (`rightward`: the next
    /// block, else the previous one), which must be the block `pointer` names, reached
    /// through its own parent (how a shift, borrow or join gets at a sibling).
    @inlinable
    func siblingCursor(_ pointer: Store.Pointer, rightward: Bool, level: Int) throws -> BTreeCursor {
        var t = try duplicate(fromLevel: level)
        let moved = rightward ? try t.stepRight(atLevel: level) : try t.stepLeft(atLevel: level)
        guard moved, t.path[level].pointer == pointer else {
            throw corrupt(.siblings, level: level, rightward
                ? "right sibling \(pointer.pointerText) is not the next block under the parent"
                : "left sibling \(pointer.pointerText) is not the previous block under the parent")
        }
        return t
    }

    /// Moves to the next record, across leaves; false at the end of the tree (the cursor then
    /// rests after the last record). libxfs `xfs_btree_increment`.
    @inlinable
    public mutating func increment() throws -> Bool {
        precondition(!path.isEmpty && path[0].base != nil, "increment on an unpositioned btree cursor")
        let n = path[0].block.numrecs
        let i = path[0].index + 1
        if i < n {
            path[0].index = i
            return true
        }
        path[0].index = n
        return try stepRight(atLevel: 0)
    }

    /// Moves to the previous record, across leaves; false at the start of the tree (the
    /// cursor then rests before the first record). libxfs `xfs_btree_decrement`.
    @inlinable
    public mutating func decrement() throws -> Bool {
        precondition(!path.isEmpty && path[0].base != nil, "decrement on an unpositioned btree cursor")
        let i = path[0].index - 1
        if i >= 0 && i < path[0].block.numrecs {
            path[0].index = i
            return true
        }
        path[0].index = -1
        return try stepLeft(atLevel: 0)
    }

    /// Overwrites the record at the cursor and brings the keys above up to date
    /// (libxfs `xfs_btree_update`). The new record must keep the tree's key order.
    @inlinable
    public mutating func update(_ record: Format.Record) throws {
        precondition(isAtRecord, "update needs a cursor resting on a record")
        try holdPath()
        let i = path[0].index
        Format.storeRecord(record, to: path[0].block.record(i, layout))
        store.markDirty(path[0].handle!, range: BTreeBlock.slotRange(from: i, to: i + 1, level: 0, layout))
        updateKeys(fromLevel: 0)
        #if BTREE_INTERNAL_CHECKS
        checkInvariants()
        #endif
    }
}

/// How a lookup matches its key (libxfs `XFS_LOOKUP_LE/GE/EQ`).
public enum BTreeLookupMode: Sendable {
    /// The last record whose low key is <= the search key.
    case lessOrEqual
    /// The first record whose low key is >= the search key (moving into the next leaf).
    case greaterOrEqual
    /// The first record whose low key equals the search key.
    case equal
}
