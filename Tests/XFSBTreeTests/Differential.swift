import Testing
import XFSBTree
import XFSTestSupport

/// A failed differential check (the message names the seed and op number).
struct DifferentialFailure: Error, CustomStringConvertible {
    var description: String
}

/// Runs seeded random operations on a btree and on a sorted-array model side by side and
/// checks every result; verifies the whole tree every `verifyEvery` operations.
struct Differential<Format: BTreeRecordFormat, Pointer: BTreePointer> {
    typealias Store = TestStore<Pointer>
    let tree: BTree<Format, Store>
    var model: [Format.Record] = []
    var rng: SeededRandom
    let seed: UInt64
    /// A random record.
    let makeRecord: (inout SeededRandom) -> Format.Record
    /// A random search key.
    let makeKey: (inout SeededRandom) -> Format.Key
    /// The record changed in its payload (same low key).
    let mutate: (Format.Record, inout SeededRandom) -> Format.Record
    /// A random query range (low <= high).
    let makeRange: (inout SeededRandom) -> (Format.Key, Format.Key)
    /// A random has-records range and the brute-force answer over the given records.
    let makeCoverageRange: (inout SeededRandom) -> (Format.Key, Format.Key)
    let bruteCoverage: ([Format.Record], Format.Key, Format.Key) -> BTreeRecordPacking
    /// A model index range that surely holds every record overlapping [low, high].
    let candidates: ([Format.Record], Format.Key, Format.Key) -> Range<Int>
    /// Model size to aim for; the driver swings between empty and this.
    let maxSize: Int
    var ops = 0

    func check(_ ok: Bool, _ what: @autoclosure () -> String) throws {
        if !ok {
            throw DifferentialFailure(description: "seed \(seed) op \(ops): \(what())")
        }
    }

