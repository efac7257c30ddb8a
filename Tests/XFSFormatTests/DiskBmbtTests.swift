import Testing
import XFSFormat
import XFSTestSupport

@Suite("bmbt forks read through the engine")
struct DiskBmbtTests {
    /// Every btree-format fork of the image: its extents are as many as the inode says, and
    /// its bmbt blocks are exactly the blocks the corpus rmap records mark as that inode's
    /// bmbt blocks. Covers roots with several children, whose leaves are sibling-linked
    /// across children (walking one child alone used to report a sibling loop).
    @Test("extents and bmbt blocks of every btree fork agree with the inode and the rmap corpus", arguments: ["mixed-4k", "mixed-1k"])
    func btreeForks(name: String) throws {
        let image = try XFSImage(path: try Fixtures.imagePath(name))
        let g = image.geometry
        var bmbtBlocksInCorpus: [UInt64: Set<UInt64>] = [:] // owner → fsblocks
        for (agno, r) in try RmapText.parse(document: try Fixtures.rmapText(name)) where r.isBmbtBlock {
            for b in 0 ..< UInt64(r.blockCount) {
                bmbtBlocksInCorpus[r.owner, default: []].insert(g.fsBlock(agno: agno, agbno: r.startBlock) + b)
            }
        }
        var forks = 0
        var multiChildRoots = 0
        var seen: [UInt64: Set<UInt64>] = [:]
        for agno in 0 ..< g.agCount {
            for record in try image.inodeBTreeRecords(.inobt, in: try image.agHeaders(agno)) {
                for ino in g.allocatedInodes(record, agno: agno) {
                    let inode = try image.inode(ino)
                    for which in [InodeFork.Which.data, .attr] {
                        guard case .btree(let root)? = (which == .data ? inode.dataFork : inode.attrFork) else { continue }
                        forks += 1
                        if root.pointers.count > 1 { multiChildRoots += 1 }
                        let mappings = try image.mappings(of: inode, fork: which)
                        let count = which == .data ? inode.core.dataExtentCount : UInt64(inode.core.attrExtentCount)
                        #expect(UInt64(mappings.extents.count) == count, "inode \(ino) \(which)")
                        #expect(zip(mappings.extents, mappings.extents.dropFirst()).allSatisfy { $0.startOffset < $1.startOffset })
                        seen[ino, default: []].formUnion(mappings.bmbtBlocks)
                    }
                }
            }
        }
        #expect(forks > 0 && multiChildRoots > 0, "\(forks) btree forks, \(multiChildRoots) with several children")
        #expect(seen == bmbtBlocksInCorpus)
    }

    @Test("the first mapping of every fork is the first of its mappings", arguments: ["mixed-4k", "mixed-1k"])
    func firstMapping(name: String) throws {
        let image = try XFSImage(path: try Fixtures.imagePath(name))
        let g = image.geometry
        var btreeForks = 0
        for agno in 0 ..< g.agCount {
            for record in try image.inodeBTreeRecords(.inobt, in: try image.agHeaders(agno)) {
                for ino in g.allocatedInodes(record, agno: agno) {
                    let inode = try image.inode(ino)
                    for which in [InodeFork.Which.data, .attr] {
                        if case .btree? = (which == .data ? inode.dataFork : inode.attrFork) { btreeForks += 1 }
                        #expect(try image.firstMapping(of: inode, fork: which) == image.mappings(of: inode, fork: which).extents.first,
                                "inode \(ino) \(which)")
                    }
                }
            }
        }
        #expect(btreeForks > 0)
    }
}
