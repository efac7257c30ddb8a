import XFSBTree
import XFSBuffer
import XFSFormat
import XFSInMemoryBTree
import XFSTransaction

/// Why a rebuild will not write: something a new rmap btree cannot fix, or that makes its
/// observations untrustworthy. Nothing has been written when it is thrown.
public struct RebuildRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// One sentence naming what is wrong and where.
    public var reason: String

    /// A refusal for `reason`.
    public init(_ reason: String) { self.reason = reason }

    /// The reason.
    public var description: String { reason }
}

/// One AG's new bnobt, cntbt, rmapbt and free list, planned in memory: the blocks they
/// take, their records, the staged blocks, and the AGF and AGFL as they will be
/// (xfs_repair's phase 5 for the three trees an rmap rebuild touches; rebuild.md §6).
///
/// ## How the blocks are chosen
///
/// R is every observation but OWN_AG (the old bnobt, cntbt, rmapbt and free list, which the
/// new ones replace). F0, the AG's space once the old trees are gone, is everything R does
/// not cover. New tree blocks are carved from the ends of the largest *old free extents*
/// (the bnobt's), never from the old trees' blocks, so the old trees stay intact until the
/// AGF switches to the new ones; the old free list's blocks stay on the new free list.
///
/// Taking blocks changes free space, which can change the free-space trees' size and the
/// number of OWN_AG records, which can change the rmapbt's size: the plan repeats until
/// the blocks taken cover what every tree needs (the sizes only grow, so it ends), then
/// the surplus joins the free list. The new free space F is F0 minus the new trees and
/// the free list; bnobt = F by start, cntbt = F by (length, start), rmapbt = R and the
/// OWN_AG extents of the new trees and free list, merged.
public struct AGRebuildPlan: Sendable {
    /// The AG.
    public var agno: UInt32
    /// The AGF before the rebuild.
    public var oldAGF: AGF
    /// The AGF fields after it.
    public var fields: AGF.RebuiltFields
    /// Records of the new rmapbt, bnobt and cntbt.
    public var rmapRecords: Int
    /// Records of the new bnobt and cntbt (one per free extent).
    public var freeExtents: Int
    /// Blocks of the new rmapbt, bnobt and cntbt.
    public var rmapBlocks: [UInt32]
    /// Blocks of the new bnobt.
    public var bnoBlocks: [UInt32]
    /// Blocks of the new cntbt.
    public var cntBlocks: [UInt32]
    /// The new free list, in slot order from slot 0.
    public var freeList: [UInt32]
    /// The staged blocks of the three trees, CRCs stamped, as writes of (byte offset,
    /// bytes): neighbouring blocks of one tree in one write.
    public var treeWrites: [(byteOffset: UInt64, bytes: [UInt8])]
    /// The AGF and AGFL sectors as they will be, with their byte offsets.
    public var agfWrite: (byteOffset: UInt64, bytes: [UInt8])
    /// The AGFL sector as it will be, with its byte offset.
    public var agflWrite: (byteOffset: UInt64, bytes: [UInt8])

    /// What the AG adds to the superblock's free block count (`sb_fdblocks`): its free
    /// blocks, its free list and its non-root free-space and rmap btree blocks.
    public var freeDataBlocks: UInt64 { UInt64(fields.freeBlocks) + UInt64(fields.flCount) + UInt64(fields.btreeBlocks) }

