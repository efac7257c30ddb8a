import Testing
import XFSBuffer
import XFSFormat
import XFSTestSupport
import XFSTransaction
@testable import XFSRmap

// The offline scan's way (gather, sort, merge, bulk-load) against the per-observation way
// (`map` in a committed transaction each, in any order), which the kernel's merge rules
// define: they must give the same records.

private func makeTree(sharing: Bool, name: String) throws -> RmapBTree {
    let target = try MemoryTarget(name: name, maximumSize: 4096 * MemoryTarget.blockSize)
    return try RmapBTree(target: target, allowsSharing: sharing)
}

private func rec(_ start: UInt32, _ length: UInt32, _ owner: UInt64, _ offset: UInt64 = 0,
                 attr: Bool = false, bmbt: Bool = false, unwritten: Bool = false) -> RmapRecord {
    RmapRecord(startBlock: start, blockCount: length, owner: owner, offset: offset,
               isAttrFork: attr, isBmbtBlock: bmbt, isUnwritten: unwritten)
}

/// Sorts, merges and bulk-loads `observations` into a new tree, as the offline scan does;
/// returns the tree and the collisions reported.
private func bulkTree(_ observations: [RmapRecord], sharing: Bool) throws -> (RmapBTree, [RmapMapError]) {
    var packed = observations.map(PackedObservation.init)
    var collisions: [RmapMapError] = []
    let count = ObservationMerge.sortAndMerge(&packed, allowsSharing: sharing) { collisions.append($0) }
    let tree = try makeTree(sharing: sharing, name: "bulk")
    let transaction = Transaction()
    try tree.tree.bulkLoad(packed.prefix(count).map(\.record), count: count, in: transaction)
    try tree.tree.commit(transaction)
    return (tree, collisions)
}

/// A filesystem's worth of observations without damage: files laid out in pieces of 1...4
/// blocks, mostly contiguous both ways (so they merge), sometimes with a physical or a
/// logical gap; unwritten runs, attr-fork extents and bmbt blocks among them; OWN_AG and
/// OWN_INOBT blocks in runs; and, with sharing, clones: other files mapping some of those
/// blocks again at offsets of their own, and one file mapping a block at two offsets.
private func workload(seed: UInt64, sharing: Bool) -> [RmapRecord] {
    var random = SeededRandom(seed: seed)
    var observations: [RmapRecord] = []
    var next: UInt32 = 64
    var written: [(start: UInt32, length: UInt32)] = []
    for owner in UInt64(1000)..<1012 {
        var offset: UInt64 = 0
        var attrOffset: UInt64 = 0
        for _ in 0..<Int.random(in: 5...40, using: &random) {
            let length = UInt32.random(in: 1...4, using: &random)
            switch Int.random(in: 0..<20, using: &random) {
            case 0: next += UInt32.random(in: 1...3, using: &random)          // a physical gap
            case 1: offset += UInt64.random(in: 1...3, using: &random)        // a logical gap
            case 2:
                observations.append(rec(next, 1, owner, bmbt: true))
                next += 1
            case 3:
                observations.append(rec(next, length, owner, attrOffset, attr: true))
                attrOffset += UInt64(length)
                next += length
                continue
            default: break
            }
            let unwritten = Int.random(in: 0..<6, using: &random) == 0
            observations.append(rec(next, length, owner, offset, unwritten: unwritten))
            if !unwritten { written.append((next, length)) }
            offset += UInt64(length)
            next += length
        }
        next += UInt32.random(in: 0...2, using: &random)
    }
    for special in [RmapOwner.ag, RmapOwner.inobt] {
        for _ in 0..<Int.random(in: 3...12, using: &random) {
            observations.append(rec(next, 1, special))
            next += UInt32.random(in: 1...2, using: &random)
        }
    }
    if sharing && !written.isEmpty {
        for clone in UInt64(2000)..<2006 {
            var offset = UInt64.random(in: 0...50, using: &random)
            for _ in 0..<Int.random(in: 3...30, using: &random) {
                let source = written[Int.random(in: 0..<written.count, using: &random)]
                observations.append(rec(source.start, source.length, clone, offset))
                offset += UInt64(source.length) + UInt64.random(in: 0...1, using: &random)
            }
        }
        // A file mapping one of its blocks at a second offset (reflink within a file).
        let source = written[0]
        observations.append(rec(source.start, 1, 1000, 900_000))
    }
    return observations
}

@Suite("Sorted observations: gather, sort, merge, bulk-load")
struct SortedObservationTests {
    @Test("seeded workloads: the bulk-loaded tree equals the tree mapped one observation at a time, in random order",
          arguments: [false, true], 0..<12)
    func equalsPerObservation(sharing: Bool, seed: UInt64) throws {
        let observations = workload(seed: seed * 7919 + (sharing ? 1 : 0), sharing: sharing)
        var random = SeededRandom(seed: seed + 100)
        let model = try makeTree(sharing: sharing, name: "model")
        for observation in observations.shuffled(using: &random) { try model.map(observation) }
        let (bulk, collisions) = try bulkTree(observations.shuffled(using: &random), sharing: sharing)
        #expect(collisions.isEmpty, "\(collisions.prefix(2))")
        let want = try model.records()
        let got = try bulk.records()
        #expect(got.count == want.count)
        #expect(got == want, "first difference at \(got.indices.first { $0 >= want.count || got[$0] != want[$0] } ?? got.count)")
        #expect(got.count < observations.count, "the workload must make merges")
        #expect(bulk.tree.verify().isClean)
    }

