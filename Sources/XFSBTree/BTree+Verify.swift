/// Everything the verifier found in one tree.
public struct BTreeVerifyReport: Sendable {
    /// Every fault found, in walk order (depth first, key order).
    public var faults: [BTreeFault]
    /// Blocks read.
    public var blocks: Int
    /// Records seen in leaves.
    public var records: Int
    /// The store's height.
    public var height: Int

    /// Whether no fault was found.
    @inlinable public var isClean: Bool { faults.isEmpty }
}

/// The whole-tree structural checker (what `xfs_repair`'s btree scan and the kernel's
/// verifiers check, together): magic, level, numrecs limits (root exempt from minrecs),
/// blkno/owner/uuid, key order within and across blocks, parent low keys (and high keys on
/// overlapping trees), sibling links, height, and each record's `check`. It reports every
/// fault with its location instead of stopping at the first. Blocks reached twice (pointer
/// cycles, shared children) are reported once and not re-entered, and levels strictly
/// decrease on the way down, so a corrupt tree can never make the walk loop or recurse.
public enum BTreeVerifier<Format: BTreeRecordFormat, Store: BTreeBlockStore> {
    /// One block to visit, with what its parent says about it.
    @usableFromInline
    struct Frame {
        @usableFromInline var pointer: Store.Pointer
        @usableFromInline var level: Int
        @usableFromInline var low: Format.Key?
        @usableFromInline var high: Format.Key?
        @usableFromInline var parent: UInt64?
        @usableFromInline var parentIndex: Int?

        @inlinable
        init(pointer: Store.Pointer, level: Int, low: Format.Key?, high: Format.Key?, parent: UInt64?, parentIndex: Int?) {
            self.pointer = pointer
            self.level = level
            self.low = low
            self.high = high
            self.parent = parent
            self.parentIndex = parentIndex
        }
    }

    /// Verifies the tree whose root and height the store holds.
    public static func verify(_ store: Store) -> BTreeVerifyReport {
        verify(store, layout: BTreeLayout(format: Format.self, store: store))
    }

    /// Verifies with an explicit layout.
    public static func verify(_ store: Store, layout: BTreeLayout) -> BTreeVerifyReport {
        verify(store, layout: layout, visitingRecords: { _ in })
    }

    /// Verifies the tree, and hands `visit` every record of every leaf the walk reads, in
    /// walk order (depth first, key order of the parents' entries): a leaf reached twice or
    /// that fails its header checks is not visited, one with too many entries only up to
    /// its maximum. On a damaged tree these are the records that can be read.
    public static func verify(_ store: Store, visitingRecords visit: (Format.Record) -> Void) -> BTreeVerifyReport {
        verify(store, layout: BTreeLayout(format: Format.self, store: store), visitingRecords: visit)
    }

