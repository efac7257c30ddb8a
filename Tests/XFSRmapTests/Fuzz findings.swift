import Foundation
import Testing
import XFSFormat
import XFSRmap
import XFSTestSupport

// The damage `scripts/fuzz.sh` found the check calling consistent or failing on, each
// reproduced with `xfs_db -x` on a scratch copy of mixed-4k (`write -d` keeps the CRCs
// valid, as most fuzz cases do) and checked with the library as `xfs-rmap check` runs it.
// xfs_repair -n is the oracle that the damage is real.

/// Runs `commands` with xfs_db on a scratch copy of mixed-4k and returns our check's
/// verdict (or the error that ended it) and xfs_repair -n's.
private func checkDamaged(_ commands: (String) throws -> [String]) throws -> (Result<CheckResult, any Error>, ToolRun) {
    try withScratchCopy(of: "mixed-4k") { path in
        try xfsDBWrite(path, try commands(path))
        return (Result { try checkImage(path) }, try xfsRepairN(path))
    }
}

/// The first inode of `image` whose data fork is a bmbt with its root in the inode.
private func firstBmbtInode(_ image: XFSImage) throws -> UInt64? {
    for agno in 0 ..< image.geometry.agCount {
        for record in try image.inodeBTreeRecords(.inobt, in: image.agHeaders(agno)) {
            for ino in image.geometry.allocatedInodes(record, agno: agno) {
                if case .btree = try image.inode(ino).dataFork { return ino }
            }
        }
    }
    return nil
}

@Suite("Damage the fuzzer found", .enabled(if: hasXFSTools, "needs xfs_db and xfs_repair"))
struct FuzzFindingsTests {
    /// The findings of a damaged image, which must not be consistent.
    private func findings(_ result: Result<CheckResult, any Error>) throws -> [RmapFinding] {
        let checked = try result.get()
        #expect(!checked.findings.isEmpty, "the check called the damaged image consistent")
        return checked.findings
    }

    @Test("an AG btree block owned by another AG is refused, naming the block and its owner")
    func foreignOwner() throws {
        let (result, repair) = try checkDamaged { _ in ["agf 0", "addr bnoroot", "write -d owner 3"] }
        #expect(repair.status == 1, "xfs_repair -n: \(repair.output.suffix(400))")
        let first = try #require(try findings(result).first)
        #expect(first.agno == 0, "\(first)")
        #expect(first.detail.contains("bnobt block") && first.detail.contains("owner 3, expected AG 0"), "\(first)")
    }

    @Test("an AG btree block with another filesystem's uuid is refused, naming the block")
    func foreignUUID() throws {
        let (result, repair) = try checkDamaged { _ in
            ["agi 1", "addr root", "write -d uuid 01234567-89ab-cdef-0123-456789abcdef"]
        }
        #expect(repair.status == 1, "xfs_repair -n: \(repair.output.suffix(400))")
        let first = try #require(try findings(result).first)
        #expect(first.agno == 1, "\(first)")
        #expect(first.detail.contains("inobt block") && first.detail.contains("uuid 01234567-89ab-cdef-0123-456789abcdef"),
                "\(first)")
    }

    @Test("a bmbt block owned by another inode is refused, naming the inode, the block and the owner")
    func bmbtBlockOfAnotherInode() throws {
        var ino: UInt64 = 0
        let (result, repair) = try checkDamaged { path in
            ino = try #require(try firstBmbtInode(XFSImage(path: path)), "mixed-4k has a file whose data fork is a bmbt")
            return ["inode \(ino)", "addr u3.bmbt.ptrs[1]", "write -d owner \(ino + 1)"]
        }
        #expect(repair.status == 1, "xfs_repair -n: \(repair.output.suffix(400))")
        let all = try findings(result)
        #expect(all.contains { $0.detail.contains("inode \(ino) data fork unreadable (bmbt block") && $0.detail.contains("owner \(ino + 1), expected inode \(ino)") },
                "\(all.prefix(3).map(\.description))")
    }

    @Test("a bmbt leaf with two extents swapped is refused: the same mappings, out of file offset order")
    func bmbtExtentsOutOfOrder() throws {
        var ino: UInt64 = 0
        let (result, repair) = try checkDamaged { path in
            let image = try XFSImage(path: path)
            ino = try #require(try firstBmbtInode(image), "mixed-4k has a file whose data fork is a bmbt")
            let extents = try image.mappings(of: image.inode(ino), fork: .data).extents
            // The first two extents of the file are the first two records of its first leaf.
            func writes(_ e: FileExtent, slot: Int) -> [String] {
                [("startoff", e.startOffset), ("startblock", e.startBlock), ("blockcount", UInt64(e.blockCount)),
                 ("extentflag", e.isUnwritten ? 1 : 0)].map { "write -d recs[\(slot)].\($0.0) \($0.1)" }
            }
            return ["inode \(ino)", "addr u3.bmbt.ptrs[1]"] + writes(extents[1], slot: 1) + writes(extents[0], slot: 2)
        }
        #expect(repair.status == 1, "xfs_repair -n: \(repair.output.suffix(400))")
        let all = try findings(result)
        #expect(all.contains { $0.detail.contains("inode \(ino) data fork unreadable (data fork bmbt: extent 1 at offset") && $0.detail.contains("precedes") },
                "\(all.prefix(3).map(\.description))")
    }
}
