import Foundation
import Testing
import XFSTestSupport

/// The repository's root, three folders up from this file.
private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A scratch folder for `name`'s build, outside the repository and kept between runs (so a
/// second run is incremental): `$TMPDIR/xfs-inmemory-btrees-builds-<hash>/<name>`, the hash
/// of the checkout's path and of the names of its source files. SwiftPM does not notice a
/// file added to or removed from a package that a build depends on by path, and would
/// reuse a build plan without it; a new file list gets a folder of its own.
private func scratchPath(_ name: String) -> String {
    var hash: UInt32 = 0x811C_9DC5
    func mix(_ text: String) { for byte in text.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 } }
    mix(root.path)
    let sources = root.appendingPathComponent("Sources")
    let files = FileManager.default.enumerator(atPath: sources.path)?.compactMap { $0 as? String } ?? []
    for file in files.sorted() where file.hasSuffix(".swift") || file.hasSuffix(".c") || file.hasSuffix(".h") { mix(file) }
    return URL(fileURLWithPath: NSTemporaryDirectory())
        .appendingPathComponent("xfs-inmemory-btrees-builds-\(String(hash, radix: 16))/\(name)").path
}

/// What one run of a command did.
private struct Run: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
    var description: String {
        "exit \(status) after \(Int(seconds)) s; stderr: \(stderr.suffix(3000)); stdout: \(stdout.suffix(2000))"
    }
}

/// Runs `arguments` (the first found on PATH) in the repository's root, killed after
/// `timeout` seconds.
private func run(_ arguments: [String], timeout: Int) throws -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
    process.arguments = ["-s", "KILL", "\(timeout)"] + arguments
    process.currentDirectoryURL = root
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let start = Date()
    try process.run()
    // Read both pipes while the process runs, so neither fills up and blocks it.
    nonisolated(unsafe) var errorData = Data()
    let reader = Thread { errorData = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let outputData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !reader.isFinished { usleep(1000) }
    return Run(status: process.terminationStatus, stdout: String(decoding: outputData, as: UTF8.self),
               stderr: String(decoding: errorData, as: UTF8.self), seconds: Date().timeIntervalSince(start))
}

/// Builds the package `Examples/name` (debug, in its own scratch folder) and returns the
/// path of its executable `product`.
private func buildExample(_ name: String, product: String) throws -> String {
    let scratch = scratchPath("Examples-\(name)")
    let build = try run(["swift", "build", "--package-path", "Examples/\(name)", "--scratch-path", scratch,
                         "--product", product], timeout: 1800)
    try #require(build.status == 0, "\(build)")
    #expect(!build.stderr.contains("warning:") && !build.stdout.contains("warning:"), "\(build)")
    print("Examples/\(name): built in \(Int(build.seconds)) s")
    return scratch + "/debug/" + product
}

/// The examples build and run as the README and the getting-started article say, and the
/// documentation catalog builds without a warning: one at a time, since each is a build of
/// the whole library.
@Suite("Examples and documentation", .serialized)
struct ExamplesAndDocumentationTests {
    @Test("Examples/ExtentIndex builds against the library by path and prints what the README shows")
    func extentIndex() throws {
        let binary = try buildExample("ExtentIndex", product: "ExtentIndex")
        let outcome = try run([binary], timeout: 60)
        #expect(outcome.status == 0, "\(outcome)")
        #expect(outcome.stdout == Self.extentIndexOutput, "\(outcome)")
    }

