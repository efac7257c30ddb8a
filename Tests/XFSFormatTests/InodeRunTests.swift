import Testing
import XFSFormat
import XFSTestSupport

@Suite("Inodes read in runs")
struct InodeRunTests {
    @Test("forEachInode gives every inode, in the order asked, exactly as inode(_:) does; bogus numbers fail alike",
          arguments: ["mixed-4k", "mixed-1k", "geo-4k-sect4k", "geo-64k-i2048", "geo-1k-i512-sect1k"])
    func sameAsOneByOne(name: String) throws {
        let image = try XFSImage(path: try Fixtures.imagePath(name))
        let g = image.geometry
        var inos: [UInt64] = []
        for agno in 0..<g.agCount {
            for record in try image.inodeBTreeRecords(.inobt, in: try image.agHeaders(agno)) {
                inos += g.allocatedInodes(record, agno: agno)
            }
        }
        try #require(inos.count > 64, "\(name): too few inodes to make runs")
        // Numbers outside the filesystem and inside AG 0's headers in the middle, and a step
        // back to the first inode at the end: each breaks a run.
        var asked = inos
        asked.insert(contentsOf: [UInt64.max >> 8, 1], at: inos.count / 2)
        asked.append(inos[0])
        var seen: [UInt64] = []
        try image.forEachInode(asked) { ino, loaded in
            seen.append(ino)
            let alone = Result { try image.inode(ino) }
            switch (loaded, alone) {
            case (.success(let inRun), .success(let single)):
                #expect(inRun == single, "\(name) inode \(ino)")
            case (.failure(let inRun), .failure(let single)):
                #expect("\(inRun)" == "\(single)", "\(name) inode \(ino)")
            default:
                Issue.record("\(name) inode \(ino): \(loaded) in a run, \(alone) alone")
            }
        }
        #expect(seen == asked)
    }
}
