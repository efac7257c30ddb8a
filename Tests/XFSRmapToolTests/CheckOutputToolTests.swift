import Foundation
import Testing
import XFSTestSupport

// What `check` prints for damage with one cause and many consequences, how much of it the
// text output shows, what the messages look like, and what stderr gets.

/// The corpus records of mixed-4k, split into fields (the header left out).
private func corpusRecords() throws -> [[Substring]] {
    try Fixtures.rmapText("mixed-4k").split(separator: "\n").dropFirst().map { $0.split(separator: "\t") }
}

/// A scratch copy of mixed-4k whose one bmbt block, of the file with the most, gets a bad
/// magic number (CRC recomputed): the copy's path, the inode and how many on-disk records its
/// data fork owns.
private func imageWithUnreadableBmbt(in scratch: ScratchDirectory) throws -> (path: String, ino: String, records: Int) {
    let records = try corpusRecords()
    // The owner of the most bmbt blocks (field 7: bmbtblock).
    var bmbtBlocks: [Substring: Int] = [:]
    for r in records where r[7] == "1" { bmbtBlocks[r[3], default: 0] += 1 }
    let ino = try #require(bmbtBlocks.max { $0.value < $1.value }?.key)
    let path = scratch.file("bmbt.img")
    try Fixtures.runTool("cp", ["--sparse=always", try Fixtures.imagePath("mixed-4k"), path])
    try xfsDBWrite(path, ["inode \(ino)", "addr u3.bmbt.ptrs[2]", "write -d magic 0x12345678"])
    return (path, String(ino), records.filter { $0[3] == ino && $0[6] == "0" }.count)
}

/// A scratch copy of mixed-4k whose AG 1 leaf (root entry 5) has its first `count` records'
/// owners changed to 4242 (a second inode that owns nothing): `count` missing and `count`
/// extra records in AG 1, and the leaf's block.
private func imageWithWrongOwners(_ count: Int, in scratch: ScratchDirectory) throws -> (path: String, leaf: UInt64) {
    let path = scratch.file("owners.img")
    try Fixtures.runTool("cp", ["--sparse=always", try Fixtures.imagePath("mixed-4k"), path])
    let leafPath = ["agf 1", "addr rmaproot", "addr ptrs[5]"]
    let leaf = try xfsDBNumber(path, ["agf 1", "addr rmaproot"], "ptrs[5]")
    // Slot 1 stays: the parent's low key is the leaf's first key.
    try xfsDBWrite(path, leafPath + (2 ..< 2 + count).map { "write -d recs[\($0)].owner 4242" })
    return (path, leaf)
}

@Suite("xfs-rmap check output", .enabled(if: Fixtures.hasTool("xfs_db"), "needs xfs_db"))
struct CheckOutputToolTests {
    @Test("one unreadable bmbt block: one finding holding every record of its fork, not one line per record")
    func unreadableFork() throws {
        let scratch = try ScratchDirectory()
        let (path, ino, count) = try imageWithUnreadableBmbt(in: scratch)
        #expect(count > 100)
        let run = try ToolRunner.run(["check", path], timeout: 60)
        #expect(run.status == 1, "\(run)")
        let lines = run.stdout.split(separator: "\n")
        // One finding, four AG summaries, the total.
        #expect(lines.count == 6, "\(lines.count) lines: \(run.stdout.prefix(600))")
        #expect(lines.first?.contains("inode \(ino) data fork unreadable (bmbt block ") == true, "\(run)")
        #expect(lines.first?.contains("its \(count) on-disk records (AG ") == true, "\(run)")
        #expect(lines.first?.hasSuffix(") cannot be checked") == true, "\(run)")
        #expect(!run.stdout.contains("extra record"))
        #expect(lines.contains { $0.hasSuffix(", \(count) records unchecked") }, "\(run)")

        let json = try checkJSON(try ToolRunner.run(["check", "--json", path], timeout: 60))
        let findings = try #require(json["findings"] as? [[String: Any]])
        #expect(findings.count == 1)
        let unchecked = try #require(findings.first?["unchecked"] as? [[String: Any]])
        #expect(unchecked.map { $0["records"] as? Int ?? 0 }.reduce(0, +) == count)
        let ags = try #require(json["ags"] as? [[String: Any]])
        #expect(ags.map { $0["unchecked_records"] as? Int ?? 0 }.reduce(0, +) == count)
    }

    @Test("--max-findings caps the text per AG with a count of the rest; --json keeps every finding")
    func cap() throws {
        let scratch = try ScratchDirectory()
        let (path, _) = try imageWithWrongOwners(3, in: scratch)
        let all = try ToolRunner.run(["check", path], timeout: 60)
        #expect(all.status == 1, "\(all)")
        let findingLines = all.stdout.split(separator: "\n").filter { $0.hasPrefix("AG 1 rmapbt leaf") || $0.hasPrefix("AG 1: missing") }
        #expect(findingLines.count == 6, "\(all.stdout)")
        #expect(!all.stdout.contains("more finding"))

        let capped = try ToolRunner.run(["check", "--max-findings", "2", path], timeout: 60)
        #expect(capped.status == 1)
        let cappedLines = capped.stdout.split(separator: "\n")
        #expect(Array(cappedLines.prefix(2)) == Array(findingLines.prefix(2)))
        #expect(cappedLines.dropFirst(2).first == "... and 4 more findings in AG 1 (--max-findings 0 or --json lists every one)",
                "\(capped.stdout)")
        #expect(cappedLines.count == 2 + 1 + 4 + 1)

