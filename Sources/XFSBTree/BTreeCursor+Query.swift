/// What a visitor wants after seeing one record or block.
public enum BTreeVisitAction: Sendable {
    /// Keep going.
    case proceed
    /// Stop the walk now.
    case stop
}

/// How completely records cover a key range (libxfs `xbtree_recpacking`).
public enum BTreeRecordPacking: Sendable {
    /// No record overlaps the range.
    case empty
    /// Some of the range is covered, with at least one gap.
    case sparse
    /// Records cover the range without a gap.
    case full
}

/// One block seen by `visitBlocks`.
public struct BTreeBlockInfo: Sendable, Hashable {
    /// The block's pointer, widened.
    public var pointer: UInt64
    /// Its level (0 = leaf).
    public var level: Int
    /// Its entry count.
    public var numrecs: Int
    /// Its left sibling (all ones when none).
    public var leftSibling: UInt64
    /// Its right sibling (all ones when none).
    public var rightSibling: UInt64

    /// Block facts as read from its header.
    @inlinable
    public init(pointer: UInt64, level: Int, numrecs: Int, leftSibling: UInt64, rightSibling: UInt64) {
        self.pointer = pointer
        self.level = level
        self.numrecs = numrecs
        self.leftSibling = leftSibling
        self.rightSibling = rightSibling
    }
}

extension BTreeCursor {
    /// Calls `body` with every record whose key interval [low key, high key] meets
    /// [`low`, `high`], in key order (libxfs `xfs_btree_query_range`); returns `.stop` when
    /// `body` stopped the walk. Plain trees do an LE lookup and walk forward; overlapping trees
    /// do the interval-tree walk (descend into an entry only when its high key >= `low` and
    /// its low key <= `high`). `body` must not change the tree.
    @inlinable @discardableResult
    public mutating func query(
        from low: Format.Key, through high: Format.Key,
        _ body: (Format.Record) throws -> BTreeVisitAction
    ) throws -> BTreeVisitAction {
        precondition(!(high < low), "query range \(low)...\(high) is reversed")
        return Format.isOverlapping
            ? try overlappedQuery(from: low, through: high, body)
            : try simpleQuery(from: low, through: high, body)
    }

    /// The plain-tree range walk: LE lookup of `low`, then forward while low keys <= `high`.
    @inlinable
    mutating func simpleQuery(
        from low: Format.Key, through high: Format.Key,
        _ body: (Format.Record) throws -> BTreeVisitAction
    ) throws -> BTreeVisitAction {
        var found = try lookup(low, .lessOrEqual)
        if !found { found = try increment() }
        while found {
            let b = path[0].block
            let n = b.numrecs
            var i = path[0].index
            while i < n {
                let r = Format.loadRecord(from: b.record(i, layout))
                if Format.lowKey(of: r) > high { return .proceed }
                if !(Format.highKey(of: r) < low) {
                    if try body(r) == .stop { return .stop }
                }
                i += 1
            }
            path[0].index = n
            found = try stepRight(atLevel: 0)
        }
        return .proceed
    }

    /// The interval walk over an overlapping tree, depth first in key order, on the path.
    @inlinable
    mutating func overlappedQuery(
        from low: Format.Key, through high: Format.Key,
        _ body: (Format.Record) throws -> BTreeVisitAction
    ) throws -> BTreeVisitAction {
        let h = try preparePath()
        var level = h - 1
        try load(level, store.root)
        path[level].index = 0
        while level < h {
            let b = path[level].block
            let n = b.numrecs
            var i = path[level].index
            if level == 0 {
                while i < n {
                    let r = Format.loadRecord(from: b.record(i, layout))
                    if Format.lowKey(of: r) > high { break }
                    if !(Format.highKey(of: r) < low) {
                        if try body(r) == .stop { return .stop }
                    }
                    i += 1
                }
            } else {
                var descended = false
                while i < n {
                    if Format.loadKey(from: b.key(i, layout)) > high { break }
                    if !(Format.loadKey(from: b.highKey(i, layout)) < low) {
                        path[level].index = i
                        let p = b.pointer(i, layout, as: Store.Pointer.self)
                        level -= 1
                        try load(level, p)
                        path[level].index = 0
                        descended = true
                        break
                    }
                    i += 1
                }
                if descended { continue }
            }
            // Done with this block: back to the parent's next entry.
            level += 1
            if level < h { path[level].index += 1 }
        }
        return .proceed
    }

    /// Calls `body` with the record at the cursor and each record after it, in key order,
    /// until `body` returns `.stop` (the cursor then rests on the record it stopped at) or the
    /// records end (the cursor then rests after the last record, and this returns
    /// `.proceed`). A cursor before the first record of its leaf starts at that record:
    /// position it with a lookup first. `body` must not change the tree.
    @inlinable @discardableResult
    public mutating func walkForward(_ body: (Format.Record) throws -> BTreeVisitAction) throws -> BTreeVisitAction {
        precondition(!path.isEmpty && path[0].base != nil, "walkForward on an unpositioned btree cursor")
        var i = max(path[0].index, 0)
        while true {
            let b = path[0].block
            let n = b.numrecs
            while i < n {
                if try body(Format.loadRecord(from: b.record(i, layout))) == .stop {
                    path[0].index = i
                    return .stop
                }
                i &+= 1
            }
            path[0].index = n
            guard try stepRight(atLevel: 0) else { return .proceed }
            i = path[0].index
        }
    }