    /// Plans AG `agno` of `image` from `observations` (the scan's tree for the AG).
    ///
    /// - Throws: `RebuildRefusal` when the observations overlap where no sharing is
    ///   possible, an old free extent covers a block in use, or the AG has no room for the
    ///   new trees; `XFSFormatError` when a header or the bnobt cannot be read.
    public static func make(image: XFSImage, agno: UInt32, observations: RmapBTree) throws -> AGRebuildPlan {
        let g = image.geometry
        let agf = try image.agf(agno, checkingRmap: false)
        let agLength = agf.length
        let oldFree = try image.records(FreeSpaceByBlockFormat.self, AGBTreeRoot(.bnobt, agno: agno, agf: agf))
        let oldFreeList = image.freeList(agno, agf: agf).blocks

        // R's size and F0, from one walk of the observations in start order; overlaps
        // between observations are allowed only where blocks may be shared.
        var kept = 0
        var f0: [FreeSpaceRecord] = []
        var covered: UInt32 = 0
        // The record reaching furthest so far, OWN_AG included: an old tree or free-list
        // block that something else also claims must not be freed or reused.
        var reach: UInt32 = 0
        var reaching: RmapRecord? = nil
        try observations.forEach { r in
            let end = r.startBlock + r.blockCount
            if r.startBlock < reach, let other = reaching, !(mayShare(r, other, reflink: g.hasReflink)) {
                throw RebuildRefusal("AG \(agno): \(RmapText.describe(r)) and \(RmapText.describe(other)) claim the same blocks "
                    + "and cannot share them: run xfs_repair")
            }
            if end > reach {
                reach = end
                reaching = r
            }
            guard r.owner != RmapOwner.ag else { return .proceed }
            kept += 1
            if r.startBlock > covered { f0.append(FreeSpaceRecord(startBlock: covered, blockCount: r.startBlock - covered)) }
            covered = max(covered, end)
            return .proceed
        }
        if covered < agLength { f0.append(FreeSpaceRecord(startBlock: covered, blockCount: agLength - covered)) }

        // Old free extents must lie in F0 (the free-space check says so; a rebuild checks
        // again before it takes blocks from them).
        var j = 0
        for e in oldFree {
            while j < f0.count && f0[j].startBlock + f0[j].blockCount <= e.startBlock { j += 1 }
            guard j < f0.count, f0[j].startBlock <= e.startBlock,
                  UInt64(e.startBlock) + UInt64(e.blockCount) <= UInt64(f0[j].startBlock) + UInt64(f0[j].blockCount) else {
                throw RebuildRefusal("AG \(agno): bnobt free extent \(FreeSpaceCheck.describe(e)) covers blocks in use: run xfs_repair")
            }
        }

        let bnoStore = StagedAGBTreeStore<FreeSpaceByBlockFormat>(image: image, agno: agno, maxHeight: g.maxAllocBTreeLevels)
        let cntStore = StagedAGBTreeStore<FreeSpaceByCountFormat>(image: image, agno: agno, maxHeight: g.maxAllocBTreeLevels)
        let rmapStore = StagedAGBTreeStore<RmapFormat>(image: image, agno: agno, maxHeight: g.maxRmapBTreeLevels)
        // With less than a tenth of the AG free, blocks are packed (the kernel's rule for
        // its new rmapbt): two free slots a block.
        let freeBlocks = oldFree.reduce(0) { $0 + Int($1.blockCount) }
        let slack: Int? = freeBlocks < Int(agLength) / 10 ? 2 : nil
        func bnoGeometry(_ n: Int) throws -> BTreeBulkGeometry {
            try BTreeBulkLoader<FreeSpaceByBlockFormat, StagedAGBTreeStore<FreeSpaceByBlockFormat>>.geometry(
                for: bnoStore, recordCount: n, leafSlack: slack, nodeSlack: slack)
        }
        func cntGeometry(_ n: Int) throws -> BTreeBulkGeometry {
            try BTreeBulkLoader<FreeSpaceByCountFormat, StagedAGBTreeStore<FreeSpaceByCountFormat>>.geometry(
                for: cntStore, recordCount: n, leafSlack: slack, nodeSlack: slack)
        }
        func rmapGeometry(_ n: Int) throws -> BTreeBulkGeometry {
            try BTreeBulkLoader<RmapFormat, StagedAGBTreeStore<RmapFormat>>.geometry(
                for: rmapStore, recordCount: n, leafSlack: slack, nodeSlack: slack)
        }
        /// The blocks the free list must hold for trees of these heights
        /// (`xfs_alloc_min_freelist`: per tree, two blocks a level above the current one).
        func minFreeList(_ heights: [(Int, Int)]) -> Int {
            heights.reduce(0) { $0 + min($1.0 + 1, $1.1) * 2 - 2 }
        }

        // The loop of rebuild.md §6.3: sizes only grow, so it ends; a bound guards it.
        let reused = Array(oldFreeList.prefix(Int(g.agflSize)))
        var want = (bno: 0, cnt: 0, rmap: 0, list: 0)
        var taken: [UInt32] = []
        var free: [FreeSpaceRecord] = []
        var ownAG: [FreeSpaceRecord] = []
        var shapes: (bno: BTreeBulkGeometry, cnt: BTreeBulkGeometry, rmap: BTreeBulkGeometry)? = nil
        for _ in 0..<32 {
            let count = want.bno + want.cnt + want.rmap + max(0, want.list - reused.count)
            guard let carved = carve(count, from: oldFree) else {
                throw RebuildRefusal("AG \(agno): \(count) blocks are needed for the new trees and free list, "
                    + "but the AG has \(freeBlocks) free: run xfs_repair")
            }
            taken = carved
            let inUse = (taken + reused).sorted()
            free = subtract(inUse, from: f0)
            ownAG = extents(of: inUse)
            let bno = try bnoGeometry(free.count), cnt = try cntGeometry(free.count)
            let rmap = try rmapGeometry(kept + ownAG.count)
            let list = minFreeList([(bno.height, g.maxAllocBTreeLevels), (cnt.height, g.maxAllocBTreeLevels),
                                    (rmap.height, g.maxRmapBTreeLevels)])
            if bno.totalBlocks <= want.bno, cnt.totalBlocks <= want.cnt, rmap.totalBlocks <= want.rmap, list <= want.list {
                shapes = (bno, cnt, rmap)
                break
            }
            want = (max(want.bno, bno.totalBlocks), max(want.cnt, cnt.totalBlocks), max(want.rmap, rmap.totalBlocks),
                    max(want.list, list))
        }
        guard let shapes else {
            throw RebuildRefusal("AG \(agno): the block reservation for the new trees did not settle")
        }

        // Blocks to trees in claim order; the rest (and the old list) to the free list.
        var pool = taken[...]
        let bnoBlocks = Array(pool.prefix(shapes.bno.totalBlocks)); pool = pool.dropFirst(shapes.bno.totalBlocks)
        let cntBlocks = Array(pool.prefix(shapes.cnt.totalBlocks)); pool = pool.dropFirst(shapes.cnt.totalBlocks)
        let rmapBlocks = Array(pool.prefix(shapes.rmap.totalBlocks)); pool = pool.dropFirst(shapes.rmap.totalBlocks)
        let freeList = reused + pool
        guard freeList.count <= Int(g.agflSize) else {
            throw RebuildRefusal("AG \(agno): \(freeList.count) free-list blocks do not fit the AGFL's \(g.agflSize) slots")
        }

        // Load the three trees.
        func claims(_ blocks: [UInt32]) -> () -> UInt32 {
            var next = 0
            return { defer { next += 1 }; return blocks[next] }
        }
        var byStart = free.makeIterator()
        try BTreeBulkLoader<FreeSpaceByBlockFormat, StagedAGBTreeStore<FreeSpaceByBlockFormat>>.load(
            into: bnoStore, geometry: shapes.bno, nextRecord: { byStart.next()! }, claimBlock: claims(bnoBlocks))
        var byCount = free.sorted { ($0.blockCount, $0.startBlock) < ($1.blockCount, $1.startBlock) }.makeIterator()
        try BTreeBulkLoader<FreeSpaceByCountFormat, StagedAGBTreeStore<FreeSpaceByCountFormat>>.load(
            into: cntStore, geometry: shapes.cnt, nextRecord: { byCount.next()! }, claimBlock: claims(cntBlocks))
        try loadRmap(observations, ownAG: ownAG, into: rmapStore, geometry: shapes.rmap, claims: claims(rmapBlocks))

        // The new trees must pass the verifier that checks the old ones.
        try verify(bnoStore, agno: agno)
        try verify(cntStore, agno: agno)
        try verify(rmapStore, agno: agno)

        let fields = AGF.RebuiltFields(
            bnoRoot: bnoStore.root, bnoLevel: UInt32(bnoStore.height), cntRoot: cntStore.root, cntLevel: UInt32(cntStore.height),
            rmapRoot: rmapStore.root, rmapLevel: UInt32(rmapStore.height),
            flFirst: 0, flLast: freeList.isEmpty ? g.agflSize - 1 : UInt32(freeList.count - 1), flCount: UInt32(freeList.count),
            freeBlocks: UInt32(free.reduce(0) { $0 + UInt64($1.blockCount) }),
            longest: free.map(\.blockCount).max() ?? 0,
            btreeBlocks: UInt32(bnoBlocks.count - 1 + cntBlocks.count - 1 + rmapBlocks.count - 1),
            rmapBlocks: UInt32(rmapBlocks.count))
        let agfOffset = g.agfByteOffset(agno), agflOffset = g.agflByteOffset(agno)
        let agfSector = try image.sectorBytes(at: agfOffset)
        let agflSector = try image.sectorBytes(at: agflOffset)
        return AGRebuildPlan(
            agno: agno, oldAGF: agf, fields: fields, rmapRecords: shapes.rmap.recordCount, freeExtents: free.count,
            rmapBlocks: rmapBlocks, bnoBlocks: bnoBlocks, cntBlocks: cntBlocks, freeList: freeList,
            treeWrites: bnoStore.takeSealedBlocks() + cntStore.takeSealedBlocks() + rmapStore.takeSealedBlocks(),
            agfWrite: (agfOffset, AGF.edited(agfSector, fields)),
            agflWrite: (agflOffset, AGFL.edited(agflSector, blocks: freeList, agflSize: g.agflSize)))
    }

