import Foundation
import Testing
import XFSBTree
import XFSTestSupport

/// Nanoseconds per item for `body` over `count` items.
func nsPer(_ count: Int, _ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let d = try clock.measure(body)
    let ns = Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
    return ns / Double(count)
}

/// Micro-benchmark: 1M 24-byte overlapping (rmap-like) records in a heap store with 4 KiB
/// blocks and long headers. Run with `XFSBTREE_BENCH=1 swift test -c release --filter Benchmark`.
/// Prints numbers; asserts nothing about time.
@Suite("Benchmark", .enabled(if: ProcessInfo.processInfo.environment["XFSBTREE_BENCH"] != nil))
struct Benchmark {
    @Test("1M rmap-like records: insert, lookup, scan, delete")
    func rmapLike() throws {
        let n = 1_000_000
        var g = SeededRandom(seed: 7)
        var records = (0..<n).map { i in
            Extent(start: UInt32(g.next() % 0x7FFF_FFFF), length: UInt32(1 + g.next() % 16), owner: UInt64(i), offset: g.next() % 1000)
        }
        let store = TestStore<UInt64>(blockSize: 4096, maxHeight: 8)
        let tree = try BTree<ExtentFormat, TestStore<UInt64>>.createEmpty(in: store)
        var c = tree.makeCursor()
        let insert = try nsPer(n) { for r in records { try c.insert(r) } }
        let insertFresh = try nsPer(10_000) {
            for i in 0..<10_000 {
                var r = records[i]
                r.offset += 5000
                var fresh = tree.makeCursor()
                try fresh.insert(r)
            }
        }
        records.shuffle(using: &g)
        var hits = 0
        let lookup = try nsPer(n) {
            for r in records where try c.lookup(ExtentFormat.lowKey(of: r), .equal) { hits += 1 }
        }
        var seen = 0
        var sum: UInt64 = 0
        let scan = try nsPer(n + 10_000) {
            try c.queryAll { r in
                seen += 1
                sum &+= UInt64(r.length)
                return .proceed
            }
        }
        var overlapHits = 0
        let queries = 100_000
        let overlap = try nsPer(queries) {
            for i in 0..<queries {
                let s = records[i].start
                try c.query(from: ExtentKey(start: s, owner: 0, offset: 0), through: ExtentKey(start: s &+ 8, owner: .max, offset: .max)) { _ in
                    overlapHits += 1
                    return .proceed
                }
            }
        }
        let del = try nsPer(n / 2) {
            for r in records.prefix(n / 2) {
                if try c.lookup(ExtentFormat.lowKey(of: r), .equal) { try c.delete() }
            }
        }
        c.close()
        let report = tree.verify()
        print("""
            BENCH rmap-like 24-byte records, 4 KiB blocks, 1M records, height \(store.height), \(report.blocks) blocks
            BENCH   insert (random order, one long-lived cursor): \(String(format: "%.0f", insert)) ns/op
            BENCH   insert (new cursor per op):                   \(String(format: "%.0f", insertFresh)) ns/op
            BENCH   lookup EQ (random):                           \(String(format: "%.0f", lookup)) ns/op (\(hits) hits)
            BENCH   scan (queryAll):                              \(String(format: "%.2f", scan)) ns/record (\(seen) records)
            BENCH   overlapped query (9-block window):            \(String(format: "%.0f", overlap)) ns/query (\(overlapHits) hits)
            BENCH   lookup + delete (random, half the tree):      \(String(format: "%.0f", del)) ns/op
            BENCH   verify clean: \(report.isClean), records left \(report.records), checksum \(sum)
            """)
        #expect(report.isClean)
    }

    @Test("1M plain 16-byte records: insert, lookup, scan")
    func plain() throws {
        let n = 1_000_000
        var g = SeededRandom(seed: 8)
        var keys = (0..<n).map { _ in g.next() }
        let store = TestStore<UInt64>(blockSize: 4096, maxHeight: 8)
        let tree = try BTree<KVFormat, TestStore<UInt64>>.createEmpty(in: store)
        var c = tree.makeCursor()
        let insert = try nsPer(n) { for k in keys { try c.insert(KV(key: k, value: k)) } }
        keys.shuffle(using: &g)
        var hits = 0
        let lookup = try nsPer(n) { for k in keys where try c.lookup(k, .equal) { hits += 1 } }
        var sum: UInt64 = 0
        let scan = try nsPer(n) { try c.queryAll { sum &+= $0.value; return .proceed } }
        c.close()
        print("""
            BENCH plain 16-byte records, 4 KiB blocks, 1M records, height \(store.height)
            BENCH   insert: \(String(format: "%.0f", insert)) ns/op, lookup: \(String(format: "%.0f", lookup)) ns/op (\(hits) hits), scan: \(String(format: "%.2f", scan)) ns/record
            """)
        #expect(tree.verify().isClean)
    }
}