    /// Calls `body` with the encoded records from the cursor's position onward, one leaf's
    /// run at a time: `bytes` holds `count` records of `Format.recordSize` bytes each, in
    /// key order, and is valid only during the call. Stops when `body` returns `.stop`
    /// (the cursor then rests on the first record of the next run, or after the last
    /// record) or when the records end (this then returns `.proceed`). This is the walk of
    /// ``walkForward(_:)`` for callers that copy records in bulk and decode them later.
    /// Position the cursor with a lookup first; `body` must not change the tree.
    @inlinable @discardableResult
    public mutating func walkRecordRuns(
        _ body: (_ bytes: UnsafeRawPointer, _ count: Int) throws -> BTreeVisitAction
    ) throws -> BTreeVisitAction {
        precondition(!path.isEmpty && path[0].base != nil, "walkRecordRuns on an unpositioned btree cursor")
        while true {
            let b = path[0].block
            let n = b.numrecs
            let i = max(path[0].index, 0)
            path[0].index = n
            if i < n, try body(UnsafeRawPointer(b.record(i, layout)), n &- i) == .stop {
                _ = try stepRight(atLevel: 0)
                return .stop
            }
            guard try stepRight(atLevel: 0) else { return .proceed }
        }
    }

    /// Calls `body` with every record in key order (libxfs `xfs_btree_query_all`).
    @inlinable @discardableResult
    public mutating func queryAll(_ body: (Format.Record) throws -> BTreeVisitAction) throws -> BTreeVisitAction {
        var more = try moveToFirst()
        while more {
            let b = path[0].block
            let n = b.numrecs
            var i = path[0].index
            while i < n {
                if try body(Format.loadRecord(from: b.record(i, layout))) == .stop {
                    path[0].index = i
                    return .stop
                }
                i &+= 1
            }
            path[0].index = n
            more = try stepRight(atLevel: 0)
        }
        return .proceed
    }

    /// Whether records cover [`low`, `high`] completely, partly or not at all (libxfs
    /// `xfs_btree_has_records`). Keys are compared through `Format.coverageKey`; a record
    /// continues the covered range when it starts at or before the largest high key seen so
    /// far, or `Format.isContiguous` says it follows it without a gap.
    @inlinable
    public mutating func hasRecords(from low: Format.Key, through high: Format.Key) throws -> BTreeRecordPacking {
        var outcome = BTreeRecordPacking.empty
        var reach: Format.Key? = nil
        let lowC = Format.coverageKey(low)
        let highC = Format.coverageKey(high)
        try query(from: low, through: high) { r in
            let rl = Format.lowKey(of: r)
            let rh = Format.highKey(of: r)
            if let seen = reach {
                if Format.coverageKey(rl) > Format.coverageKey(seen) && !Format.isContiguous(seen, followedBy: rl) {
                    outcome = .sparse
                    return .stop
                }
                if rh > seen { reach = rh }
            } else {
                outcome = .sparse
                if Format.coverageKey(rl) > lowC { return .stop }
                reach = rh
            }
            if Format.coverageKey(reach!) >= highC {
                outcome = .full
                return .stop
            }
            return .proceed
        }
        return outcome
    }

    /// Calls `body` with every block, level by level from the root down, each level from left
    /// to right through right siblings (libxfs `xfs_btree_visit_blocks`). A sibling chain
    /// longer than the parent level's entry count (a loop) throws `.cycle`.
    @inlinable @discardableResult
    public mutating func visitBlocks(_ body: (BTreeBlockInfo) throws -> BTreeVisitAction) throws -> BTreeVisitAction {
        let h = try preparePath()
        var leftmost = store.root
        var bound = 1
        var level = h - 1
        while level >= 0 {
            var p = leftmost
            var count = 0
            var entries = 0
            var next = Store.Pointer.null
            while !p.isNull {
                count += 1
                if count > bound {
                    throw BTreeError.corrupt(
                        btree: Format.name,
                        BTreeFault(.cycle, pointer: UInt64(p), level: level,
                                   detail: "more than \(bound) blocks in the sibling chain: a loop"))
                }
                let (hd, b) = try Self.readChecked(store, layout, p, level: level, isRoot: level == h - 1)
                defer { store.release(hd) }
                if level > 0 {
                    if count == 1 { next = b.pointer(0, layout, as: Store.Pointer.self) }
                    entries += b.numrecs
                    Self.readAheadChildren(of: b, layout, store)
                }
                let right = b.rightSibling(Store.Pointer.self)
                let info = BTreeBlockInfo(
                    pointer: UInt64(p), level: level, numrecs: b.numrecs,
                    leftSibling: UInt64(b.leftSibling(Store.Pointer.self)), rightSibling: UInt64(right))
                if try body(info) == .stop { return .stop }
                p = right
            }
            bound = entries
            leftmost = next
            level -= 1
        }
        return .proceed
    }

