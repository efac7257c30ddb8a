import Foundation
import XFSBTree
import XFSFormat
import XFSRmap
import XFSTestSupport

// Helpers shared by the damage tests: scratch copies of fixture images, xfs_db writes on
// them, `xfs_repair -n`, the library's check, and the leaf/entry positions of rmap records
// computed with the engine's cursor (so that xfs_db can be pointed at exactly one record).

/// Whether the external tools the damage tests drive are installed.
let hasXFSTools = Fixtures.hasTool("xfs_db") && Fixtures.hasTool("xfs_repair")

/// Runs `body` with the path of a fresh sparse, writable copy of fixture `name`, and deletes
/// the copy afterwards whatever happens.
func withScratchCopy<R>(of name: String, _ body: (String) throws -> R) throws -> R {
    let path = try Fixtures.writableCopy(name)
    defer { unlink(path) }
    return try body(path)
}

/// A finished process: its exit status and its standard output and error, interleaved as
/// far as two pipes allow (stdout first).
struct ToolRun {
    /// The exit status.
    var status: Int32
    /// Standard output followed by standard error.
    var output: String
}

/// Runs `tool` (found on PATH) with `arguments` and returns its status and output; unlike
/// `Fixtures.runTool` a nonzero status is a result, not an error.
func runCapturing(_ tool: String, _ arguments: [String]) throws -> ToolRun {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [tool] + arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain stderr concurrently so a chatty tool cannot block on a full pipe.
    nonisolated(unsafe) var errors = Data()
    let drained = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
        errors = err.fileHandleForReading.readDataToEndOfFile()
        drained.signal()
    }
    let output = out.fileHandleForReading.readDataToEndOfFile()
    drained.wait()
    process.waitUntilExit()
    return ToolRun(status: process.terminationStatus,
                   output: String(decoding: output, as: UTF8.self) + String(decoding: errors, as: UTF8.self))
}

/// `xfs_repair -n IMAGE`: exit 0 when it finds nothing, 1 when it finds damage.
func xfsRepairN(_ image: String) throws -> ToolRun {
    try runCapturing("xfs_repair", ["-n", image])
}

/// Runs `xfs_db -x` with `commands` on `image`, writing it. xfs_db exits 0 even when a
/// command fails, so its output is searched for its error messages instead.
@discardableResult
func xfsDBWrite(_ image: String, _ commands: [String]) throws -> String {
    let run = try runCapturing("xfs_db", ["-x"] + commands.flatMap { ["-c", $0] } + [image])
    let failures = ["parsing error", "out of range", "invalid", "bad option", "not found", "unknown", "no current",
                    "usage", "can't"]
    if run.status != 0 || failures.contains(where: { run.output.lowercased().contains($0) }) {
        throw Fixtures.Failure(description: "xfs_db \(commands) failed (\(run.status)): \(run.output)")
    }
    return run.output
}

/// The library's verdict on every AG of an image: one scan of all AGs, then a check of each.
struct CheckResult {
    /// Per-AG summaries, indexed by AG.
    var summaries: [RmapAGSummary]
    /// Every finding, by AG.
    var findings: [RmapFinding]

    /// The findings of AG `agno`.
    func findings(in agno: UInt32) -> [RmapFinding] { findings.filter { $0.agno == agno } }

    /// The first `count` findings as the tool prints them, for messages and the report.
    func firstLines(_ count: Int = 3) -> String {
        findings.prefix(count).map(\.description).joined(separator: "\n")
    }
}

/// Scans and checks every AG of the image at `path` with `RmapScanner` and `RmapChecker`.
func checkImage(_ path: String) throws -> CheckResult {
    let image = try XFSImage(path: path)
    let scanner = try RmapScanner(image: image)
    let ags = Array(0..<image.geometry.agCount)
    try scanner.scan(ags: ags)
    let checker = RmapChecker(scanner: scanner)
    var result = CheckResult(summaries: [], findings: [])
    for agno in ags {
        let (summary, findings) = try checker.check(agno)
        result.summaries.append(summary)
        result.findings += findings
    }
    return result
}

/// One leaf of an AG's rmapbt of height 2, as the cursor finds it.
struct RmapLeaf {
    /// The entry (0-based) in the root that points at this leaf.
    var rootIndex: Int
    /// The leaf's AG block.
    var block: UInt32
    /// Its records, in order.
    var records: [RmapRecord]
}

/// The shape of one AG's rmapbt: root block and leaves. Only trees of height 2 (a root node
/// over leaves) are described, which is what every AG of mixed-4k has; that is enough to
/// address every record and its parent key with `agf A` / `addr rmaproot` / `addr ptrs[i]`.
struct RmapTreeShape {
    /// The AG.
    var agno: UInt32
    /// The root's AG block.
    var root: UInt32
    /// The tree's height per the AGF.
    var height: Int
    /// The leaves in key order (empty unless the height is 2).
    var leaves: [RmapLeaf]
    /// Records a non-root leaf holds at most and at least.
    var leafMax: Int, leafMin: Int

