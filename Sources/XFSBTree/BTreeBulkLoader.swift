/// The shape of a bulk-loaded tree (libxfs `xfs_btree_bload_compute_geometry`).
public struct BTreeBulkGeometry: Sendable, Hashable {
    /// One level of the planned tree.
    public struct Level: Sendable, Hashable {
        /// Entries at this level (records at level 0, child blocks above).
        public var entries: Int
        /// Blocks at this level.
        public var blocks: Int
        /// Entries in each block, before extras.
        public var entriesPerBlock: Int
        /// How many blocks (the first ones) take one extra entry.
        public var blocksWithExtra: Int

        /// The entry count of block `j` of this level.
        @inlinable
        public func entries(inBlock j: Int) -> Int { entriesPerBlock + (j < blocksWithExtra ? 1 : 0) }
    }

    /// Levels from the leaves (index 0) to the root (one block).
    public var levels: [Level]
    /// Records to load.
    public var recordCount: Int
    /// Free slots wanted per leaf after clamping (maxrecs - desired fill).
    public var leafSlack: Int
    /// Free slots wanted per node after clamping.
    public var nodeSlack: Int

    /// The tree height.
    @inlinable public var height: Int { levels.count }
    /// Blocks the load will claim.
    @inlinable public var totalBlocks: Int { levels.reduce(0) { $0 + $1.blocks } }

    /// Plans a tree of `recordCount` records under `limits`. A nil or negative slack means the
    /// default `maxrecs - (maxrecs + minrecs) / 2` (about 75% full); slack is capped at
    /// `maxrecs - minrecs`. Each level fills blocks with `max(minrecs, maxrecs - slack)`
    /// entries, spreads the remainder one per block over the first blocks, and adds a block
    /// if that would pass maxrecs; entries that fit one block make the root (which only needs
    /// one entry); non-leaf blocks get at least two entries. Throws `BTreeError.tooTall` past `maxHeight` levels.
    public init(
        recordCount: Int, limits: BTreeRecordLimits, leafSlack: Int? = nil, nodeSlack: Int? = nil,
        maxHeight: Int, btree: String = "btree"
    ) throws {
        precondition(recordCount >= 0, "negative record count \(recordCount)")
        func clamp(_ slack: Int?, _ level: Int) -> Int {
            let maxr = limits.maxRecords(level: level)
            let minr = limits.minRecords(level: level)
            let s = (slack ?? -1) < 0 ? maxr - (maxr + minr) / 2 : slack!
            return min(s, maxr - minr)
        }
        self.recordCount = recordCount
        self.leafSlack = clamp(leafSlack, 0)
        self.nodeSlack = clamp(nodeSlack, 1)
        var levels: [Level] = []
        var count = recordCount
        var level = 0
        while true {
            let maxr = limits.maxRecords(level: level)
            let minr = limits.minRecords(level: level)
            if count <= maxr {
                levels.append(Level(entries: count, blocks: 1, entriesPerBlock: count, blocksWithExtra: 0))
                break
            }
            // Nodes hold at least two entries, or a level with minrecs 1 would never shrink.
            let desired = max(minr, maxr - (level == 0 ? self.leafSlack : self.nodeSlack), level == 0 ? 1 : 2)
            var blocks = max(1, count / desired)
            var per = count / blocks
            var extra = count % blocks
            if per > maxr || (per == maxr && extra > 0) {
                blocks += 1
                per = count / blocks
                extra = count % blocks
            }
            levels.append(Level(entries: count, blocks: blocks, entriesPerBlock: per, blocksWithExtra: extra))
            count = blocks
            level += 1
            if levels.count > maxHeight { break }
        }
        if levels.count > maxHeight {
            throw BTreeError.tooTall(btree: btree, levels: levels.count, maxHeight: maxHeight)
        }
        self.levels = levels
    }
}

