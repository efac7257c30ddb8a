import Foundation
import Testing
import XFSFormat
import XFSRmap
import XFSTestSupport

/// The damage kinds of the corpus tool (`/work/shared/tools/corruptxfs.py`), made again at
/// test time on a scratch copy of mixed-4k with the very xfs_db commands that tool runs. The
/// leaf and record are drawn from a seeded generator, like the tool's `--seed`, but over the
/// library's view of the tree, so every run damages the same record.
enum CorpusDamage: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case recOwner = "rec-owner"
    case recStartblock = "rec-startblock"
    case recBlockcount = "rec-blockcount"
    case recUnwritten = "rec-unwritten"
    case recLost = "rec-lost"
    case badCRC = "bad-crc"
    case badMagic = "bad-magic"
    case nodeKey = "node-key"
    case rootLevel = "root-level"

    var testDescription: String { rawValue }

    /// The AG damaged (every AG of mixed-4k has an rmapbt of height 2).
    static let agno: UInt32 = 1
    /// The seed of the leaf and record choice.
    static let seed: UInt64 = 1

    /// What xfs_repair -n exits with on this damage (observed with Debian's xfsprogs 6.1.0): 1 for
    /// every kind, i.e. each of these is also caught by repair.
    var repairStatus: Int32 { 1 }
}

/// A planned corpus damage: where it lands and the xfs_db commands that make it.
struct CorpusDamagePlan {
    /// The leaf damaged (or whose parent is), and its xfs_db path.
    var leaf: RmapLeaf
    /// The record (1-based slot in the leaf) for the record kinds.
    var slot: Int
    /// The record at that slot before the damage.
    var original: RmapRecord
    /// The tree's shape before the damage.
    var shape: RmapTreeShape
    /// The xfs_db commands (run with -x).
    var commands: [String]

    /// Chooses the leaf and record for `kind` in `image` as corruptxfs.py does (a seeded leaf,
    /// then a seeded record in it), and builds that tool's commands for them.
    init(_ kind: CorpusDamage, image: XFSImage) throws {
        let agno = CorpusDamage.agno
        shape = try RmapTreeShape(image: image, agno: agno)
        var rng = SeededRandom(seed: CorpusDamage.seed)
        leaf = shape.leaves[Int.random(in: 0..<shape.leaves.count, using: &rng)]
        slot = Int.random(in: 1...leaf.records.count, using: &rng)
        if kind == .recUnwritten {
            // Setting the flag on a record that has it already would change nothing.
            while leaf.records[slot - 1].isUnwritten { slot = Int.random(in: 1...leaf.records.count, using: &rng) }
        }
        original = leaf.records[slot - 1]
        let path = shape.path(to: leaf)
        let k = slot
        let n = leaf.records.count
        commands = switch kind {
        case .recOwner: path + ["write -d recs[\(k)].owner \(Int.random(in: 200...100_000, using: &rng))"]
        case .recStartblock: path + ["fuzz -d recs[\(k)].startblock add"]
        case .recBlockcount: path + ["fuzz -d recs[\(k)].blockcount add"]
        case .recUnwritten: path + ["fuzz -d recs[\(k)].extentflag ones"]
        case .recLost: path + ["write -d numrecs \(n - 1)"]
        case .badCRC: path + ["fuzz -c crc random"]
        case .badMagic: path + ["fuzz -d magic random"]
        case .nodeKey: shape.rootPath + ["fuzz -d keys[1].startblock add"]
        case .rootLevel: ["agf \(agno)", "write -d rmaplevel \(shape.height + 2)"]
        }
    }

    /// The record at the damaged slot after the damage, from what xfs_db printed.
    func damagedRecord(_ xfsDBOutput: String) -> RmapRecord {
        let fields = XFSDB.fields(xfsDBOutput)
        var r = original
        if let v = XFSDB.number(fields["recs[\(slot)].owner"]) { r.owner = v }
        if let v = XFSDB.number(fields["recs[\(slot)].startblock"]) { r.startBlock = UInt32(v) }
        if let v = XFSDB.number(fields["recs[\(slot)].blockcount"]) { r.blockCount = UInt32(v) }
        if let v = XFSDB.number(fields["recs[\(slot)].extentflag"]) { r.isUnwritten = v != 0 }
        return r
    }
}