    /// Whether two observations may cover the same blocks: written or unwritten data-fork
    /// extents of files on a reflink filesystem (shared blocks, one record per owner).
    static func mayShare(_ a: RmapRecord, _ b: RmapRecord, reflink: Bool) -> Bool {
        reflink && a.isFileMapping && b.isFileMapping && !a.isAttrFork && !b.isAttrFork
    }

    /// `count` blocks carved from the ends of the largest extents of `free`, in ascending
    /// order per extent; nil when `free` has fewer blocks. Carving ends keeps the number of
    /// free extents from growing.
    static func carve(_ count: Int, from free: [FreeSpaceRecord]) -> [UInt32]? {
        var left = count
        var blocks: [UInt32] = []
        blocks.reserveCapacity(count)
        for e in free.sorted(by: { ($0.blockCount, $1.startBlock) > ($1.blockCount, $0.startBlock) }) where left > 0 {
            let n = min(UInt32(left), e.blockCount)
            let end = e.startBlock + e.blockCount
            blocks += (end - n ..< end)
            left -= Int(n)
        }
        return left == 0 ? blocks : nil
    }

    /// `extents` (disjoint, in start order) without the blocks `used` (ascending).
    static func subtract(_ used: [UInt32], from extents: [FreeSpaceRecord]) -> [FreeSpaceRecord] {
        var result: [FreeSpaceRecord] = []
        result.reserveCapacity(extents.count + used.count)
        var u = 0
        for e in extents {
            var start = e.startBlock
            let end = e.startBlock + e.blockCount
            while u < used.count && used[u] < end {
                if used[u] >= start {
                    if used[u] > start { result.append(FreeSpaceRecord(startBlock: start, blockCount: used[u] - start)) }
                    start = used[u] + 1
                }
                u += 1
            }
            if start < end { result.append(FreeSpaceRecord(startBlock: start, blockCount: end - start)) }
        }
        return result
    }