    /// First model index whose low key is >= key (strict: > key).
    func bound(_ key: Format.Key, strict: Bool) -> Int {
        var lo = 0, hi = model.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let k = Format.lowKey(of: model[mid])
            if k < key || (strict && k == key) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func overlaps(_ r: Format.Record, _ low: Format.Key, _ high: Format.Key) -> Bool {
        !(Format.highKey(of: r) < low) && !(high < Format.lowKey(of: r))
    }

    mutating func verify() throws {
        let report = tree.verify()
        try check(report.isClean, "verifier: \(report.faults.prefix(5))")
        try check(report.records == model.count, "verifier saw \(report.records) records, model has \(model.count)")
        var all: [Format.Record] = []
        all.reserveCapacity(model.count)
        try tree.queryAll { all.append($0); return .proceed }
        try check(all == model, "queryAll differs from the model")
        if !model.isEmpty {
            // Bulk walks (walkRecordRuns) from a random record: the model's suffix, in runs.
            let from = Int(rng.next() % UInt64(model.count))
            var c = tree.makeCursor()
            defer { c.close() }
            _ = try c.lookup(Format.lowKey(of: model[from]), .greaterOrEqual)
            var runs: [Format.Record] = []
            try c.walkRecordRuns { bytes, n in
                for i in 0..<n { runs.append(Format.loadRecord(from: bytes + i * Format.recordSize)) }
                return .proceed
            }
            try check(runs == Array(model[from...]), "walkRecordRuns from record \(from) differs from the model")
        }
        try check(try tree.countBlocks() == report.blocks, "countBlocks differs from the verifier's count")
        try check(tree.store.liveBlocks == report.blocks, "\(tree.store.liveBlocks) live blocks, \(report.blocks) in the tree")
    }

    /// Runs `count` operations; returns how many ran.
    mutating func run(_ count: Int, verifyEvery: Int) throws {
        var c = tree.makeCursor()
        var target = maxSize / 2
        for _ in 0..<count {
            ops += 1
            if ops % 2000 == 0 { target = Int(rng.next() % UInt64(maxSize + 1)) }
            let growing = model.count < target
            let dice = Int(rng.next() % 100)
            switch dice {
            case 0..<30 where growing, 0..<15:
                let r = makeRecord(&rng)
                let k = Format.lowKey(of: r)
                let i = bound(k, strict: false)
                if i < model.count && Format.lowKey(of: model[i]) == k {
                    try check(try c.lookup(k, .equal), "EQ lookup of present key \(k)")
                    try check(c.record == model[i], "EQ record \(String(describing: c.record)) != \(model[i])")
                } else {
                    try c.insert(r)
                    model.insert(r, at: i)
                    try check(c.record == r, "after insert cursor at \(String(describing: c.record)), want \(r)")
                }
            case 30..<50 where !growing, 15..<30:
                guard !model.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(model.count))
                let k = Format.lowKey(of: model[i])
                try check(try c.lookup(k, .equal), "EQ lookup before delete of \(k)")
                try check(c.record == model[i], "record before delete")
                try c.delete()
                model.remove(at: i)
                let want: Format.Record? = i < model.count ? model[i] : nil
                try check(c.record == want, "after delete cursor at \(String(describing: c.record)), want \(String(describing: want))")
            case 30..<40, 50..<58:
                guard !model.isEmpty else { continue }
                let i = Int(rng.next() % UInt64(model.count))
                try check(try c.lookup(Format.lowKey(of: model[i]), .equal), "EQ lookup before update")
                let n = mutate(model[i], &rng)
                try c.update(n)
                model[i] = n
                try check(c.record == n, "after update")
            case 40..<50, 58..<74:
                let k = makeKey(&rng)
                switch rng.next() % 3 {
                case 0:
                    let i = bound(k, strict: true) - 1
                    let found = try c.lookup(k, .lessOrEqual)
                    try check(found == (i >= 0), "LE \(k) found \(found)")
                    try check(c.record == (i >= 0 ? model[i] : nil), "LE \(k) record")
                case 1:
                    let i = bound(k, strict: false)
                    let found = try c.lookup(k, .greaterOrEqual)
                    try check(found == (i < model.count), "GE \(k) found \(found)")
                    try check(c.record == (i < model.count ? model[i] : nil), "GE \(k) record")
                default:
                    let i = bound(k, strict: false)
                    let hit = i < model.count && Format.lowKey(of: model[i]) == k
                    try check(try c.lookup(k, .equal) == hit, "EQ \(k)")
                    if hit { try check(c.record == model[i], "EQ \(k) record") }
                }
            case 74..<84:
                let k = makeKey(&rng)
                var i = bound(k, strict: false)
                let found = try c.lookup(k, .greaterOrEqual)
                try check(found == (i < model.count), "walk GE")
                if !found { continue }
                var w = try c.duplicate()
                let steps = Int(rng.next() % 24)
                for _ in 0..<steps {
                    let more = try w.increment()
                    i += 1
                    try check(more == (i < model.count), "increment at \(i)")
                    if !more { break }
                    try check(w.record == model[i], "increment record at \(i)")
                }
                for _ in 0..<steps {
                    let more = try w.decrement()
                    i -= 1
                    try check(more == (i >= 0), "decrement at \(i)")
                    if !more { break }
                    try check(w.record == model[min(i, model.count - 1)], "decrement record at \(i)")
                }
            case 84..<93:
                let (lo, hi) = makeRange(&rng)
                var got: [Format.Record] = []
                let limit = Int(rng.next() % 8) == 0 ? 3 : Int.max
                try c.query(from: lo, through: hi) { r in
                    got.append(r)
                    return got.count >= limit ? .stop : .proceed
                }
                let window = candidates(model, lo, hi)
                let want = Array(model[window].filter { overlaps($0, lo, hi) }.prefix(limit))
                try check(got == want, "query \(lo)...\(hi): got \(got.count) records, want \(want.count)")
            default:
                let (lo, hi) = makeCoverageRange(&rng)
                let got = try c.hasRecords(from: lo, through: hi)
                let window = candidates(model, lo, hi)
                let want = bruteCoverage(model[window].filter { overlaps($0, lo, hi) }, lo, hi)
                try check(got == want, "hasRecords \(lo)...\(hi): \(got), want \(want)")
            }
            if ops % verifyEvery == 0 { try verify() }
        }
        c.close()
        try check(tree.store.holds == 0, "\(tree.store.holds) holds left after close")
        try verify()
    }
}

// MARK: Configurations

