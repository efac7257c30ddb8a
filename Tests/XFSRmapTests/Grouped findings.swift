import Foundation
import Testing
import XFSBTree
import XFSFormat
import XFSRmap
import XFSTestSupport

// Damage with one cause and many consequences must cost one finding, not one per record:
// an inode (or fork, or an AG's inode btree) the scan cannot read makes every record it owns
// unobserved, and a sibling link the scan used to follow lost every block after it. Each
// image is a scratch copy of mixed-4k damaged with `xfs_db -x`.

/// The check of the image after `commands`, gathered into a report as the tool does (an
/// unreadable inode's records in other AGs join its own AG's finding).
private func damagedReport(_ commands: [String]) throws -> RmapCheckReport {
    try withScratchCopy(of: "mixed-4k") { path in
        try xfsDBWrite(path, commands)
        let result = try checkImage(path)
        return RmapCheckReport(summaries: result.summaries, findings: result.findings)
    }
}

/// The on-disk records of the clean mixed-4k, with their AGs.
private let cleanRecords: [(agno: UInt32, record: RmapRecord)] = {
    (try? RmapText.parse(document: Fixtures.rmapText("mixed-4k"))) ?? []
}()

/// What `UncheckedRecords` should say for the clean records that `owns` picks, per AG.
private func expectedUnchecked(_ owns: (UInt32, RmapRecord) -> Bool) -> [UncheckedRecords] {
    var byAG: [UInt32: UncheckedRecords] = [:]
    for (agno, r) in cleanRecords where owns(agno, r) {
        var u = byAG[agno] ?? UncheckedRecords(agno: agno, records: 0, firstBlock: .max, lastBlock: 0)
        u.records += 1
        u.firstBlock = min(u.firstBlock, r.startBlock)
        u.lastBlock = max(u.lastBlock, r.startBlock + r.blockCount - 1)
        byAG[agno] = u
    }
    return byAG.keys.sorted().map { byAG[$0]! }
}

@Suite("Findings grouped by cause", .enabled(if: hasXFSTools, "needs xfs_db"))
struct GroupedFindingsTests {
    @Test("an unreadable bmbt block is one finding holding every on-disk record of its fork")
    func unreadableBmbtBlock() throws {
        // The inode with the most bmbt blocks.
        var bmbtBlocks: [UInt64: Int] = [:]
        for (_, r) in cleanRecords where r.isBmbtBlock { bmbtBlocks[r.owner, default: 0] += 1 }
        let ino = try #require(bmbtBlocks.max { $0.value < $1.value }?.key)
        let report = try damagedReport(["inode \(ino)", "addr u3.bmbt.ptrs[2]", "write -d magic 0x12345678"])
        #expect(report.findings.count == 1, "\(report.findings.prefix(3))")
        let finding = try #require(report.findings.first)
        let unchecked = expectedUnchecked { _, r in r.owner == ino && !r.isAttrFork }
        #expect(unchecked.reduce(0) { $0 + $1.records } > 100)
        #expect(finding.kind == .observation)
        #expect(finding.unreadable?.scope == .inode(ino, fork: .data))
        #expect(finding.unchecked == unchecked)
        #expect(finding.detail.hasPrefix("inode \(ino) data fork unreadable (bmbt block "), "\(finding)")
        #expect(finding.detail.hasSuffix("its \(unchecked[0].records) on-disk records (\(unchecked[0])) cannot be checked"), "\(finding)")
        let summary = try #require(report.summaries.first { $0.agno == finding.agno })
        #expect(summary.uncheckedRecords == unchecked[0].records && summary.counts[.extra, default: 0] == 0)
        #expect(summary.line.hasSuffix("1 observation, 0 free-space, \(unchecked[0].records) records unchecked"), "\(summary.line)")
    }

