import XFSFormat

/// One observation in 24 bytes, the way an rmap record lies on disk (start block, length,
/// owner, and the offset word with the attr, bmbt and unwritten flags): an offline scan
/// holds one per mapping it observes until its AG's tree is loaded.
struct PackedObservation: Sendable, Equatable {
    var startBlock: UInt32
    var blockCount: UInt32
    var owner: UInt64
    /// The offset word (``RmapRecord/packedOffset``).
    var word: UInt64

    init(_ record: RmapRecord) {
        startBlock = record.startBlock
        blockCount = record.blockCount
        owner = record.owner
        word = record.packedOffset
    }

    /// The record it packs.
    var record: RmapRecord {
        RmapRecord(startBlock: startBlock, blockCount: blockCount, owner: owner, offset: word & ((1 << 61) - 1),
                   isAttrFork: word & RmapRecord.attrForkBit != 0, isBmbtBlock: word & RmapRecord.bmbtBlockBit != 0,
                   isUnwritten: word & RmapRecord.unwrittenBit != 0)
    }

    /// The rmapbt key's offset word: the unwritten bit is not part of a key.
    var keyWord: UInt64 { word & ~RmapRecord.unwrittenBit }

    /// The scan's order: the rmapbt key (start block, owner, offset word), then the
    /// unwritten flag and the length, so that equal keys sort the same way every run.
    static func precedes(_ a: Self, _ b: Self) -> Bool {
        if a.startBlock != b.startBlock { return a.startBlock < b.startBlock }
        if a.owner != b.owner { return a.owner < b.owner }
        if a.keyWord != b.keyWord { return a.keyWord < b.keyWord }
        if a.word != b.word { return a.word < b.word }
        return a.blockCount < b.blockCount
    }

    /// Whether `a` and `b` have the same rmapbt key.
    static func sameKey(_ a: Self, _ b: Self) -> Bool {
        a.startBlock == b.startBlock && a.owner == b.owner && a.keyWord == b.keyWord
    }
}

/// Turns an AG's observations, gathered in any order, into the records an ``RmapBTree``
/// holds after `map`ping them one at a time: sorted in key order, with contiguous mappings
/// of one owner merged by the kernel's rules (`xfs_rmap_map`, `xfs_rmap_map_shared`), and
/// each collision (a second observation with a key already seen, or one with no blocks)
/// reported instead of kept. The result is ready for the engine's bulk loader: this is
/// xfs_repair's way (phase 4 collects and sorts, phase 5 bulk-loads), for an offline scan
/// where no update races the observations.
///
/// In key order, every mapping that can absorb the next one comes before it, so one pass
/// decides every merge:
/// - the simple path (attr-fork, bmbt, unwritten and special-owner mappings, and all
///   mappings without sharing) merges with the record just before in key order, as
///   `xfs_rmap_map`'s left lookup finds it;
/// - the shared path (written data-fork mappings on a reflink filesystem, where other
///   owners' records may lie between) merges with the record of the same owner that ends
///   exactly where the mapping starts, at the offset just before: the pass keeps such open
///   ends in a table, and forgets those that end before the current start block.
///
/// Where the tree's merges depend on the order of `map` calls (damage: two observations of
/// one owner's blocks), the sorted order decides, and every run gives the same records.
enum ObservationMerge {
    /// Sorts and merges `observations` in place (as ``ObservationStore`` does): the records
    /// kept are its first elements, and their number is returned. `collision` hears of each
    /// observation refused.
    static func sortAndMerge(_ observations: inout [PackedObservation], allowsSharing: Bool,
                             collision: (RmapMapError) -> Void) -> Int {
        observations.withUnsafeMutableBufferPointer { all in
            ObservationStore.introsort(all)
            return merge(sorted: all, allowsSharing: allowsSharing, collision: collision)
        }
    }