@Suite("Corpus damage", .enabled(if: hasXFSTools, "needs xfs_db and xfs_repair"))
struct CorpusDamageTests {
    @Test("check flags the damaged AG, as xfs_repair -n does", arguments: CorpusDamage.allCases)
    func corpusDamage(_ kind: CorpusDamage) throws {
        let agno = CorpusDamage.agno
        try withScratchCopy(of: "mixed-4k") { path in
            let plan = try CorpusDamagePlan(kind, image: XFSImage(path: path))
            #expect(plan.shape.height == 2)
            let dbOutput = try xfsDBWrite(path, plan.commands)
            let result = try checkImage(path)
            let repair = try xfsRepairN(path)
            print("[\(kind.rawValue)] AG \(agno) leaf \(plan.leaf.block) slot \(plan.slot) "
                + "\(RmapText.describe(plan.original)); xfs_repair -n exit \(repair.status); check:\n"
                + result.firstLines(4))

            let findings = result.findings(in: agno)
            #expect(!findings.isEmpty, "\(kind): nothing found")
            #expect(result.findings.allSatisfy { $0.agno == agno }, "findings outside AG \(agno): \(result.firstLines())")
            #expect(result.summaries[Int(agno)].isConsistent == false)
            #expect(repair.status == kind.repairStatus, "xfs_repair -n: \(repair.output.suffix(600))")

            let leaf = UInt64(plan.leaf.block)
            let damaged = plan.damagedRecord(dbOutput)
            func has(_ kind: RmapFinding.Kind, block: UInt64? = nil, expected: RmapRecord? = nil, found: RmapRecord? = nil) -> Bool {
                findings.contains {
                    $0.kind == kind && (block == nil || $0.block == block)
                        && (expected == nil || $0.expected == expected) && (found == nil || $0.found == found)
                }
            }
            switch kind {
            case .recOwner, .recStartblock:
                #expect(damaged != plan.original)
                #expect(has(.missing, block: UInt64(plan.original.startBlock), expected: plan.original))
                #expect(has(.extra, block: leaf, found: damaged))
            case .recBlockcount, .recUnwritten:
                #expect(damaged != plan.original)
                #expect(has(.wrong, block: leaf, expected: plan.original, found: damaged))
            case .recLost:
                let lost = plan.leaf.records.last!
                #expect(has(.missing, block: UInt64(lost.startBlock), expected: lost))
            case .badCRC, .badMagic:
                #expect(has(.structure, block: leaf))
            case .nodeKey:
                #expect(has(.structure, block: UInt64(plan.shape.root)))
            case .rootLevel:
                #expect(findings.contains { ($0.kind == .structure || $0.kind == .header) && $0.block == UInt64(plan.shape.root) })
            }
        }
    }
}

@Suite("Corrupt inode chunks", .enabled(if: hasXFSTools, "needs xfs_db"))
struct CorruptInodeChunkTests {
    /// An inobt record whose startino lies past the AG's inodes (still a multiple of 64,
    /// with a valid CRC) lists inode numbers of no AG: the scan reports the chunk once,
    /// under the AG whose inobt holds it, and scans everything else.
    @Test("a chunk naming inodes outside its AG is one observation problem of that AG")
    func chunkOutsideItsAG() throws {
        try withScratchCopy(of: "mixed-4k") { path in
            let image = try XFSImage(path: path)
            let headers = try image.agHeaders(1)
            try #require(headers.agi.level == 1, "AG 1's inobt is one leaf")
            let records = try image.inodeBTreeRecords(.inobt, in: headers)
            try #require(!records.isEmpty)
            let last = records.count  // xfs_db numbers records from 1
            let startino: UInt32 = 0xFFFF_F000
            try xfsDBWrite(path, ["agi 1", "addr root", "write recs[\(last)].startino \(startino)"])
            let result = try checkImage(path)
            let problems = result.findings.filter { $0.kind == .observation }
            #expect(problems.contains { $0.agno == 1 && $0.detail.contains("inobt chunk at startino \(startino)") && $0.detail.contains("outside AG 1") },
                    "\(result.firstLines(6))")
            #expect(!problems.contains { $0.agno != 1 }, "\(result.firstLines(6))")
        }
    }
}