extension Differential where Format == KVFormat {
    /// Unique keys in [0, keySpace).
    init(seed: UInt64, store: Store, keySpace: UInt64, maxSize: Int) throws {
        self.init(
            tree: try BTree.createEmpty(in: store), rng: SeededRandom(seed: seed), seed: seed,
            makeRecord: { KV(key: $0.next() % keySpace, value: $0.next() & 0xFFFF) },
            makeKey: { $0.next() % (keySpace + 2) },
            mutate: { r, g in KV(key: r.key, value: g.next() & 0xFFFF) },
            makeRange: { g in
                let a = g.next() % keySpace
                return (a, a + g.next() % 200)
            },
            makeCoverageRange: { g in
                let a = g.next() % keySpace
                return (a, a + g.next() % 8)
            },
            bruteCoverage: { records, lo, hi in
                if records.isEmpty { return .empty }
                return records.count == Int(hi - lo + 1) ? .full : .sparse
            },
            candidates: { model, lo, hi in
                var a = 0, b = model.count
                while a < b { let m = (a + b) / 2; if model[m].key < lo { a = m + 1 } else { b = m } }
                var e = a, f = model.count
                while e < f { let m = (e + f) / 2; if model[m].key <= hi { e = m + 1 } else { f = m } }
                return a..<e
            },
            maxSize: maxSize)
    }
}

/// Longest extent the extent configurations generate.
let maxExtentLength: UInt32 = 16

extension Differential where Format == ExtentFormat {
    /// Overlapping extents starting in [0, blockSpace): uniformly, or `skewed` (crowded
    /// towards 0, the cube of a uniform fraction) so that interpolated guesses miss.
    init(seed: UInt64, store: Store, blockSpace: UInt32, maxSize: Int, skewed: Bool = false) throws {
        let space = UInt64(blockSpace)
        let place: (UInt64) -> UInt32 = { u in
            let x = u % space
            return UInt32(skewed ? x * x / space * x / space : x)
        }
        self.init(
            tree: try BTree.createEmpty(in: store), rng: SeededRandom(seed: seed), seed: seed,
            makeRecord: { g in
                Extent(start: place(g.next()), length: UInt32(1 + g.next() % UInt64(maxExtentLength)),
                       owner: g.next() % 4, offset: g.next() % 64)
            },
            makeKey: { g in
                ExtentKey(start: place(g.next()) + UInt32(g.next() % 21), owner: g.next() % 5, offset: g.next() % 70)
            },
            mutate: { r, g in
                var n = r
                n.length = UInt32(1 + g.next() % UInt64(maxExtentLength))
                return n
            },
            makeRange: { g in
                let a = ExtentKey(start: UInt32(g.next() % UInt64(blockSpace)), owner: g.next() % 5, offset: g.next() % 70)
                var b = a
                b.start += UInt32(g.next() % 40)
                b.owner = g.next() % 5
                b.offset = g.next() % 70
                return b < a ? (b, a) : (a, b)
            },
            makeCoverageRange: { g in
                let a = UInt32(g.next() % UInt64(blockSpace))
                let b = a + UInt32(g.next() % 40)
                return (ExtentKey(start: a, owner: 0, offset: 0), ExtentKey(start: b, owner: .max, offset: .max))
            },
            bruteCoverage: { records, lo, hi in
                if records.isEmpty { return .empty }
                var covered = Set<UInt32>()
                for r in records {
                    for blk in max(r.start, lo.start)...min(r.start + r.length - 1, hi.start) { covered.insert(blk) }
                }
                return covered.count == Int(hi.start - lo.start + 1) ? .full : .sparse
            },
            candidates: { model, lo, hi in
                let first = ExtentKey(start: lo.start >= maxExtentLength ? lo.start - maxExtentLength : 0, owner: 0, offset: 0)
                var a = 0, b = model.count
                while a < b { let m = (a + b) / 2; if ExtentFormat.lowKey(of: model[m]) < first { a = m + 1 } else { b = m } }
                var e = a, f = model.count
                while e < f { let m = (e + f) / 2; if !(hi < ExtentFormat.lowKey(of: model[m])) { e = m + 1 } else { f = m } }
                return a..<e
            },
            maxSize: maxSize)
    }
}
