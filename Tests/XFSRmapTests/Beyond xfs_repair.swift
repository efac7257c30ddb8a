import Foundation
import Testing
import XFSBTree
import XFSFormat
import XFSRmap
import XFSTestSupport

// Damage that `xfs_repair -n` does not report (xfs-format.md §6, last paragraph), made on a
// scratch copy of mixed-4k with xfs_db `write -d` at record positions the library computes.
// Each edit keeps the tree well formed: records stay in key order, the leaf keeps at least
// minrecs, and the leaf's low and high keys in the root are rewritten from its new records,
// so the record set (or the one node key) is the only thing wrong. Our check must name the
// exact record; what xfs_repair -n exits with is recorded, not asserted.
//
// Observed with Debian's xfsprogs: xfs_repair -n exits 0 on every one of these images
// (missing OWN_AG, OWN_INOBT and OWN_REFC records, an extra record on a free block, a second
// owner of a data extent, a lowered node low key, a raised node high key).

/// A deletion or insertion of one record in one leaf, and the xfs_db commands doing it.
struct LeafEdit {
    /// The AG's tree before the edit.
    var shape: RmapTreeShape
    /// The leaf edited.
    var leaf: RmapLeaf
    /// The record deleted or inserted.
    var record: RmapRecord
    /// The xfs_db commands.
    var commands: [String] { shape.rewrite(leaf, to: replacement) }
    /// The leaf's records after the edit.
    var replacement: [RmapRecord]

    /// Deletes the record of `owner` that needs the fewest later records moved, over every
    /// AG, among records that are not first in their leaf (the parent's low key stays) and
    /// in leaves that keep minrecs. Ties go to the lower AG, then the earlier leaf.
    static func deletion(of owner: UInt64, in image: XFSImage) throws -> LeafEdit? {
        var best: (moved: Int, edit: LeafEdit)?
        for agno in 0..<image.geometry.agCount {
            let shape = try RmapTreeShape(image: image, agno: agno)
            for leaf in shape.leaves where leaf.records.count - 1 >= shape.leafMin {
                for (i, r) in leaf.records.enumerated() where i > 0 && r.owner == owner {
                    let moved = leaf.records.count - 1 - i
                    if best == nil || moved < best!.moved {
                        var rest = leaf.records
                        rest.remove(at: i)
                        best = (moved, LeafEdit(shape: shape, leaf: leaf, record: r, replacement: rest))
                    }
                }
            }
        }
        return best?.edit
    }

    /// Inserts `record` into AG `shape.agno` where key order puts it: the last leaf whose
    /// first key is not above the record's, after every record not above it. Nil when that
    /// leaf is full, when the record would become the leaf's first (its parent low key would
    /// change), or when a record with its key exists.
    static func insertion(of record: RmapRecord, in shape: RmapTreeShape) -> LeafEdit? {
        let key = RmapFormat.lowKey(of: record)
        guard let leaf = shape.leaves.last(where: { RmapFormat.lowKey(of: $0.records[0]) <= key }),
              leaf.records.count < shape.leafMax,
              !leaf.records.contains(where: { RmapFormat.lowKey(of: $0) == key })
        else { return nil }
        let position = leaf.records.firstIndex { RmapFormat.lowKey(of: $0) > key } ?? leaf.records.count
        guard position > 0 else { return nil }
        var records = leaf.records
        records.insert(record, at: position)
        return LeafEdit(shape: shape, leaf: leaf, record: record, replacement: records)
    }

    /// How many records the edit moves (rewrites) in its leaf.
    var moved: Int { replacement.count - firstDifference(leaf.records, replacement) }
}

/// Makes `commands` on a scratch copy of mixed-4k, then returns our check's findings and
/// xfs_repair -n's run, printing both for the record.
func damageBeyondRepair(_ label: String, _ plan: (XFSImage) throws -> [String]) throws -> (CheckResult, ToolRun) {
    try withScratchCopy(of: "mixed-4k") { path in
        let commands = try plan(XFSImage(path: path))
        try xfsDBWrite(path, commands)
        let result = try checkImage(path)
        let repair = try xfsRepairN(path)
        print("[\(label)] \(commands.count) xfs_db commands; xfs_repair -n exit \(repair.status); check:\n" + result.firstLines(4))
        return (result, repair)
    }
}

@Suite("Beyond xfs_repair -n", .enabled(if: hasXFSTools, "needs xfs_db and xfs_repair"))
struct BeyondRepairTests {
    /// The special owners whose records repair's phase 4 does not compare.
    static let unreportedOwners: [(String, UInt64)] = [("OWN_AG", RmapOwner.ag), ("OWN_INOBT", RmapOwner.inobt), ("OWN_REFC", RmapOwner.refc)]

