import Testing
import XFSTestSupport

/// Every fixture image.
let fixtureImages = [
    "empty-4k", "mixed-4k", "mixed-1k", "geo-1k-i512-sect1k", "geo-2k-i1024-oddag",
    "geo-4k-nrext64", "geo-4k-sect4k", "geo-64k-i2048", "geo-8k", "manyag-4k",
]

@Suite("xfs-rmap dump")
struct DumpToolTests {
    @Test("dump IMAGE prints exactly what xfs_db btdump printed, and exits 0", arguments: fixtureImages)
    func dumpMatchesCorpus(name: String) throws {
        let run = try ToolRunner.run(["dump", try Fixtures.imagePath(name)])
        #expect(run.status == 0, "\(run)")
        #expect(run.stderr.isEmpty)
        #expect(run.stdout == (try Fixtures.rmapText(name)))
    }

    @Test("dump --ag N prints the header and only AG N's records", arguments: ["mixed-4k", "geo-2k-i1024-oddag"])
    func dumpOneAG(name: String) throws {
        let corpus = try Fixtures.rmapText(name)
        let lines = corpus.split(separator: "\n")
        let agCount = try xfsDBNumber(try Fixtures.imagePath(name), ["sb 0"], "agcount")
        for agno in 0 ..< agCount {
            let run = try ToolRunner.run(["dump", try Fixtures.imagePath(name), "--ag", "\(agno)"])
            #expect(run.status == 0, "\(run)")
            let expected = ([lines[0]] + lines.dropFirst().filter { $0.hasPrefix("\(agno)\t") })
                .map { $0 + "\n" }.joined()
            #expect(lines.dropFirst().contains { $0.hasPrefix("\(agno)\t") })
            #expect(run.stdout == expected, "AG \(agno)")
        }
    }

    @Test("dump --ag past the last AG exits 2 naming the valid range")
    func dumpAGOutOfRange() throws {
        let run = try ToolRunner.run(["dump", try Fixtures.imagePath("mixed-4k"), "--ag", "4"])
        #expect(run.status == 2, "\(run)")
        #expect(run.stdout.isEmpty)
        #expect(run.stderr == "xfs-rmap: --ag 4: the filesystem has 4 AGs (0...3)\n")
    }
}
