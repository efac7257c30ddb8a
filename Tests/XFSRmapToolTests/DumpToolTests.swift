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

@Suite("xfs-rmap dump on a tree out of key order")
struct DumpOutOfOrderTests {
    @Test("two records swapped in a leaf: every record printed in tree order, the fault on stderr, exit 1")
    func swappedRecords() throws {
        let scratch = try ScratchDirectory()
        let path = scratch.file("swapped.img")
        try Fixtures.runTool("cp", ["--sparse=always", try Fixtures.imagePath("mixed-4k"), path])
        let leafPath = ["agf 1", "addr rmaproot", "addr ptrs[5]"]
        let leaf = try xfsDBNumber(path, ["agf 1", "addr rmaproot"], "ptrs[5]")
        let fields = ["startblock", "blockcount", "owner", "offset", "extentflag", "attrfork", "bmbtblock"]
        func values(_ slot: Int) throws -> [String] {
            try fields.map { "\(Int64(bitPattern: try xfsDBNumber(path, leafPath, "recs[\(slot)].\($0)")))" }
        }
        let (second, third) = (try values(2), try values(3))
        try xfsDBWrite(path, leafPath + fields.indices.flatMap { i in
            ["write -d recs[2].\(fields[i]) -- \(third[i])", "write -d recs[3].\(fields[i]) -- \(second[i])"]
        })
        let run = try ToolRunner.run(["dump", path])
        #expect(run.status == 1, "\(run)")
        // The same records as xfs_db printed before the damage, two neighbours swapped.
        let corpus = try Fixtures.rmapText("mixed-4k").split(separator: "\n")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.sorted() == corpus.sorted())
        let differ = lines.indices.filter { lines[$0] != corpus[$0] }
        #expect(differ.count == 2 && differ[1] == differ[0] + 1, "\(differ)")
        if differ.count == 2 {
            #expect(lines[differ[0]] == corpus[differ[1]] && lines[differ[1]] == corpus[differ[0]])
        }
        #expect(run.stderr.contains("xfs-rmap: AG 1 rmapbt block \(leaf): keyOrder: record key"), "\(run.stderr)")
        #expect(run.stderrLines.last == "xfs-rmap: AG 1: printed the \(corpus.filter { $0.hasPrefix("1\t") }.count) records that could be read, in tree order",
                "\(run.stderr)")
    }
}