    @Test("a missing special-owner record is reported as exactly that record", arguments: [0, 1, 2])
    func missingSpecialOwner(_ which: Int) throws {
        let (name, owner) = Self.unreportedOwners[which]
        var edit: LeafEdit?
        let (result, _) = try damageBeyondRepair("missing \(name)") { image in
            edit = try LeafEdit.deletion(of: owner, in: image)
            return try #require(edit, "no \(name) record to delete").commands
        }
        let e = try #require(edit)
        #expect(result.findings.count == 1, "\(result.firstLines())")
        let finding = try #require(result.findings.first)
        #expect(finding.agno == e.shape.agno)
        #expect(finding.kind == .missing)
        #expect(finding.expected == e.record)
        #expect(finding.block == UInt64(e.record.startBlock))
    }

    @Test("an extra record on a free block is reported with its leaf")
    func extraOnFreeBlock() throws {
        var edit: LeafEdit?
        let (result, _) = try damageBeyondRepair("extra on a free block") { image in
            let agno: UInt32 = 1
            let shape = try RmapTreeShape(image: image, agno: agno)
            // A real inode of this AG, mapping one more block past the end of its file.
            let mappings = shape.records.filter(\.isFileMapping)
            let owner = try #require(mappings.map(\.owner).min())
            let end = mappings.filter { $0.owner == owner }.map { $0.offset + UInt64($0.blockCount) }.max()!
            let candidates = try freeExtents(image, agno: agno).compactMap { free in
                LeafEdit.insertion(of: RmapRecord(startBlock: free.startBlock, blockCount: 1, owner: owner, offset: end), in: shape)
            }
            edit = candidates.min { $0.moved < $1.moved }
            return try #require(edit, "no free block to map").commands
        }
        let e = try #require(edit)
        #expect(result.findings.count == 1, "\(result.firstLines())")
        let finding = try #require(result.findings.first)
        #expect(finding.agno == e.shape.agno)
        #expect(finding.kind == .extra)
        #expect(finding.found == e.record)
        #expect(finding.block == UInt64(e.leaf.block))
    }

    @Test("a spurious second owner of a data extent is reported with its leaf")
    func secondOwner() throws {
        var edit: LeafEdit?
        let (result, _) = try damageBeyondRepair("second owner") { image in
            let shape = try RmapTreeShape(image: image, agno: 1)
            let data = shape.records.filter { $0.isFileMapping && !$0.isAttrFork && !$0.isUnwritten }
            let owners = Set(data.map(\.owner)).sorted()
            // The same extent, claimed also by the next inode of the AG at the same offset.
            let candidates = data.compactMap { d -> LeafEdit? in
                guard let other = owners.first(where: { $0 > d.owner }) else { return nil }
                var claim = d
                claim.owner = other
                return LeafEdit.insertion(of: claim, in: shape)
            }
            edit = candidates.min { $0.moved < $1.moved }
            return try #require(edit, "no data extent to share").commands
        }
        let e = try #require(edit)
        #expect(result.findings.count == 1, "\(result.firstLines())")
        let finding = try #require(result.findings.first)
        #expect(finding.agno == e.shape.agno)
        #expect(finding.kind == .extra)
        #expect(finding.found == e.record)
        #expect(finding.block == UInt64(e.leaf.block))
    }

    /// Which key of a root entry to damage.
    enum NodeKey: String, CaseIterable, Sendable { case low, high }

    @Test("a wrong node key is a structure fault at the root", arguments: NodeKey.allCases)
    func wrongNodeKey(_ which: NodeKey) throws {
        var shape: RmapTreeShape?
        var entry = 0
        let (result, _) = try damageBeyondRepair("wrong node \(which) key") { image in
            let s = try RmapTreeShape(image: image, agno: 1)
            shape = s
            // A middle entry whose low key can drop by one block and stay above its left
            // neighbour's.
            entry = s.leaves.indices.dropFirst(s.leaves.count / 2).first {
                s.leaves[$0].records[0].startBlock > s.leaves[$0 - 1].records[0].startBlock + 1
            }!
            let leaf = s.leaves[entry]
            let slot = leaf.rootIndex + 1
            switch which {
            case .low:
                return s.rootPath + ["write -d keys[\(slot)].startblock \(leaf.records[0].startBlock - 1)"]
            case .high:
                let high = leaf.records.map(RmapFormat.highKey(of:)).max()!
                return s.rootPath + ["write -d keys[\(slot)].startblock_hi \(high.startBlock + 1)"]
            }
        }
        let s = try #require(shape)
        let check = which == .low ? BTreeCheck.parentKey : .highKey
        #expect(!result.findings.isEmpty)
        for finding in result.findings {
            #expect(finding.agno == s.agno)
            #expect(finding.kind == .structure)
            #expect(finding.block == UInt64(s.root))
            #expect(finding.detail.hasPrefix("\(check.rawValue):"), "\(finding)")
            #expect(finding.description.hasPrefix("AG \(s.agno) rmapbt block \(s.root): \(check.rawValue):"), "\(finding)")
            #expect(finding.detail.contains("entry \(s.leaves[entry].rootIndex))"), "\(finding)")
        }
    }
}