    /// Merges `observations`, sorted by `PackedObservation.precedes`, in place: the records
    /// kept are its first elements, and their number is returned. `collision` hears of each
    /// observation refused.
    static func merge(sorted observations: UnsafeMutableBufferPointer<PackedObservation>, allowsSharing: Bool,
                      collision: (RmapMapError) -> Void) -> Int {
        /// Where a shared-path record ends: the start block and offset a mapping of the same
        /// owner must have to extend it.
        struct OpenEnd: Hashable {
            var owner: UInt64
            var block: UInt64
            var offset: UInt64
        }
        func end(of o: PackedObservation) -> OpenEnd {
            OpenEnd(owner: o.owner, block: UInt64(o.startBlock) + UInt64(o.blockCount),
                    offset: (o.word & ((1 << 61) - 1)) + UInt64(o.blockCount))
        }
        // The latest shared-path record kept stays out of the table while the records
        // after it start beyond its end (nothing can extend it then: the usual case of
        // files that share nothing); it enters the table once one starts at or before its
        // end, another owner's record lying in between.
        var latestShared: Int? = nil
        var openEnds: [OpenEnd: Int] = [:]
        var sweepAt = 1024
        var kept = 0
        var previous: PackedObservation? = nil
        for i in observations.indices {
            let o = observations[i]
            guard o.blockCount > 0 else {
                collision(.empty(o.record))
                continue
            }
            if let p = previous, PackedObservation.sameKey(p, o) {
                collision(.duplicate(existing: p.record, new: o.record))
                continue
            }
            previous = o
            if let latest = latestShared {
                let latestEnd = UInt64(observations[latest].startBlock) + UInt64(observations[latest].blockCount)
                if UInt64(o.startBlock) > latestEnd {
                    latestShared = nil
                } else if !(isSharedPath(o, allowsSharing) && o.owner == observations[latest].owner) {
                    openEnds[end(of: observations[latest])] = latest
                    latestShared = nil
                }
            }
            let record = o.record
            if isSharedPath(o, allowsSharing) {
                let start = OpenEnd(owner: o.owner, block: UInt64(o.startBlock), offset: record.offset)
                var left: Int? = nil
                if let latest = latestShared, end(of: observations[latest]) == start {
                    left = latest
                } else if let latest = latestShared {
                    // Same owner, not contiguous: the latest may still be extended later.
                    openEnds[end(of: observations[latest])] = latest
                    latestShared = nil
                }
                if left == nil { left = openEnds.removeValue(forKey: start) }
                if let left, UInt64(observations[left].blockCount) + UInt64(o.blockCount) <= UInt64(UInt32.max) {
                    observations[left].blockCount += o.blockCount
                    if left != latestShared { openEnds[end(of: observations[left])] = left }
                } else {
                    if let latest = latestShared { openEnds[end(of: observations[latest])] = latest }
                    observations[kept] = o
                    latestShared = kept
                    kept += 1
                }
                // Ends before this start block can extend nothing that follows.
                if openEnds.count >= sweepAt {
                    openEnds = openEnds.filter { $0.key.block >= UInt64(o.startBlock) }
                    sweepAt = max(1024, openEnds.count * 2)
                }
            } else if kept > 0, RmapBTree.isMergeable(observations[kept - 1].record, with: record),
                      RmapBTree.abuts(observations[kept - 1].record, record) {
                observations[kept - 1].blockCount += o.blockCount
            } else {
                observations[kept] = o
                kept += 1
            }
        }
        return kept
    }

    /// Whether `o` takes the shared path: written data-fork file data where blocks may be
    /// shared (`RmapBTree.map`'s rule).
    private static func isSharedPath(_ o: PackedObservation, _ allowsSharing: Bool) -> Bool {
        allowsSharing && !RmapOwner.isSpecial(o.owner)
            && o.word & (RmapRecord.attrForkBit | RmapRecord.bmbtBlockBit | RmapRecord.unwrittenBit) == 0
    }
}
