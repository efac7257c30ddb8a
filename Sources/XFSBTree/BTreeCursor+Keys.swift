extension BTreeCursor {
    /// The keys a block presents to its parent: its first low key and, for overlapping trees,
    /// the largest high key of its entries (for other trees the high key is the low key).
    /// The block must not be empty.
    @inlinable
    static func blockKeys(_ b: BTreeBlock, level: Int, _ layout: BTreeLayout) -> (low: Format.Key, high: Format.Key) {
        let n = b.numrecs
        if level == 0 {
            if !Format.isOverlapping {
                let k = Format.loadLowKey(fromRecord: b.record(0, layout))
                return (k, k)
            }
            return (Format.loadLowKey(fromRecord: b.record(0, layout)),
                    Format.maxHighKey(ofRecords: b.record(0, layout), count: n))
        }
        let low = Format.loadKey(from: b.key(0, layout))
        if !Format.isOverlapping { return (low, low) }
        var high = Format.loadKey(from: b.highKey(0, layout))
        var i = 1
        while i < n {
            let h = Format.loadKey(from: b.highKey(i, layout))
            if h > high { high = h }
            i += 1
        }
        return (low, high)
    }

    /// Writes a node slot's keys and logs them.
    @inlinable
    func storeSlotKeys(level: Int, slot: Int, low: Format.Key, high: Format.Key) {
        let b = path[level].block
        Format.storeKey(low, to: b.key(slot, layout))
        if Format.isOverlapping { Format.storeKey(high, to: b.highKey(slot, layout)) }
        store.markDirty(path[level].handle!, range: BTreeBlock.slotRange(from: slot, to: slot + 1, level: level, layout))
    }

    /// Recomputes the keys of the block at `level` and of each ancestor in turn, writing them
    /// into the parent slots on the cursor's path, and stops as soon as a parent already
    /// agrees (libxfs `__xfs_btree_updkeys` / `xfs_btree_update_keys`).
    @inlinable
    func updateKeys(fromLevel start: Int) {
        var level = start
        while level + 1 < path.count {
            let b = path[level].block
            if b.numrecs == 0 { return }
            let (low, high) = Self.blockKeys(b, level: level, layout)
            let pb = path[level + 1].block
            let slot = path[level + 1].index
            let pLow = Format.loadKey(from: pb.key(slot, layout))
            if Format.isOverlapping {
                if pLow == low && Format.loadKey(from: pb.highKey(slot, layout)) == high { return }
            } else if pLow == low {
                return
            }
            storeSlotKeys(level: level + 1, slot: slot, low: low, high: high)
            level += 1
        }
    }

    /// `updateKeys(fromLevel:)` when only the block at `start` changed and every key above
    /// it was exact before: the block is rescanned, but its ancestors are not. Each
    /// ancestor's new keys follow from the keys its own parent holds for it and the change of
    /// one slot: its low key changes only through slot 0, and its high key is the new slot
    /// high when that is larger, stays when the old slot high was not the maximum, and is
    /// rescanned only when the slot that held the maximum shrank.
    @inlinable
    func updateKeysAfterChanging(fromLevel start: Int) {
        guard start + 1 < path.count else { return }
        let b = path[start].block
        if b.numrecs == 0 { return }
        var (low, high) = Self.blockKeys(b, level: start, layout)
        var level = start
        while level + 1 < path.count {
            let pb = path[level + 1].block
            let slot = path[level + 1].index
            let pLow = Format.loadKey(from: pb.key(slot, layout))
            let pHigh = Format.isOverlapping ? Format.loadKey(from: pb.highKey(slot, layout)) : pLow
            if pLow == low && (!Format.isOverlapping || pHigh == high) { return }
            storeSlotKeys(level: level + 1, slot: slot, low: low, high: high)
            guard level + 2 < path.count else { return }
            let gb = path[level + 2].block
            let gslot = path[level + 2].index
            let gLow = Format.loadKey(from: gb.key(gslot, layout))
            let newLow = slot == 0 ? low : gLow
            var newHigh = newLow
            if Format.isOverlapping {
                let gHigh = Format.loadKey(from: gb.highKey(gslot, layout))
                if high >= gHigh {
                    newHigh = high
                } else if pHigh < gHigh {
                    newHigh = gHigh
                } else {
                    newHigh = Self.blockKeys(pb, level: level + 1, layout).high
                }
            }
            low = newLow
            high = newHigh
            level += 1
        }
    }

    /// Key maintenance after only *adding* an entry with keys (`low`, `high`) at `index` of
    /// the block at `level`: the block's low key changes only when `index` is 0 and its high
    /// key only grows, so no block needs rescanning.
    @inlinable
    func updateKeysAfterAdding(level start: Int, index: Int, low: Format.Key, high: Format.Key) {
        var level = start
        var index = index
        var low = low
        var high = high
        while level + 1 < path.count {
            let pb = path[level + 1].block
            let slot = path[level + 1].index
            let pLow = Format.loadKey(from: pb.key(slot, layout))
            let newLow = index == 0 ? low : pLow
            if Format.isOverlapping {
                let pHigh = Format.loadKey(from: pb.highKey(slot, layout))
                let newHigh = high > pHigh ? high : pHigh
                if newLow == pLow && newHigh == pHigh { return }
                storeSlotKeys(level: level + 1, slot: slot, low: newLow, high: newHigh)
                high = newHigh
            } else {
                if newLow == pLow { return }
                storeSlotKeys(level: level + 1, slot: slot, low: newLow, high: newLow)
                high = newLow
            }
            low = newLow
            index = slot
            level += 1
        }
    }
}