    @Test("The README's library excerpt and the getting-started article's output are Examples/ExtentIndex's")
    func snippetsMatchTheExample() throws {
        let source = try String(contentsOf: root.appendingPathComponent("Examples/ExtentIndex/Sources/ExtentIndex/main.swift"),
                                encoding: .utf8)
        let sourceLines = Set(source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let start = try #require(readme.range(of: "## The library"))
        let block = try #require(readme[start.upperBound...].range(of: "```swift\n"))
        let end = try #require(readme[block.upperBound...].range(of: "```\n"))
        let excerpt = readme[block.upperBound..<end.lowerBound].split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && $0 != "// …" }
        #expect(excerpt.count > 20)
        for line in excerpt { #expect(sourceLines.contains(line), "README line not in the example: \(line)") }

        let article = try String(contentsOf: root.appendingPathComponent(
            "Sources/XFSInMemoryBTrees/XFSInMemoryBTrees.docc/GettingStarted.md"), encoding: .utf8)
        #expect(article.contains("$ swift run --package-path Examples/ExtentIndex\n" + Self.extentIndexOutput))
    }

    /// What Examples/ExtentIndex prints.
    static let extentIndexOutput = """
        5 extents, in key order:
          blocks 10-14 (owner 3)
          blocks 40-47 (owner 3)
          blocks 100-119 (owner 7)
          blocks 125-129 (owner 9)
          blocks 300-349 (owner 7)
        extent at 125: blocks 125-129 (owner 9)
        last at or before 150: blocks 125-129 (owner 9)
        first at or after 150: blocks 300-349 (owner 7)
        extents starting in 0..<100: [10, 40]
        extents using a block in 115...127: [7, 9]
        refused: duplicate key 100
        rolled back (invalid record: an extent of no blocks): 5 extents, extent at 10 still there: true
        committed: 5 extents, first blocks 40-47 (owner 3)
        verify: clean

        """

    @Test("Examples/RmapOwners totals each owner's records and blocks as xfs_db's records do")
    func rmapOwners() throws {
        let binary = try buildExample("RmapOwners", product: "rmap-owners")
        let outcome = try run([binary, try Fixtures.imagePath("mixed-4k")], timeout: 60)
        #expect(outcome.status == 0, "\(outcome)")

        // The oracle: xfs_db's records of the same image (owner as xfs_db prints it:
        // special owners negative).
        let names: [Int64: String] = [-1: "NULL", -2: "UNKNOWN", -3: "FS", -4: "LOG", -5: "AG", -6: "INOBT", -7: "INODES",
                                      -8: "REFC", -9: "COW"]
        var expected: [String: [Int]] = [:]
        for line in try Fixtures.rmapText("mixed-4k").split(separator: "\n").dropFirst() {
            let fields = line.split(separator: "\t")
            guard fields.count >= 4, let owner = Int64(fields[3]), let blocks = Int(fields[2]) else { continue }
            let name = owner < 0 ? names[owner] ?? "\(owner)" : "\(owner)"
            let totals = expected[name] ?? [0, 0]
            expected[name] = [totals[0] + 1, totals[1] + blocks]
        }
        var printed: [String: [Int]] = [:]
        let lines = outcome.stdout.split(separator: "\n")
        #expect(lines.first == "owner\trecords\tblocks")
        var previousBlocks = Int.max
        for line in lines.dropFirst() {
            let fields = line.split(separator: "\t")
            guard fields.count == 3, let records = Int(fields[1]), let blocks = Int(fields[2]) else {
                Issue.record("unexpected line \(line)")
                continue
            }
            #expect(blocks <= previousBlocks, "not sorted by blocks: \(line)")
            previousBlocks = blocks
            printed[String(fields[0])] = [records, blocks]
        }
        #expect(printed.count == expected.count)
        let differing = expected.filter { printed[$0.key] != $0.value }.map(\.key).sorted()
        #expect(differing.isEmpty, "owners whose totals differ: \(differing.prefix(20))")

        let missing = try run([binary, "/nonexistent/image"], timeout: 60)
        #expect(missing.status == 2 && missing.stderr.hasPrefix("rmap-owners: "), "\(missing)")
    }

    @Test("swift package generate-documentation builds the catalog and every library module without a warning")
    func documentation() throws {
        let modules = ["XFSInMemoryBTrees", "XFSMemoryFile", "XFSBuffer", "XFSTransaction", "XFSBTree",
                       "XFSInMemoryBTree", "XFSFormat", "XFSRmap", "XFSUndo"]
        let outcome = try run(["swift", "package", "--scratch-path", scratchPath("docc"), "generate-documentation"]
                              + modules.flatMap { ["--target", $0] } + ["--warnings-as-errors"], timeout: 1800)
        #expect(outcome.status == 0, "\(outcome)")
        let text = outcome.stdout + outcome.stderr
        #expect(!text.contains("warning:"), "\(outcome)")
        #expect(text.contains("Generated \(modules.count) documentation archives"), "\(outcome)")
        print("generate-documentation: \(Int(outcome.seconds)) s")
    }
}
