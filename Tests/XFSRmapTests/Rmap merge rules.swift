import Testing
import XFSBuffer
import XFSFormat
import XFSTestSupport
@testable import XFSRmap

private func makeTree(sharing: Bool) throws -> RmapBTree {
    let target = try MemoryTarget(name: "rmap-merge-test", maximumSize: 256 * MemoryTarget.blockSize)
    return try RmapBTree(target: target, allowsSharing: sharing)
}

private func rec(_ start: UInt32, _ length: UInt32, _ owner: UInt64, _ offset: UInt64 = 0,
                 attr: Bool = false, bmbt: Bool = false, unwritten: Bool = false) -> RmapRecord {
    RmapRecord(startBlock: start, blockCount: length, owner: owner, offset: offset,
               isAttrFork: attr, isBmbtBlock: bmbt, isUnwritten: unwritten)
}

@Suite("Rmap map: the kernel's merge rules")
struct RmapMergeRuleTests {
    @Test("a mapping merges into its left neighbour, its right neighbour, or both",
          arguments: [false, true])
    func mergesBothWays(sharing: Bool) throws {
        let tree = try makeTree(sharing: sharing)
        try tree.map(rec(10, 5, 200, 0))
        try tree.map(rec(20, 5, 200, 10))
        try tree.map(rec(15, 5, 200, 5))          // fills the gap: one record
        #expect(try tree.records() == [rec(10, 15, 200, 0)])
        try tree.map(rec(30, 2, 200, 22))          // logically contiguous, physically not
        try tree.map(rec(25, 3, 200, 40))          // physically contiguous, logically not
        #expect(try tree.records() == [rec(10, 15, 200, 0), rec(25, 3, 200, 40), rec(30, 2, 200, 22)])
        try tree.map(rec(5, 5, 200, 100))          // right neighbour at offset 0: not contiguous
        #expect(try tree.records().count == 4)
    }

    @Test("records of other owners, flags or forks never merge")
    func flagsAndOwnersSeparate() throws {
        let tree = try makeTree(sharing: false)
        try tree.map(rec(10, 1, 200, 0))
        try tree.map(rec(11, 1, 200, 1, unwritten: true))
        try tree.map(rec(12, 1, 201, 2))
        try tree.map(rec(13, 1, 201, 0, attr: true))
        try tree.map(rec(14, 1, 201, 0, bmbt: true))
        #expect(try tree.records().count == 5)
    }

    @Test("special owners and bmbt blocks merge on physical contiguity alone")
    func offsetsIgnored() throws {
        let tree = try makeTree(sharing: true)
        try tree.map(rec(1, 1, RmapOwner.ag))
        try tree.map(rec(2, 1, RmapOwner.ag))
        try tree.map(rec(100, 1, 300, bmbt: true))
        try tree.map(rec(101, 1, 300, bmbt: true))
        try tree.map(rec(0, 1, RmapOwner.fs))       // another special owner: stays apart
        #expect(try tree.records() == [rec(0, 1, RmapOwner.fs), rec(1, 2, RmapOwner.ag), rec(100, 2, 300, bmbt: true)])
    }

    @Test("a merge never makes a record longer than 2^32 - 1 blocks")
    func lengthLimit() throws {
        let tree = try makeTree(sharing: false)
        try tree.map(rec(0, UInt32.max - 1, RmapOwner.inodes))
        try tree.map(rec(UInt32.max - 1, 1, RmapOwner.inodes))
        #expect(try tree.records() == [rec(0, UInt32.max, RmapOwner.inodes)])
        let other = try makeTree(sharing: false)
        try other.map(rec(0, UInt32.max - 1, RmapOwner.inodes))
        try other.map(rec(UInt32.max - 1, 1, RmapOwner.inodes))
        #expect(try other.records().count == 1)
    }

    @Test("shared extents: each owner keeps its own records, and merges reach across other owners' overlaps")
    func sharedPath() throws {
        let tree = try makeTree(sharing: true)
        // File 332 and its clone 333 share [48, 2048).
        try tree.map(rec(48, 1024, 332, 0))
        try tree.map(rec(48, 2048, 333, 0))
        try tree.map(rec(1072, 1024, 332, 1024))   // left neighbour sits behind 333's overlapping record
        #expect(try tree.records() == [rec(48, 2048, 332, 0), rec(48, 2048, 333, 0)])
        // A partial CoW overwrite of 334's clone 335: separate records, ordered by offset.
        try tree.map(rec(2096, 256, 334, 0))
        try tree.map(rec(2096, 16, 335, 0))
        try tree.map(rec(2128, 224, 335, 32))
        try tree.map(rec(2112, 16, 335, 16))       // joins both of 335's records
        #expect(try tree.records().filter { $0.owner == 335 } == [rec(2096, 256, 335, 0)])
        // One inode mapping the same block at two offsets: two records.
        try tree.map(rec(5000, 1, 400, 7))
        try tree.map(rec(5000, 1, 400, 9))
        #expect(try tree.records().filter { $0.owner == 400 }.count == 2)
        #expect(tree.tree.verify().isClean)
    }

    @Test("the same key twice is refused and leaves the tree as it was")
    func collisions() throws {
        let tree = try makeTree(sharing: true)
        try tree.map(rec(10, 4, 200, 0))
        #expect(throws: RmapMapError.self) { try tree.map(rec(10, 2, 200, 0)) }
        #expect(throws: RmapMapError.self) { try tree.map(rec(10, 0, 201, 0)) }
        #expect(try tree.records() == [rec(10, 4, 200, 0)])
    }

    @Test("seeded runs of adjacent mappings, in random order, end as the maximal merge", arguments: [false, true])
    func orderIndependence(sharing: Bool) throws {
        var random = SeededRandom(seed: 99)
        // Three files of runs of 1..4 blocks, laid out contiguously both ways, with gaps
        // between files; plus OWN_AG blocks.
        var pieces: [RmapRecord] = []
        var expected: [RmapRecord] = []
        var start: UInt32 = 100
        for owner in UInt64(500)..<503 {
            var offset: UInt64 = 0
            let first = start
            for _ in 0..<40 {
                let length = UInt32.random(in: 1...4, using: &random)
                pieces.append(rec(start, length, owner, offset))
                start += length
                offset += UInt64(length)
            }
            expected.append(rec(first, start - first, owner, 0))
            start += 3
        }
        for block in start..<(start + 30) { pieces.append(rec(block, 1, RmapOwner.ag)) }
        expected.append(rec(start, 30, RmapOwner.ag))
        let tree = try makeTree(sharing: sharing)
        for piece in pieces.shuffled(using: &random) { try tree.map(piece) }
        #expect(try tree.records() == expected)
    }
}