    /// The ascending `blocks` as extents.
    static func extents(of blocks: [UInt32]) -> [FreeSpaceRecord] {
        var result: [FreeSpaceRecord] = []
        for b in blocks {
            if let last = result.last, last.startBlock + last.blockCount == b {
                result[result.count - 1].blockCount += 1
            } else {
                result.append(FreeSpaceRecord(startBlock: b, blockCount: 1))
            }
        }
        return result
    }

    /// Bulk-loads the new rmapbt: the observations without OWN_AG, pulled through a cursor
    /// over the in-memory tree, merged in key order with the OWN_AG extents.
    private static func loadRmap(_ observations: RmapBTree, ownAG: [FreeSpaceRecord], into store: StagedAGBTreeStore<RmapFormat>,
                                 geometry: BTreeBulkGeometry, claims: () -> UInt32) throws {
        let transaction = Transaction()
        defer { try? observations.tree.commit(transaction) }
        try observations.tree.withCursor(in: transaction) { cursor in
            var started = false
            func nextKept() throws -> RmapRecord? {
                while true {
                    let more = started ? try cursor.increment() : try cursor.moveToFirst()
                    started = true
                    guard more, let r = cursor.record else { return nil }
                    if r.owner != RmapOwner.ag { return r }
                }
            }
            var pending = try nextKept()
            var own = ownAG.makeIterator()
            var pendingOwn = own.next().map { RmapRecord(startBlock: $0.startBlock, blockCount: $0.blockCount, owner: RmapOwner.ag) }
            try BTreeBulkLoader<RmapFormat, StagedAGBTreeStore<RmapFormat>>.load(
                into: store, geometry: geometry,
                nextRecord: {
                    if let r = pending, pendingOwn.map({ RmapFormat.lowKey(of: r) < RmapFormat.lowKey(of: $0) }) ?? true {
                        pending = try nextKept()
                        return r
                    }
                    let o = pendingOwn!
                    pendingOwn = own.next().map { RmapRecord(startBlock: $0.startBlock, blockCount: $0.blockCount, owner: RmapOwner.ag) }
                    return o
                },
                claimBlock: claims)
        }
    }

    /// Runs the engine's verifier over a staged tree; any fault is a bug in the plan.
    private static func verify<Format: BTreeRecordFormat>(_ store: StagedAGBTreeStore<Format>, agno: UInt32) throws {
        let report = BTreeVerifier<Format, StagedAGBTreeStore<Format>>.verify(store)
        if let fault = report.faults.first {
            throw RebuildRefusal("AG \(agno): the new \(Format.name) fails its own verification (\(fault.check.rawValue): "
                + "\(fault.detail)); nothing was written")
        }
    }
}