    static func verify(_ store: Store, layout: BTreeLayout, visitingRecords visit: (Format.Record) -> Void) -> BTreeVerifyReport {
        var report = BTreeVerifyReport(faults: [], blocks: 0, records: 0, height: store.height)
        let h = store.height
        let header = layout.headerFormat
        guard h >= 1 && h <= store.maxHeight else {
            report.faults.append(BTreeFault(
                .height, pointer: UInt64(store.root), detail: "height \(h), allowed 1...\(store.maxHeight)"))
            return report
        }
        var stack = [Frame(pointer: store.root, level: h - 1, low: nil, high: nil, parent: nil, parentIndex: nil)]
        var visited = Set<UInt64>()
        var previous = [Store.Pointer?](repeating: nil, count: h)
        var previousRight = [Store.Pointer](repeating: .null, count: h)
        var known = [Bool](repeating: true, count: h)
        var lastKey = [Format.Key?](repeating: nil, count: h)

        func fault(_ c: BTreeCheck, _ p: UInt64?, _ level: Int?, _ detail: String, index: Int? = nil) {
            report.faults.append(BTreeFault(c, pointer: p, level: level, index: index, detail: detail))
        }

        while let f = stack.popLast() {
            let p = f.pointer
            let pp = UInt64(p)
            let level = f.level
            if p.isNull || !store.isValid(p) {
                fault(.pointer, f.parent, level + 1, "child pointer \(p.pointerText) is invalid", index: f.parentIndex)
                known[level] = false
                continue
            }
            if !visited.insert(pp).inserted {
                fault(.cycle, f.parent, level + 1, "child pointer \(p) reaches a block already visited", index: f.parentIndex)
                known[level] = false
                continue
            }
            let handle: Store.BlockHandle
            do {
                handle = try store.readBlock(p)
            } catch {
                fault(.read, pp, level, "\(error)")
                known[level] = false
                continue
            }
            defer { store.release(handle) }
            report.blocks += 1
            let b = BTreeBlock(store.memory(of: handle))
            let isRoot = level == h - 1
            if b.magic != Format.magic {
                fault(.magic, pp, level, "magic 0x\(String(b.magic, radix: 16)), expected 0x\(String(Format.magic, radix: 16))")
                known[level] = false
                continue
            }
            if b.level != level {
                fault(.level, pp, level, "header level \(b.level), expected \(level)" + (isRoot ? " (height \(h))" : ""))
                known[level] = false
                continue
            }
            var n = b.numrecs
            let maxr = layout.limits.maxRecords(level: level)
            let minr = layout.limits.minRecords(level: level)
            if n > maxr {
                fault(.numrecs, pp, level, "numrecs \(n) above max \(maxr)")
                n = maxr
            } else if level > 0 && n == 0 {
                fault(.numrecs, pp, level, "empty node")
            } else if !isRoot && n < minr {
                fault(.numrecs, pp, level, "numrecs \(n) below min \(minr)")
            }
            let blkno = b.blkno(header)
            if blkno != store.diskAddress(of: p) {
                fault(.blkno, pp, level, "blkno \(blkno), expected \(store.diskAddress(of: p))")
            }
            let owner = b.owner(header)
            let expectedOwner = header == .short ? UInt64(UInt32(truncatingIfNeeded: store.owner)) : store.owner
            if owner != expectedOwner { fault(.owner, pp, level, "owner \(owner), expected \(expectedOwner)") }
            let uuid = b.uuid(header)
            if uuid != store.uuid { fault(.uuid, pp, level, "uuid \(uuid), expected \(store.uuid)") }

            // Siblings.
            let left = b.leftSibling(Store.Pointer.self)
            let right = b.rightSibling(Store.Pointer.self)
            if left == p || right == p {
                fault(.siblings, pp, level, "sibling points at the block itself (left \(left.pointerText), right \(right.pointerText))")
            }
            if !left.isNull && left != p && !store.isValid(left) { fault(.siblings, pp, level, "left sibling \(left.pointerText) is invalid") }
            if !right.isNull && right != p && !store.isValid(right) { fault(.siblings, pp, level, "right sibling \(right.pointerText) is invalid") }
            if isRoot {
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

            guard n > 0 else { continue }
            // Entries: order, records, keys.
            var firstLow: Format.Key
            var maxHigh: Format.Key
            var prevLow: Format.Key
            if level == 0 {
                report.records += n
                let r0 = Format.loadRecord(from: b.record(0, layout))
                firstLow = Format.lowKey(of: r0)
                maxHigh = Format.highKey(of: r0)
                prevLow = firstLow
                for i in 0..<n {
                    let r = i == 0 ? r0 : Format.loadRecord(from: b.record(i, layout))
                    visit(r)
                    if let why = Format.check(r) { fault(.record, pp, level, why, index: i) }
                    let k = Format.lowKey(of: r)
                    if i > 0 && !(prevLow < k) {
                        fault(.keyOrder, pp, level, "record key \(k) not above previous \(prevLow)", index: i)
                    }
                    let hk = Format.highKey(of: r)
                    if hk < k { fault(.record, pp, level, "high key \(hk) below low key \(k)", index: i) }
                    if hk > maxHigh { maxHigh = hk }
                    prevLow = k
                }
            } else {
                firstLow = Format.loadKey(from: b.key(0, layout))
                maxHigh = Format.isOverlapping ? Format.loadKey(from: b.highKey(0, layout)) : firstLow
                prevLow = firstLow
                var lows: [Format.Key] = []
                var highs: [Format.Key] = []
                lows.reserveCapacity(n)
                for i in 0..<n {
                    let k = Format.loadKey(from: b.key(i, layout))
                    let hk = Format.isOverlapping ? Format.loadKey(from: b.highKey(i, layout)) : k
                    if i > 0 && !(prevLow < k) {
                        fault(.keyOrder, pp, level, "node key \(k) not above previous \(prevLow)", index: i)
                    }
                    if hk < k { fault(.highKey, pp, level, "high key \(hk) below low key \(k)", index: i) }
                    if hk > maxHigh { maxHigh = hk }
                    prevLow = k
                    lows.append(k)
                    highs.append(hk)
                }
                // The children are read next, in key order: ask for them all now.
                for i in 0..<n { store.readAhead(b.pointer(i, layout, as: Store.Pointer.self)) }
                for i in stride(from: n - 1, through: 0, by: -1) {
                    stack.append(Frame(
                        pointer: b.pointer(i, layout, as: Store.Pointer.self), level: level - 1,
                        low: lows[i], high: Format.isOverlapping ? highs[i] : nil, parent: pp, parentIndex: i))
                }
            }
            if let last = lastKey[level], !(last < firstLow) {
                fault(.keyOrder, pp, level, "first key \(firstLow) not above previous block's last key \(last)", index: 0)
            }
            lastKey[level] = prevLow
            if let low = f.low, low != firstLow {
                fault(.parentKey, f.parent, level + 1, "parent key \(low), child \(p) starts at \(firstLow)", index: f.parentIndex)
            }
            if let high = f.high, high != maxHigh {
                fault(.highKey, f.parent, level + 1, "parent high key \(high), child \(p) reaches \(maxHigh)", index: f.parentIndex)
            }
        }
        for level in 0..<h where known[level] {
            if let prev = previous[level], !previousRight[level].isNull, previousRight[level] != prev {
                fault(.siblings, UInt64(prev), level, "last block at its level has right sibling \(previousRight[level].pointerText)")
            }
        }
        return report
    }
}

#if BTREE_INTERNAL_CHECKS
extension BTreeCursor {
    /// Verifies the whole tree after each change (only in builds with BTREE_INTERNAL_CHECKS;
    /// this makes every operation O(n)).
    @usableFromInline
    func checkInvariants() {
        let report = BTreeVerifier<Format, Store>.verify(store, layout: layout)
        assert(report.isClean, "btree invariants broken: \(report.faults)")
    }
}
#endif
