import XFSBTree
import XFSBuffer
import XFSFormat

/// An offline rebuild of rmap btrees: which AGs need one, and every byte it will write, in
/// the order it must be written (rebuild.md §6).
///
/// A rebuild trusts the scan's observations only when the check found nothing wrong
/// outside the rmap btree: ``refusal(for:)-(RmapCheckReport)`` names the first finding a new rmapbt cannot fix
/// (a free extent over blocks in use, an unreadable inode or AG header, two owners of one
/// block). Each AG then gets an ``AGRebuildPlan``: new bnobt, cntbt and rmapbt, bulk-loaded
/// from the observations, and a new free list; and the primary superblock gets its free
/// block count summed afresh over every AG.
///
/// ``Plan/phases`` orders the writes so that a crash anywhere leaves either the old AG or
/// the new one, and a filesystem the kernel refuses to mount until it is repaired:
///
/// 1. the superblock with NEEDSREPAIR set;
/// 2. every new tree block (in old free space: the old trees still stand);
/// 3. every free list;
/// 4. every AGF (each one switches its AG to the new trees);
/// 5. the superblock with its new free block count and NEEDSREPAIR cleared.
///
/// The writer flushes the image between phases, and keeps an undo file of every block it
/// overwrites, complete and flushed before the first write.
public enum RmapRebuild {
    /// Every write of a rebuild, planned.
    public struct Plan: Sendable {
        /// One plan per AG rebuilt, in AG order.
        public var ags: [AGRebuildPlan]
        /// `sb_fdblocks` before and after.
        public var oldFreeDataBlocks: UInt64
        /// `sb_fdblocks` after the rebuild.
        public var newFreeDataBlocks: UInt64
        /// The writes, phase by phase (see ``RmapRebuild``); each is (byte offset, bytes).
        public var phases: [[(byteOffset: UInt64, bytes: [UInt8])]]
        /// The primary superblock sector as it will be after the rebuild.
        public var finalSuperblock: [UInt8]

        /// Bytes the rebuild writes, all phases.
        public var bytesWritten: Int { phases.reduce(0) { $0 + $1.reduce(0) { $0 + $1.bytes.count } } }
    }

    /// Whether `finding` is damage a new rmapbt (with new free-space trees and free list)
    /// repairs: a missing, extra or wrong record, a structural fault of the rmapbt, the
    /// AGF's rmap counters, or a damaged free list. Everything else makes the observations
    /// themselves doubtful.
    public static func repairs(_ finding: RmapFinding) -> Bool {
        switch finding.kind {
        case .missing, .extra, .wrong, .structure: true
        case .header: finding.detail.hasPrefix("AGFL:") || finding.detail.hasPrefix("AGF rmap")
        case .observation, .freeSpace: false
        }
    }

    /// Why a rebuild of `report`'s image must not run, or nil: the first finding that
    /// ``repairs(_:)`` does not cover, in any AG (an inode in one AG maps blocks in all).
    public static func refusal(for report: RmapCheckReport) -> RebuildRefusal? {
        guard let finding = report.findings.first(where: { !repairs($0) }) else { return nil }
        return RebuildRefusal("\(finding.description): damage outside the rmap btree, which a rebuild cannot fix; run xfs_repair")
    }

    /// Why `image` must not be rebuilt whatever its check says, or nil: an interrupted
    /// repair (NEEDSREPAIR), an interrupted mkfs (inprogress).
    public static func refusal(for image: XFSImage) -> RebuildRefusal? {
        let sb = image.superblock
        if sb.featuresIncompat & Superblock.Incompat.needsRepair != 0 {
            return RebuildRefusal("the superblock says the filesystem needs repair (NEEDSREPAIR): an earlier repair did not "
                + "finish; undo it (xfs-rmap undo) or run xfs_repair")
        }
        if sb.inProgress != 0 {
            return RebuildRefusal("the superblock says mkfs did not finish (sb_inprogress): run xfs_repair")
        }
        return nil
    }

    /// The AGs a rebuild of `report` writes: those with findings among `candidates`, or
    /// every candidate when `force`.
    public static func agsToRebuild(_ report: RmapCheckReport, candidates: [UInt32], force: Bool) -> [UInt32] {
        force ? candidates : candidates.filter { agno in report.findings.contains { $0.agno == agno } }
    }

    /// Plans the rebuild of `ags` from `scanner`'s observations (a finished scan of every
    /// AG), on as many threads as the scan used.
    public static func plan(scanner: RmapScanner, ags: [UInt32]) throws -> Plan {
        let image = scanner.image
        let results = ParallelAGs.results(ags, threads: scanner.threads) { agno in
            try AGRebuildPlan.make(image: image, agno: agno, observations: scanner.tree(agno))
        }
        let plans = try results.map { try $0.get() }
        var free: UInt64 = 0
        for agno in 0..<image.geometry.agCount {
            if let plan = plans.first(where: { $0.agno == agno }) {
                free += plan.freeDataBlocks
            } else {
                let agf = try image.agf(agno, checkingRmap: false)
                free += UInt64(agf.freeBlocks) + UInt64(agf.flCount) + UInt64(agf.btreeBlocks)
            }
        }
        let superblock = try image.sectorBytes(at: 0)
        let old = image.superblock.freeDataBlocks
        let flagged = Superblock.edited(superblock, freeDataBlocks: old, needsRepair: true)
        let final = Superblock.edited(superblock, freeDataBlocks: free, needsRepair: false)
        let phases: [[(byteOffset: UInt64, bytes: [UInt8])]] = [
            [(0, flagged)],
            plans.flatMap(\.treeWrites),
            plans.map(\.agflWrite),
            plans.map(\.agfWrite),
            [(0, final)],
        ]
        return Plan(ags: plans, oldFreeDataBlocks: old, newFreeDataBlocks: free, phases: phases, finalSuperblock: final)
    }
}