/// Builds a whole btree from records in key order, bottom up, without splits
/// (libxfs `xfs_btree_bload`): leaves are filled from the record source, each node level
/// from the keys of the level below, blocks come from a claim callback, siblings are linked,
/// and the store's root and height are set last. The store's previous tree (if any) is left
/// alone; freeing it is the caller's business.
///
/// Thread safety: a load runs on the calling thread, on a store no other thread uses.
public enum BTreeBulkLoader<Format: BTreeRecordFormat, Store: BTreeBlockStore> {
    /// Plans a load of `recordCount` records into `store`.
    @inlinable
    public static func geometry(
        for store: Store, recordCount: Int, leafSlack: Int? = nil, nodeSlack: Int? = nil
    ) throws -> BTreeBulkGeometry {
        let layout = BTreeLayout(format: Format.self, store: store)
        return try BTreeBulkGeometry(
            recordCount: recordCount, limits: layout.limits, leafSlack: leafSlack, nodeSlack: nodeSlack,
            maxHeight: store.maxHeight, btree: Format.name)
    }

    /// Loads `geometry.recordCount` records, taken one by one from `nextRecord` in strictly
    /// increasing key order (a precondition), into blocks obtained from `claimBlock`
    /// (`geometry.totalBlocks` calls), then sets the store's root and height.
    @inlinable
    public static func load(
        into store: Store, geometry: BTreeBulkGeometry,
        nextRecord: () throws -> Format.Record,
        claimBlock: () throws -> Store.Pointer
    ) throws {
        let layout = BTreeLayout(format: Format.self, store: store)
        // (low key, high key, pointer) of each block of the level just built.
        var children: [(Format.Key, Format.Key, Store.Pointer)] = []
        var lastKey: Format.Key? = nil
        var rootPointer = Store.Pointer.null
        for (level, shape) in geometry.levels.enumerated() {
            var built: [(Format.Key, Format.Key, Store.Pointer)] = []
            built.reserveCapacity(shape.blocks)
            var previous: (Store.BlockHandle, BTreeBlock)? = nil
            var previousPointer = Store.Pointer.null
            var consumed = 0
            defer { if let (h, _) = previous { store.release(h) } }
            for j in 0..<shape.blocks {
                let count = shape.entries(inBlock: j)
                let p = try claimBlock()
                precondition(!p.isNull && store.isValid(p), "claimBlock gave invalid block \(p)")
                let h = try store.newBlock(p)
                let b = BTreeBlock(store.memory(of: h))
                b.formatHeader(
                    magic: Format.magic, level: level, numrecs: count, left: previousPointer,
                    right: Store.Pointer.null, blkno: store.diskAddress(of: p), owner: store.owner,
                    uuid: store.uuid)
                if let (ph, pb) = previous {
                    pb.setRightSibling(p)
                    store.markDirty(ph, range: 0..<layout.headerSize)
                    store.release(ph)
                    previous = nil
                }
                if level == 0 {
                    for i in 0..<count {
                        let r = try nextRecord()
                        let k = Format.lowKey(of: r)
                        if let last = lastKey {
                            precondition(last < k, "bulk load records out of order: \(k) after \(last)")
                        }
                        lastKey = k
                        Format.storeRecord(r, to: b.record(i, layout))
                    }
                } else {
                    for i in 0..<count {
                        let (low, high, child) = children[consumed + i]
                        Format.storeKey(low, to: b.key(i, layout))
                        if Format.isOverlapping { Format.storeKey(high, to: b.highKey(i, layout)) }
                        b.setPointer(child, i, layout)
                    }
                }
                consumed += count
                store.markDirty(h, range: 0..<layout.blockSize)
                if count > 0 {
                    let (low, high) = BTreeCursor<Format, Store>.blockKeys(b, level: level, layout)
                    built.append((low, high, p))
                }
                rootPointer = p
                previous = (h, b)
                previousPointer = p
            }
            children = built
        }
        store.setRoot(rootPointer, height: geometry.height)
    }

    /// Plans and loads `records` (a sequence in increasing key order) with block claims from
    /// `claimBlock`; returns the geometry used.
    @inlinable @discardableResult
    public static func load<S: Sequence>(
        _ records: S, count: Int, into store: Store, leafSlack: Int? = nil, nodeSlack: Int? = nil,
        claimBlock: () throws -> Store.Pointer
    ) throws -> BTreeBulkGeometry where S.Element == Format.Record {
        let g = try geometry(for: store, recordCount: count, leafSlack: leafSlack, nodeSlack: nodeSlack)
        var it = records.makeIterator()
        try load(into: store, geometry: g, nextRecord: {
            guard let r = it.next() else {
                preconditionFailure("record sequence ended before \(count) records")
            }
            return r
        }, claimBlock: claimBlock)
        return g
    }
}