    @Test("a key seen twice and a mapping of no blocks are collisions, reported once each; the first in key order stays")
    func collisions() throws {
        let observations = [rec(10, 4, 200, 0), rec(20, 1, RmapOwner.ag), rec(10, 4, 200, 0), rec(30, 0, 201, 0),
                            rec(10, 4, 200, 0, unwritten: true), rec(14, 2, 200, 4), rec(40, 3, 202, 0), rec(40, 1, 202, 0)]
        let (tree, collisions) = try bulkTree(observations, sharing: false)
        #expect(try tree.records() == [rec(10, 6, 200, 0), rec(20, 1, RmapOwner.ag), rec(40, 1, 202, 0)])
        #expect(collisions.count == 4)
        #expect(collisions.contains(.empty(rec(30, 0, 201, 0))))
        #expect(collisions.contains(.duplicate(existing: rec(10, 4, 200, 0), new: rec(10, 4, 200, 0))))
        #expect(collisions.contains(.duplicate(existing: rec(10, 4, 200, 0), new: rec(10, 4, 200, 0, unwritten: true))))
        #expect(collisions.contains(.duplicate(existing: rec(40, 1, 202, 0), new: rec(40, 3, 202, 0))))
    }

    @Test("merges stop at 2^32 - 1 blocks, on both paths", arguments: [false, true])
    func lengthLimit(sharing: Bool) throws {
        let (special, _) = try bulkTree([rec(0, UInt32.max - 1, RmapOwner.inodes), rec(UInt32.max - 1, 1, RmapOwner.inodes)],
                                        sharing: sharing)
        #expect(try special.records() == [rec(0, UInt32.max, RmapOwner.inodes)])
        let (data, _) = try bulkTree([rec(0, UInt32.max / 2 + 1, 300, 0), rec(UInt32.max / 2 + 1, UInt32.max / 2, 300, UInt64(UInt32.max / 2 + 1)),
                                      rec(UInt32.max - 1, 1, 300, UInt64(UInt32.max - 1))], sharing: sharing)
        #expect(try data.records().count == 2)
    }

    @Test("every fixture: both ways of stashing give the same trees and the same problems", arguments: fixtureNames)
    func scannerModes(_ name: String) throws {
        let image = try XFSImage(path: Fixtures.imagePath(name))
        let ags = Array(0..<image.geometry.agCount)
        let bulk = try RmapScanner(image: image, stashing: .sortedBulkLoad)
        try bulk.scan(ags: ags)
        let mapped = try RmapScanner(image: image, stashing: .perObservation)
        try mapped.scan(ags: ags)
        #expect(bulk.problems == mapped.problems)
        for agno in ags {
            #expect(try bulk.tree(agno).records() == mapped.tree(agno).records(), "\(name) AG \(agno)")
            #expect(bulk.tree(agno).tree.verify().isClean, "\(name) AG \(agno)")
        }
        #expect(bulk.progress.observations == mapped.progress.observations)
    }
}

@Suite("Observation store: in-place sort, growth, draining")
struct ObservationStoreTests {
    /// Random observations with many equal keys and equal elements, as damage makes them.
    private func observations(_ count: Int, seed: UInt64, spread: UInt32) -> [PackedObservation] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in
            PackedObservation(rec(UInt32.random(in: 0..<spread, using: &random), UInt32.random(in: 1...3, using: &random),
                                  UInt64.random(in: 100..<104, using: &random), UInt64.random(in: 0..<4, using: &random),
                                  unwritten: Bool.random(using: &random)))
        }
    }

    @Test("The in-place sort orders like the standard library's, on random, equal, sorted and reversed input")
    func introsort() {
        var inputs: [[PackedObservation]] = [[], observations(1, seed: 1, spread: 9)]
        for (count, spread) in [(17, UInt32(3)), (1000, 50), (20_000, 1), (20_000, 100_000)] {
            inputs.append(observations(count, seed: UInt64(count) &+ UInt64(spread), spread: spread))
        }
        let ascending = observations(5000, seed: 9, spread: 10_000).sorted(by: PackedObservation.precedes)
        inputs += [ascending, ascending.reversed(), ascending + ascending, Array(repeating: ascending[7], count: 3000)]
        for input in inputs {
            var sorted = input
            sorted.withUnsafeMutableBufferPointer { ObservationStore.introsort($0) }
            #expect(sorted == input.sorted(by: PackedObservation.precedes), "\(input.count) observations")
        }
    }

    @Test("Chunks appended across growths drain back sorted and merged, as the array path gives them")
    func appendAndDrain() throws {
        for sharing in [false, true] {
            let all = workload(seed: 41, sharing: sharing).map(PackedObservation.init)
            // Enough copies to grow past the first 1 MiB mapping several times: each copy
            // shifted to blocks of its own, so merges stay within a copy.
            var many: [PackedObservation] = []
            for copy in UInt32(0)..<400 {
                many += all.map { var o = $0; o.startBlock += copy * 100_000; return o }
            }
            let store = ObservationStore()
            var random = SeededRandom(seed: 5)
            var at = 0
            while at < many.count {
                let size = min(many.count - at, Int.random(in: 1...5000, using: &random))
                try many[at..<(at + size)].withUnsafeBufferPointer { try store.append($0) }
                at += size
            }
            #expect(store.count == many.count)
            var storeCollisions: [RmapMapError] = []
            store.sortAndMerge(allowsSharing: sharing) { storeCollisions.append($0) }

            var expected = many
            var arrayCollisions: [RmapMapError] = []
            let kept = ObservationMerge.sortAndMerge(&expected, allowsSharing: sharing) { arrayCollisions.append($0) }
            var drained: [RmapRecord] = []
            store.drain { records in
                #expect(records.count == kept)
                drained = Array(records)
            }
            #expect(drained == expected.prefix(kept).map(\.record), "sharing \(sharing)")
            #expect(storeCollisions == arrayCollisions)
            #expect(store.count == 0, "a drained store is empty")
        }
    }
}