    /// Reads the shape of AG `agno`'s rmapbt in `image` with the engine's cursor: each record
    /// is filed under the leaf the cursor is in (`pointer(atLevel: 0)`) and that leaf under
    /// its root entry (`index(atLevel: 1)`).
    init(image: XFSImage, agno: UInt32) throws {
        let headers = try image.agHeaders(agno)
        self.agno = agno
        root = headers.agf.rmapRoot
        height = Int(headers.agf.rmapLevel)
        leafMax = (Int(image.geometry.blockSize) - 56) / 24
        leafMin = leafMax / 2
        var leaves: [RmapLeaf] = []
        let height = self.height
        if height == 2 {
            try image.withCursor(RmapFormat.self, .rmapbt, in: headers) { cursor in
                guard try cursor.moveToFirst() else { return }
                repeat {
                    guard let record = cursor.record else { continue }
                    let block = UInt32(cursor.pointer(atLevel: 0))
                    if leaves.last?.block != block {
                        leaves.append(RmapLeaf(rootIndex: cursor.index(atLevel: 1), block: block, records: []))
                    }
                    leaves[leaves.count - 1].records.append(record)
                } while try cursor.increment()
            }
        }
        self.leaves = leaves
    }

    /// xfs_db commands that select the root node.
    var rootPath: [String] { ["agf \(agno)", "addr rmaproot"] }

    /// xfs_db commands that select a leaf (xfs_db arrays are 1-based).
    func path(to leaf: RmapLeaf) -> [String] { rootPath + ["addr ptrs[\(leaf.rootIndex + 1)]"] }

    /// Every record of the AG.
    var records: [RmapRecord] { leaves.flatMap(\.records) }

    /// xfs_db commands that turn `leaf`'s records into `replacement` (same leaf, any count up
    /// to the maximum): every record from the first that differs is rewritten field by field,
    /// then numrecs; finally the leaf's low and high keys in the root are rewritten from the
    /// new records, so that the only damage is in the record set. `write -d` keeps the CRCs
    /// valid.
    func rewrite(_ leaf: RmapLeaf, to replacement: [RmapRecord]) -> [String] {
        precondition(!replacement.isEmpty && replacement.count <= leafMax, "a leaf of \(replacement.count) records")
        let first = firstDifference(leaf.records, replacement)
        var leafCommands: [String] = []
        for i in first..<replacement.count { leafCommands += Self.recordWrites(replacement[i], at: i + 1) }
        let numrecs = "write -d numrecs \(replacement.count)"
        // A grown leaf needs its new numrecs before xfs_db will address the new slots.
        leafCommands = replacement.count > leaf.records.count ? [numrecs] + leafCommands : leafCommands + [numrecs]
        return path(to: leaf) + leafCommands + rootPath + keyWrites(for: replacement, at: leaf.rootIndex + 1)
    }

    /// `write -d` commands that store `record` in leaf slot `slot` (1-based).
    static func recordWrites(_ r: RmapRecord, at slot: Int) -> [String] {
        [("startblock", "\(r.startBlock)"), ("blockcount", "\(r.blockCount)"), ("owner", ownerText(r.owner)),
         ("offset", "\(r.offset)"), ("extentflag", r.isUnwritten ? "1" : "0"),
         ("attrfork", r.isAttrFork ? "1" : "0"), ("bmbtblock", r.isBmbtBlock ? "1" : "0")]
            .map { "write -d recs[\(slot)].\($0.0) -- \($0.1)" }
    }

    /// `write -d` commands that set node key slot `slot` (1-based) to the low and high keys
    /// of a child holding `records`: the first record's low key and the largest high key.
    func keyWrites(for records: [RmapRecord], at slot: Int) -> [String] {
        let low = RmapFormat.lowKey(of: records[0])
        let high = records.map(RmapFormat.highKey(of:)).max()!
        func fields(_ k: RmapKey, _ suffix: String) -> [(String, String)] {
            [("startblock", "\(k.startBlock)"), ("owner", Self.ownerText(k.owner)), ("offset", "\(k.offset)"),
             ("attrfork", k.packedOffset & RmapRecord.attrForkBit != 0 ? "1" : "0"),
             ("bmbtblock", k.packedOffset & RmapRecord.bmbtBlockBit != 0 ? "1" : "0")]
                .map { ($0.0 + suffix, $0.1) }
        }
        return (fields(low, "") + fields(high, "_hi")).map { "write -d keys[\(slot)].\($0.0) -- \($0.1)" }
    }

    /// An owner as xfs_db takes it: special owners as negative numbers (after `--`, so that
    /// `write` does not read them as options).
    static func ownerText(_ owner: UInt64) -> String {
        RmapOwner.isSpecial(owner) ? "\(RmapOwner.signedValue(owner))" : "\(owner)"
    }
}

/// The index of the first element where `a` and `b` differ (the shorter count when one is a
/// prefix of the other, which is also the count when they are equal).
func firstDifference<T: Equatable>(_ a: [T], _ b: [T]) -> Int {
    let n = min(a.count, b.count)
    return (0..<n).first { a[$0] != b[$0] } ?? n
}

/// The free extents of AG `agno` (its bnobt records).
func freeExtents(_ image: XFSImage, agno: UInt32) throws -> [FreeSpaceRecord] {
    try image.records(FreeSpaceByBlockFormat.self, .bnobt, in: image.agHeaders(agno))
}