    /// The number of blocks in the tree (libxfs `xfs_btree_count_blocks`).
    @inlinable
    public mutating func countBlocks() throws -> Int {
        var n = 0
        try visitBlocks { _ in
            n += 1
            return .proceed
        }
        return n
    }
}

/// The blocks a tree occupies as its nodes' child pointers reach them, and every fault met
/// on the way (`BTreeCursor.reachableBlocks()`).
public struct BTreeReachableBlocks: Sendable {
    /// The blocks, depth first in key order (the root first), each once, widened.
    public var pointers: [UInt64]
    /// What the walk met: blocks that could not be read or whose header is wrong (each still
    /// in `pointers`, since its parent points at it; nothing below it is reached), invalid
    /// child pointers, blocks reached a second time, and sibling links that disagree with
    /// the neighbours found through the parents.
    public var faults: [BTreeFault]
}

extension BTreeCursor {
    /// Every block of the tree as its nodes' child pointers reach them, depth first in key
    /// order, each block once (xfs_repair's walk of a btree's blocks), with every fault met.
    ///
    /// Unlike `visitBlocks`, sibling pointers are not followed, so a damaged sibling link
    /// loses no block; it is a fault. A block that cannot be read or fails its header checks
    /// still belongs to the tree (a parent points at it): it is listed, with its fault, and
    /// what lies below it is lost. A block reached a second time is a fault and is not
    /// re-entered, so the walk ends on any image. Leaves are read for their headers only.
    /// Nothing is thrown.
    public func reachableBlocks() -> BTreeReachableBlocks {
        var result = BTreeReachableBlocks(pointers: [], faults: [])
        let h = store.height
        guard h >= 1 && h <= maxHeight else {
            result.faults.append(BTreeFault(.height, pointer: UInt64(store.root), detail: "height \(h), allowed 1...\(maxHeight)"))
            return result
        }
        func fault(_ check: BTreeCheck, _ pointer: UInt64?, _ level: Int, _ detail: String, index: Int? = nil) {
            result.faults.append(BTreeFault(check, pointer: pointer, level: level, index: index, detail: detail))
        }
        var stack: [(pointer: Store.Pointer, level: Int, parent: UInt64?, index: Int?)] = [(store.root, h - 1, nil, nil)]
        var visited = Set<UInt64>()
        // Per level: the block listed last, its right sibling, and whether it is the true left
        // neighbour of the next one (nothing was skipped in between).
        var previous = [Store.Pointer?](repeating: nil, count: h)
        var previousRight = [Store.Pointer](repeating: .null, count: h)
        var known = [Bool](repeating: true, count: h)
        /// Forgets the left neighbours at `level` and below: a block there was skipped.
        func skipped(_ level: Int) {
            for l in 0...level { known[l] = false }
        }
        while let (p, level, parent, index) = stack.popLast() {
            if p.isNull || !store.isValid(p) {
                fault(.pointer, parent, level + 1, "child pointer \(p.pointerText) is invalid", index: index)
                skipped(level)
                continue
            }
            let pp = UInt64(p)
            if !visited.insert(pp).inserted {
                fault(.cycle, parent, level + 1, "child pointer \(p) reaches a block already visited", index: index)
                skipped(level)
                continue
            }
            result.pointers.append(pp)
            let handle: Store.BlockHandle, block: BTreeBlock
            do {
                (handle, block) = try Self.readChecked(store, layout, p, level: level, isRoot: level == h - 1)
            } catch BTreeError.corrupt(_, let blockFault) {
                result.faults.append(blockFault)
                skipped(level)
                continue
            } catch {
                fault(.read, pp, level, "\(error)")
                skipped(level)
                continue
            }
            defer { store.release(handle) }
            let left = block.leftSibling(Store.Pointer.self)
            let right = block.rightSibling(Store.Pointer.self)
            if level == h - 1 {
                if !left.isNull || !right.isNull {
                    fault(.siblings, pp, level, "root has siblings (left \(left.pointerText), right \(right.pointerText))")
                }
            } else if known[level] {
                let expectedLeft = previous[level] ?? .null
                if left != expectedLeft {
                    fault(.siblings, pp, level, "left sibling \(left.pointerText), expected \(expectedLeft.pointerText)")
                }
                if let prev = previous[level], previousRight[level] != p {
                    fault(.siblings, UInt64(prev), level, "right sibling \(previousRight[level].pointerText), expected \(p)")
                }
            }
            previous[level] = p
            previousRight[level] = right
            known[level] = true
            if level > 0 {
                Self.readAheadChildren(of: block, layout, store)
                for i in stride(from: block.numrecs - 1, through: 0, by: -1) {
                    stack.append((block.pointer(i, layout, as: Store.Pointer.self), level - 1, pp, i))
                }
            }
        }
        for level in 0..<h where known[level] {
            if let prev = previous[level], !previousRight[level].isNull {
                fault(.siblings, UInt64(prev), level, "last block at its level has right sibling \(previousRight[level].pointerText)")
            }
        }
        return result
    }
}