        let json = try checkJSON(try ToolRunner.run(["check", "--json", "--max-findings", "2", path], timeout: 60))
        #expect((json["findings"] as? [[String: Any]])?.count == 6)
        let unlimited = try ToolRunner.run(["check", "--max-findings", "0", path], timeout: 60)
        #expect(unlimited.stdout == all.stdout)
    }

    @Test("findings label a record's fields and say which block they name: the rmapbt leaf of an extra record, none for a missing one")
    func labels() throws {
        let scratch = try ScratchDirectory()
        let (path, leaf) = try imageWithWrongOwners(1, in: scratch)
        let run = try ToolRunner.run(["check", path], timeout: 60)
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let extra = try #require(lines.first { $0.contains("extra record") }, "\(run)")
        #expect(extra.hasPrefix("AG 1 rmapbt leaf \(leaf): extra record [start "), "\(extra)")
        #expect(extra.contains(", owner 4242, offset "), "\(extra)")
        let missing = try #require(lines.first { $0.contains("missing record") }, "\(run)")
        #expect(missing.hasPrefix("AG 1: missing record [start "), "\(missing)")
        #expect(missing.contains(", len ") && missing.contains(", offset "), "\(missing)")

        let json = try checkJSON(try ToolRunner.run(["check", "--json", path], timeout: 60))
        let findings = try #require(json["findings"] as? [[String: Any]])
        let kinds = Dictionary(findings.map { ($0["kind"] as? String ?? "", $0["block_kind"] as? String ?? "none") }) { a, _ in a }
        #expect(kinds == ["extra": "rmapbt_block", "missing": "data_block"], "\(findings)")
        #expect(findings.first { $0["kind"] as? String == "extra" }?["block"] as? Int == Int(leaf))
    }

    @Test("peak RSS goes to stderr only with --verbose")
    func peakRSSOnlyWhenVerbose() throws {
        let path = try Fixtures.imagePath("mixed-4k")
        let quiet = try ToolRunner.run(["check", path], timeout: 60)
        #expect(quiet.status == 0 && quiet.stderr.isEmpty, "\(quiet)")
        let verbose = try ToolRunner.run(["check", "--verbose", path], timeout: 60)
        #expect(verbose.status == 0 && verbose.stdout == quiet.stdout, "\(verbose)")
        #expect(verbose.stderrLines.count == 1 && verbose.stderr.hasPrefix("peak RSS ") && verbose.stderr.hasSuffix(" KiB\n"),
                "\(verbose)")
    }

    @Test("the last line counts the AGs checked, one AG in the singular")
    func totalLine() throws {
        let path = try Fixtures.imagePath("mixed-4k")
        #expect(try ToolRunner.run(["check", path], timeout: 60).stdout.hasSuffix("\nrmap: consistent in 4 AGs\n"))
        #expect(try ToolRunner.run(["check", "--ag", "1", path], timeout: 60).stdout.hasSuffix("\nrmap: consistent in 1 AG\n"))
    }
}

@Suite("xfs-rmap exit codes and errors")
struct ExitCodeToolTests {
    @Test("a usage error exits 2 with the message and the usage on stderr", arguments: [
        ["check"], ["check", "--bogus", "x.img"], ["dump"], ["scan", "a.img", "b.img"], ["check", "--max-findings=-1", "x.img"],
        ["frobnicate"],
    ])
    func usageError(_ arguments: [String]) throws {
        let run = try ToolRunner.run(arguments)
        #expect(run.status == 2, "\(arguments): \(run)")
        #expect(run.stdout.isEmpty, "\(arguments): \(run)")
        #expect(run.stderr.hasPrefix("Error: ") && run.stderr.contains("Usage: xfs-rmap"), "\(arguments): \(run)")
    }

    @Test("help and version still exit 0", arguments: [["--help"], ["check", "--help"], ["--version"]])
    func helpExitsZero(_ arguments: [String]) throws {
        let run = try ToolRunner.run(arguments)
        #expect(run.status == 0 && !run.stdout.isEmpty, "\(arguments): \(run)")
    }

    @Test("with --json, check and rebuild print {\"error\": MESSAGE} on exit 2, for a usage error too", arguments: [
        (["check", "--json", "/nonexistent/x.img"], "/nonexistent/x.img: No such file or directory"),
        (["rebuild", "--json", "--dry-run", "/nonexistent/x.img"], "/nonexistent/x.img: No such file or directory"),
        (["check", "--json"], "Missing expected argument '<image>'"),
        (["rebuild", "--json", "--bogus", "x.img"], "Unknown option '--bogus'"),
    ])
    func jsonError(_ arguments: [String], _ message: String) throws {
        let run = try ToolRunner.run(arguments)
        #expect(run.status == 2, "\(arguments): \(run)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run)")
        #expect(json.count == 1)
        #expect((json["error"] as? String)?.contains(message) == true, "\(json)")
        #expect(!run.stderr.isEmpty)
    }

    @Test("scan exits 1 when it could not read some observations, and says so on stderr", .enabled(if: Fixtures.hasTool("xfs_db")))
    func scanIncomplete() throws {
        let scratch = try ScratchDirectory()
        let (path, ino, _) = try imageWithUnreadableBmbt(in: scratch)
        let run = try ToolRunner.run(["scan", path], timeout: 60)
        #expect(run.status == 1, "\(run)")
        #expect(run.stdout.hasPrefix("agno\tstartblock"))
        #expect(run.stderrLines.first?.hasPrefix("xfs-rmap: warning: AG ") == true && run.stderr.contains("inode \(ino) data fork unreadable"),
                "\(run.stderr)")
        #expect(run.stderrLines.last == "xfs-rmap: 1 problem in the scan: the records printed leave out what could not be read",
                "\(run.stderr)")
        let clean = try ToolRunner.run(["scan", try Fixtures.imagePath("mixed-4k")], timeout: 60)
        #expect(clean.status == 0 && clean.stderr.isEmpty, "\(clean)")
    }
}
