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
}
