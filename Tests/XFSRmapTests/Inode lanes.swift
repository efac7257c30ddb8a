import Testing
import XFSTestSupport
@testable import XFSRmap

/// The scan's inode scheduler: every inode handed out once, workers spread over home AGs.
@Suite("Inode lanes")
struct InodeLanesTests {
    static func inodes(_ homes: [(home: UInt32, weight: Int)]) -> [InodeToScan] {
        homes.enumerated().map { InodeToScan(ino: UInt64(128 + $0.offset), homeAG: $0.element.home, weight: UInt32($0.element.weight)) }
    }

    @Test("a planned inode takes 16 bytes (the scan holds one per allocated inode)")
    func compact() {
        #expect(MemoryLayout<InodeToScan>.stride == 16)
    }

    @Test("two workers get different home AGs while both have work, then share the last")
    func spreadsWorkers() {
        let lanes = InodeLanes([Self.inodes([(0, 50_000), (0, 50_000), (1, 50_000), (2, 10)])], agCount: 4, workers: 2)
        let first = lanes.next(finishing: nil)
        let second = lanes.next(finishing: nil)
        #expect(first?.inodes.map(\.ino) == [128])
        #expect(second?.inodes.map(\.ino) == [130])
        // The first worker is done: AG 0 still has the most work and nobody in it.
        let third = lanes.next(finishing: first)
        #expect(third?.inodes.map(\.ino) == [129])
        // Every lane with work left (AG 2) is free; then nothing is left.
        #expect(lanes.next(finishing: second)?.inodes.map(\.ino) == [131])
        #expect(lanes.next(finishing: third) == nil)
    }

    @Test("batches stop at 16 inodes or 1,024 observations; every inode comes out once, in order per lane")
    func handsOutEveryInodeOnce() {
        var random = SeededRandom(seed: 7)
        let specs = (0..<5_000).map { _ in (home: UInt32(random.next() % 5), weight: Int(random.next() % 300) + 1) }
        let inodes = Self.inodes(specs)
        let lanes = InodeLanes([Array(inodes[..<1_000]), Array(inodes[1_000...])], agCount: 5, workers: 2)
        var seen: [UInt64] = []
        var claim: InodeLanes.Claim? = nil
        while let next = lanes.next(finishing: claim) {
            #expect(next.inodes.count <= InodeLanes.batchInodes)
            #expect(Set(next.inodes.map(\.homeAG)).count == 1)
            let weight = next.inodes.reduce(0) { $0 + Int($1.weight) }
            #expect(weight - Int(next.inodes.last!.weight) < InodeLanes.batchWeight)
            seen += next.inodes.map(\.ino)
            claim = next
        }
        #expect(seen.sorted() == inodes.map(\.ino))
        for home in 0..<UInt32(5) {
            let order = seen.filter { specs[Int($0 - 128)].home == home }
            #expect(order == order.sorted())
        }
    }

    @Test("unplanned inodes: batches of 64 shrink to 4 as the inodes run out; read-ahead asks for each inode once, ahead of its batch")
    func guidedBatches() {
        let inodes = Self.inodes((0..<10_000).map { (home: UInt32($0 % 2), weight: 1) })
        let lanes = InodeLanes([inodes], agCount: 2, workers: 2)
        var sizes: [Int] = []
        var requested: [UInt64] = []
        var claim: InodeLanes.Claim? = nil
        while let next = lanes.next(finishing: claim) {
            sizes.append(next.inodes.count)
            // Every inode of the batch was asked for by now, in this claim or an earlier one.
            requested += next.readAhead.map(\.ino)
            #expect(Set(next.inodes.map(\.ino)).isSubset(of: Set(requested)))
            claim = next
        }
        #expect(sizes.first == 64)
        #expect(sizes.suffix(10).allSatisfy { $0 <= 4 }, "\(sizes.suffix(10))")
        #expect(requested.sorted() == inodes.map(\.ino), "each inode asked for once")
    }
}
