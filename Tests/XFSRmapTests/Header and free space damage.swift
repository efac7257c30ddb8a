import Foundation
import Testing
import XFSFormat
import XFSRmap
import XFSTestSupport

// Damage outside the rmapbt that the check must report where it is, without a cascade over
// the healthy structures around it: a free list that needs a reset, a damaged AGF, and
// free-space btrees that disagree with what the filesystem uses. Each image is a scratch
// copy of mixed-4k damaged with `xfs_db -x`; xfs_repair -n is the oracle that the damage is
// real.

/// Runs `commands` with xfs_db on a scratch copy of mixed-4k and returns our check's result
/// and xfs_repair -n's.
private func damaged(_ commands: [String]) throws -> (CheckResult, ToolRun) {
    try withScratchCopy(of: "mixed-4k") { path in
        try xfsDBWrite(path, commands)
        return (try checkImage(path), try xfsRepairN(path))
    }
}

/// The clean image's verdict, for the expected record counts.
private let cleanSummaries: [RmapAGSummary] = {
    (try? withScratchCopy(of: "mixed-4k") { try checkImage($0).summaries }) ?? []
}()

@Suite("Header and free-space damage", .enabled(if: hasXFSTools, "needs xfs_db and xfs_repair"))
struct HeaderAndFreeSpaceDamageTests {
    @Test("a free list that needs a reset is one finding about the AGFL; the AG is still scanned")
    func agflNeedsReset() throws {
        let (result, repair) = try damaged(["agf 0", "write -d flcount 13"])
        #expect(repair.status == 1, "xfs_repair -n: \(repair.output.suffix(400))")
        #expect(result.findings.count == 1, "\(result.firstLines(6))")
        let finding = try #require(result.findings.first)
        #expect(finding.agno == 0 && finding.kind == .header)
        #expect(finding.detail.contains("free list needs reset"), "\(finding)")
        // Every record of every AG was expected and found: nothing was dropped.
        for (summary, clean) in zip(result.summaries, cleanSummaries) {
            #expect(summary.expectedRecords == clean.expectedRecords, "AG \(summary.agno)")
            #expect(summary.onDiskRecords == clean.onDiskRecords, "AG \(summary.agno)")
        }
    }

    @Test("a damaged AGF is one finding; the AG's inodes are still scanned and no other AG suffers")
    func damagedAGF() throws {
        // A wrong seqno and CRC: the AGF cannot be trusted, but the AGI and the inodes can.
        let (result, repair) = try damaged(["agf 1", "write -c seqno 5"])
        #expect(repair.status == 1, "xfs_repair -n: \(repair.output.suffix(400))")
        #expect(result.findings.count == 1, "\(result.firstLines(6))")
        let finding = try #require(result.findings.first)
        #expect(finding.agno == 1 && finding.kind == .header, "\(finding)")
        #expect(finding.description == "AG 1: AGF: bad CRC", "\(finding)")
        #expect(result.findings(in: 0).isEmpty && result.findings(in: 2).isEmpty && result.findings(in: 3).isEmpty)
        #expect(result.summaries[1].expectedRecords > 0, "AG 1's inodes and AGI-rooted trees were observed")
    }

    @Test("a free extent over blocks in use is found (xfs_repair -n: claims free block)")
    func freeExtentOverUsedBlocks() throws {
        // bnobt leaf record 1 of AG 0 is [355, 5]; the inode chunk at 360 follows it.
        let (result, repair) = try damaged(["agf 0", "addr bnoroot", "addr ptrs[1]", "write -d recs[1].blockcount 10"])
        #expect(repair.status == 1, "xfs_repair -n: \(repair.output.suffix(400))")
        #expect(result.findings.count == 1, "\(result.firstLines(6))")
        let finding = try #require(result.findings.first)
        #expect(finding.agno == 0 && finding.kind == .freeSpace)
        #expect(finding.block == 360)
        #expect(finding.found?.owner == RmapOwner.inodes, "\(finding)")
        #expect(finding.detail.contains("bnobt record [start 355, len 10]"), "\(finding)")
    }

    @Test("a free extent the bnobt lost is one disagreement, not a leak")
    func bnobtLosesAnExtent() throws {
        let (result, repair) = try damaged(["agf 0", "addr bnoroot", "addr ptrs[1]", "write -d numrecs 407"])
        #expect(repair.status == 1, "xfs_repair -n: \(repair.output.suffix(400))")
        #expect(result.findings.count == 1, "\(result.firstLines(6))")
        let finding = try #require(result.findings.first)
        #expect(finding.kind == .freeSpace && finding.detail.contains("is not in the bnobt"), "\(finding)")
    }

    @Test("the expected record count is reported when the on-disk rmapbt cannot be read")
    func expectedCountWithUnreadableTree() throws {
        let (result, _) = try damaged(["agf 1", "write -d rmaplevel 4"])
        let summary = result.summaries[1]
        #expect(summary.onDiskRecords == nil)
        // Everything but the OWN_AG records of the rmapbt's own blocks, which could not be
        // walked, is expected as on the clean image.
        let clean = cleanSummaries[1].expectedRecords
        #expect(summary.expectedRecords > clean - 10 && summary.expectedRecords <= clean, "\(summary.line)")
        #expect(summary.line.contains("\(summary.expectedRecords) records expected"))
    }
}
