#if canImport(Glibc)
import Glibc
#endif
import Testing
import XFSTestSupport
import XFSInMemoryBTrees

/// The code of the DocC article on the rmap API ("Checking and rebuilding rmap btrees"),
/// as a newcomer would copy it, run on a kernel-made image.
@Suite("Rmap API article")
struct RmapArticleTests {
    @Test("Reading, scanning and checking an image as the article shows")
    func articleCode() throws {
        let image = try XFSImage(path: try Fixtures.imagePath("mixed-4k"))

        // Read an image.
        var onDisk = 0
        for agno in 0..<image.geometry.agCount {
            let agf = try image.agf(agno)
            try image.withCursor(RmapFormat.self, AGBTreeRoot(.rmapbt, agno: agno, agf: agf)) { cursor in
                _ = try cursor.queryAll { record in
                    _ = (agno, record.startBlock, record.blockCount, RmapOwner.name(record.owner))
                    onDisk += 1
                    return .proceed
                }
            }
        }
        #expect(onDisk == 16_200, "the fixture's rmap records")

        // Scan.
        let scanner = try RmapScanner(image: image)
        try scanner.scan(ags: Array(0..<image.geometry.agCount))
        var scanned = 0
        try scanner.tree(0).forEach { _ in scanned += 1; return .proceed }
        #expect(scanned == 7432)
        #expect(scanner.problems.isEmpty)

        // Check.
        let checker = RmapChecker(scanner: scanner)
        var summaries: [RmapAGSummary] = []
        var findings: [RmapFinding] = []
        for agno in 0..<image.geometry.agCount {
            let (summary, found) = try checker.check(agno)
            summaries.append(summary)
            findings += found
        }
        let report = RmapCheckReport(summaries: summaries, findings: findings)
        #expect(report.isConsistent)
        #expect(summaries.map(\.line).first == "AG 0: 7432 records expected, 7432 on disk (47 blocks, height 2): consistent")
    }

    @Test("The online check as the article shows, on a loop-mounted kernel-made image")
    func onlineArticleCode() throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }

        var options = OnlineCheckOptions()
        options.cpuShare = 0.1                 // at most 10 % of one CPU (nil: as much as it gets)
        let check = try OnlineRmapCheck(mountPoint: mount.mountPoint, options: options)
        let report = try check.run()           // LiveCheckError when no verdict can be given
        print(report.isConsistent, report.findings.count, report.updatesApplied, report.cpuSeconds)

        #expect(report.isConsistent && report.findings.isEmpty)
        #expect(report.pacedCPUSeconds <= 0.1 * report.totalSeconds + 0.25,
                "scan and comparison: \(report.pacedCPUSeconds) s of CPU in \(report.totalSeconds) s")
    }
}
