import Foundation
import Testing
import XFSBTree
import XFSFormat
import XFSRmap
import XFSTestSupport

// The rebuild planner on its own: a plan made from a damaged image's observations, its writes
// applied in order with plain pwrites, then judged by xfs_repair -n and by our own check. The
// crash-safe writer with its undo file is tested with the tool.

/// Scans and checks the image at `path`, plans a rebuild of the AGs the check (or `force`)
/// selects, and applies the plan's writes phase by phase.
@discardableResult
func rebuildInPlace(_ path: String, force: Bool = false) throws -> RmapRebuild.Plan {
    let plan: RmapRebuild.Plan
    do {
        let image = try XFSImage(path: path)
        let scanner = try RmapScanner(image: image)
        let all = Array(0..<image.geometry.agCount)
        try scanner.scan(ags: all)
        let checker = RmapChecker(scanner: scanner)
        let results = try all.map { try checker.check($0) }
        let report = RmapCheckReport(summaries: results.map(\.0), findings: results.flatMap(\.1))
        if let refusal = RmapRebuild.refusal(for: report) { throw refusal }
        plan = try RmapRebuild.plan(scanner: scanner, ags: RmapRebuild.agsToRebuild(report, candidates: all, force: force))
    }
    let fd = open(path, O_RDWR)
    guard fd >= 0 else { throw Fixtures.Failure(description: "open \(path): errno \(errno)") }
    defer { close(fd) }
    for phase in plan.phases {
        for write in phase {
            let written = write.bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(write.byteOffset)) }
            guard written == write.bytes.count else { throw Fixtures.Failure(description: "pwrite: \(written)") }
        }
        fsync(fd)
    }
    return plan
}

@Suite("Rebuild plan", .enabled(if: hasXFSTools, "needs xfs_db and xfs_repair"))
struct RebuildPlanTests {
    @Test("a damaged rmapbt, rebuilt: xfs_repair -n and our check both find nothing", arguments: CorpusDamage.allCases)
    func rebuildCorpusDamage(_ kind: CorpusDamage) throws {
        try withScratchCopy(of: "mixed-4k") { path in
            let plan = try CorpusDamagePlan(kind, image: XFSImage(path: path))
            try xfsDBWrite(path, plan.commands)
            let rebuilt = try rebuildInPlace(path)
            #expect(rebuilt.ags.map(\.agno) == [CorpusDamage.agno])
            let repair = try xfsRepairN(path)
            #expect(repair.status == 0, "\(repair.output.suffix(1500))")
            let after = try checkImage(path)
            #expect(after.findings.isEmpty, "\(after.firstLines(5))")
        }
    }

    @Test("a forced rebuild of a clean image keeps it clean", arguments: ["mixed-4k", "mixed-1k", "geo-64k-i2048", "geo-4k-nrext64"])
    func forcedRebuild(_ name: String) throws {
        try withScratchCopy(of: name) { path in
            let before = try checkImage(path)
            try rebuildInPlace(path, force: true)
            let repair = try xfsRepairN(path)
            #expect(repair.status == 0, "\(repair.output.suffix(1500))")
            let after = try checkImage(path)
            #expect(after.findings.isEmpty, "\(after.firstLines(5))")
            #expect(after.summaries.count == before.summaries.count)
        }
    }

    @Test("a free-list block that a file also maps is refused: it would stay on the free list")
    func crossLinkedFreeListBlock() throws {
        try withScratchCopy(of: "mixed-4k") { path in
            // AG 0's first active free-list slot (103) now names block 13, which inode 141 maps.
            try xfsDBWrite(path, ["agfl 0", "write -d bno[103] 13"])
            // The check refuses (block 353, off the list now, is neither free nor in use) ...
            #expect(throws: RebuildRefusal.self) { try rebuildInPlace(path) }
            // ... and so does the planner on its own, for the block both claim.
            let image = try XFSImage(path: path)
            let scanner = try RmapScanner(image: image)
            try scanner.scan(ags: Array(0..<image.geometry.agCount))
            do {
                _ = try AGRebuildPlan.make(image: image, agno: 0, observations: scanner.tree(0))
                Issue.record("the plan took a block two owners claim")
            } catch let refusal as RebuildRefusal {
                #expect(refusal.reason.contains("claim the same blocks"), "\(refusal)")
            }
        }
    }
}