    @Test("an unreadable inode with records in two AGs is one finding listing both; checked alone, the other AG says so itself")
    func unreadableInodeInTwoAGs() throws {
        // The first inode owning records in two AGs.
        var agsOf: [UInt64: Set<UInt32>] = [:]
        for (agno, r) in cleanRecords where !RmapOwner.isSpecial(r.owner) { agsOf[r.owner, default: []].insert(agno) }
        let ino = try #require(agsOf.filter { $0.value.count == 2 }.keys.min())
        let unchecked = expectedUnchecked { _, r in r.owner == ino }
        try withScratchCopy(of: "mixed-4k") { path in
            try xfsDBWrite(path, ["inode \(ino)", "fuzz -c v3.crc random"])
            let result = try checkImage(path)
            let report = RmapCheckReport(summaries: result.summaries, findings: result.findings)
            #expect(report.findings.count == 1, "\(report.findings.prefix(3))")
            let finding = try #require(report.findings.first)
            let home = UInt32(try XFSImage(path: path).geometry.agNumber(ofInode: ino))
            #expect(finding.agno == home && finding.unreadable?.scope == .inode(ino, fork: nil))
            #expect(finding.unchecked == unchecked)
            let records = unchecked.reduce(0) { $0 + $1.records }
            #expect(finding.detail == "inode \(ino) unreadable (bad CRC): its \(records) on-disk records ("
                + unchecked.map(\.description).joined(separator: ", ") + ") cannot be checked", "\(finding)")
            // Every AG holding its records counts them; only the inode's AG has the finding.
            for u in unchecked {
                let summary = try #require(report.summaries.first { $0.agno == u.agno })
                #expect(summary.uncheckedRecords == u.records && !summary.isConsistent)
                #expect(summary.counts[.observation, default: 0] == (u.agno == home ? 1 : 0))
            }
            // The other AG alone: its own finding, naming the inode and its records there.
            let other = try #require(unchecked.first { $0.agno != home })
            let alone = RmapCheckReport(summaries: [result.summaries[Int(other.agno)]], findings: result.findings(in: other.agno))
            #expect(alone.findings.count == 1)
            #expect(alone.findings.first?.detail == "inode \(ino) unreadable (bad CRC): its \(other.records) on-disk record"
                + "\(other.records == 1 ? "" : "s") (\(other)) cannot be checked")
        }
    }

    @Test("an inobt out of key order is one finding for every record of the AG's inodes, naming the records plainly")
    func unreadableInodeBTree() throws {
        let report = try damagedReport(["agi 0", "addr root", "write recs[3].startino 128"])
        #expect(report.findings.count == 1, "\(report.findings.prefix(3))")
        let finding = try #require(report.findings.first)
        #expect(finding.agno == 0 && finding.kind == .observation && finding.unreadable?.scope == .allInodesOfAG(inodeBTrees: false))
        #expect(finding.detail.contains("inobt: record 2 ([startino 128, freecount "), "\(finding)")
        #expect(!finding.detail.contains("InodeBTreeRecord("), "\(finding)")
        let geometry = try XFSImage(path: Fixtures.imagePath("mixed-4k")).geometry
        let unchecked = expectedUnchecked { agno, r in
            (r.owner == RmapOwner.inodes && agno == 0) || (!RmapOwner.isSpecial(r.owner) && geometry.agNumber(ofInode: r.owner) == 0)
        }
        #expect(finding.unchecked == unchecked)
        #expect(finding.detail.hasPrefix("the inodes of AG 0 unreadable (inobt: "), "\(finding)")
    }

    @Test("an unreadable AGI is one header finding for its inodes and inode btree blocks")
    func unreadableAGI() throws {
        let report = try damagedReport(["agi 2", "fuzz -c crc random"])
        #expect(report.findings.count == 1, "\(report.findings.prefix(3))")
        let finding = try #require(report.findings.first)
        #expect(finding.agno == 2 && finding.kind == .header, "\(finding)")
        #expect(finding.detail.hasPrefix("the inodes of AG 2 unreadable (AGI: bad CRC): their "), "\(finding)")
    }

    @Test("an rmapbt leaf whose right sibling points back is one structure finding")
    func rmapbtSiblingPointingBack() throws {
        try withScratchCopy(of: "mixed-4k") { path in
            let shape = try RmapTreeShape(image: XFSImage(path: path), agno: 1)
            let middle = shape.leaves.count / 2
            let (leaf, left, right) = (shape.leaves[middle], shape.leaves[middle - 1], shape.leaves[middle + 1])
            try xfsDBWrite(path, shape.path(to: leaf) + ["write rightsib \(left.block)"])
            let result = try checkImage(path)
            #expect(result.findings.count == 1, "\(result.firstLines(6))")
            let finding = try #require(result.findings.first)
            #expect(finding.kind == .structure && finding.block == UInt64(leaf.block))
            #expect(finding.description == "AG 1 rmapbt block \(leaf.block): siblings: right sibling \(left.block), expected \(right.block) (level 0)")
        }
    }

    @Test("a null right sibling in the middle of a level prints as null")
    func nullSibling() throws {
        try withScratchCopy(of: "mixed-4k") { path in
            let shape = try RmapTreeShape(image: XFSImage(path: path), agno: 1)
            let middle = shape.leaves.count / 2
            let (leaf, right) = (shape.leaves[middle], shape.leaves[middle + 1])
            try xfsDBWrite(path, shape.path(to: leaf) + ["write rightsib 4294967295"])
            let result = try checkImage(path)
            #expect(result.findings.map(\.description) == ["AG 1 rmapbt block \(leaf.block): siblings: right sibling null, expected \(right.block) (level 0)"])
            #expect(!result.firstLines(10).contains("4294967295"))
        }
    }

    /// Damage to one block of AG 0's bnobt (root entry 5, a leaf).
    enum BnobtLeafDamage: String, CaseIterable, Sendable {
        case siblingLoop, badCRC
        var commands: [String] {
            let leaf = ["agf 0", "addr bnoroot", "addr ptrs[5]"]
            return switch self {
            case .siblingLoop: leaf + ["write rightsib 1"]
            case .badCRC: leaf + ["fuzz -c crc random"]
            }
        }
    }

    @Test("a bnobt leaf's sibling loop or bad CRC is one finding, and every block of the tree is still observed",
          arguments: BnobtLeafDamage.allCases)
    func bnobtLeaf(_ damage: BnobtLeafDamage) throws {
        let report = try damagedReport(damage.commands)
        #expect(report.findings.count == 1, "\(report.findings.prefix(4))")
        let finding = try #require(report.findings.first)
        #expect(finding.agno == 0 && finding.kind == .observation && finding.detail.hasPrefix("bnobt blocks: bnobt block "), "\(finding)")
        // The OWN_AG records of the bnobt's blocks were all observed.
        let clean = cleanRecords.filter { $0.agno == 0 }.count
        #expect(report.summaries[0].expectedRecords == clean && report.summaries[0].onDiskRecords == clean)
    }
}
