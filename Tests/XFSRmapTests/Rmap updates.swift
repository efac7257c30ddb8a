import Testing
import XFSBTree
import XFSBuffer
import XFSFormat
import XFSTestSupport
@testable import XFSRmap

// The unmap and convert operations (plain and shared) on the in-memory rmap btree: each case
// of the kernel's state machines stated exactly, then long seeded sequences compared with an
// array model written from the rules alone. The kernel itself is the oracle in the replay
// test (Live tracing.swift).

private func makeTree(sharing: Bool = false) throws -> RmapBTree {
    let target = try MemoryTarget(name: "rmap-update-test", maximumSize: 4096 * MemoryTarget.blockSize)
    // Small blocks (few records per block) so that sequences split and join blocks.
    return try RmapBTree(target: target, allowsSharing: sharing,
                         recordLimits: BTreeRecordLimits(leafMax: 6, leafMin: 3, nodeMax: 4, nodeMin: 2))
}

private func rec(_ start: UInt32, _ length: UInt32, _ owner: UInt64, _ offset: UInt64 = 0,
                 attr: Bool = false, bmbt: Bool = false, unwritten: Bool = false) -> RmapRecord {
    RmapRecord(startBlock: start, blockCount: length, owner: owner, offset: offset,
               isAttrFork: attr, isBmbtBlock: bmbt, isUnwritten: unwritten)
}

private func tree(_ records: [RmapRecord], sharing: Bool = false) throws -> RmapBTree {
    let t = try makeTree(sharing: sharing)
    for r in records { try t.apply(RmapUpdate(sharing ? .mapShared : .map, agno: 0, r)) }
    return t
}

@Suite("Rmap updates: unmap and convert, each case")
struct RmapUpdateCaseTests {
    @Test("unmap removes a whole record, its head, its tail or its middle", arguments: [false, true])
    func unmapCases(shared: Bool) throws {
        let op: RmapUpdate.Operation = shared ? .unmapShared : .unmap
        let t = try tree([rec(10, 10, 100, 0), rec(30, 10, 101, 50), rec(50, 10, 102, 7), rec(70, 10, 103, 0)],
                         sharing: shared)
        try t.apply(RmapUpdate(op, agno: 0, rec(10, 10, 100, 0)))          // whole
        try t.apply(RmapUpdate(op, agno: 0, rec(30, 3, 101, 50)))          // head
        try t.apply(RmapUpdate(op, agno: 0, rec(57, 3, 102, 14)))          // tail
        try t.apply(RmapUpdate(op, agno: 0, rec(72, 5, 103, 2)))           // middle: split
        #expect(try t.records() == [rec(33, 7, 101, 53), rec(50, 7, 102, 7), rec(70, 2, 103, 0), rec(77, 3, 103, 7)])
    }

    @Test("special owners and bmbt blocks unmap without offsets")
    func unmapSpecial() throws {
        let t = try tree([rec(0, 20, RmapOwner.ag), rec(40, 4, 500, bmbt: true)])
        try t.apply(RmapUpdate(.unmap, agno: 0, rec(5, 5, RmapOwner.ag)))
        try t.apply(RmapUpdate(.unmap, agno: 0, rec(40, 1, 500, bmbt: true)))
        #expect(try t.records() == [rec(0, 5, RmapOwner.ag), rec(10, 10, RmapOwner.ag), rec(41, 3, 500, bmbt: true)])
    }

    @Test("an unmap that no record covers, or that disagrees with it, throws and changes nothing",
          arguments: [false, true])
    func unmapRefusals(shared: Bool) throws {
        let op: RmapUpdate.Operation = shared ? .unmapShared : .unmap
        let before = [rec(10, 10, 100, 0), rec(20, 5, 100, 10, unwritten: true)]
        let t = try tree(before, sharing: shared)
        #expect(throws: RmapUpdateError.notMapped(rec(30, 1, 100, 20))) {
            try t.apply(RmapUpdate(op, agno: 0, rec(30, 1, 100, 20)))
        }
        #expect(throws: RmapUpdateError.notMapped(rec(12, 2, 101, 2))) {           // another owner
            try t.apply(RmapUpdate(op, agno: 0, rec(12, 2, 101, 2)))
        }
        #expect(throws: RmapUpdateError.notMapped(rec(12, 2, 100, 9))) {           // another offset
            try t.apply(RmapUpdate(op, agno: 0, rec(12, 2, 100, 9)))
        }
        #expect(throws: RmapUpdateError.self) { try t.apply(RmapUpdate(op, agno: 0, rec(18, 4, 100, 8))) } // runs past
        #expect(throws: RmapUpdateError.self) { try t.apply(RmapUpdate(op, agno: 0, rec(20, 1, 100, 10))) } // state
        #expect(try t.records() == before)
    }

    /// One convert case: PREV with optional neighbours, the range converted, the records after.
    struct ConvertCase: Sendable, CustomTestStringConvertible {
        var name: String
        var before: [RmapRecord]
        var update: RmapRecord
        var after: [RmapRecord]
        var testDescription: String { name }
    }

    // PREV is [20, 30) unwritten for owner 100 at offset 20; LEFT [10, 20) and RIGHT [30, 40)
    // written when present.
    static let convertCases: [ConvertCase] = [
        ConvertCase(name: "LEFT_FILLING|RIGHT_FILLING|LEFT_CONTIG|RIGHT_CONTIG",
                    before: [rec(10, 10, 100, 10), rec(20, 10, 100, 20, unwritten: true), rec(30, 10, 100, 30)],
                    update: rec(20, 10, 100, 20, unwritten: true), after: [rec(10, 30, 100, 10)]),
        ConvertCase(name: "LEFT_FILLING|RIGHT_FILLING|LEFT_CONTIG",
                    before: [rec(10, 10, 100, 10), rec(20, 10, 100, 20, unwritten: true), rec(30, 10, 100, 31)],
                    update: rec(20, 10, 100, 20, unwritten: true), after: [rec(10, 20, 100, 10), rec(30, 10, 100, 31)]),
        ConvertCase(name: "LEFT_FILLING|RIGHT_FILLING|RIGHT_CONTIG",
                    before: [rec(10, 10, 101, 10), rec(20, 10, 100, 20, unwritten: true), rec(30, 10, 100, 30)],
                    update: rec(20, 10, 100, 20, unwritten: true), after: [rec(10, 10, 101, 10), rec(20, 20, 100, 20)]),
        ConvertCase(name: "LEFT_FILLING|RIGHT_FILLING",
                    before: [rec(10, 10, 100, 10, attr: true), rec(20, 10, 100, 20, unwritten: true),
                             rec(30, 10, 100, 30, unwritten: true)],
                    update: rec(20, 10, 100, 20, unwritten: true),
                    after: [rec(10, 10, 100, 10, attr: true), rec(20, 10, 100, 20), rec(30, 10, 100, 30, unwritten: true)]),
        ConvertCase(name: "LEFT_FILLING|LEFT_CONTIG",
                    before: [rec(10, 10, 100, 10), rec(20, 10, 100, 20, unwritten: true)],
                    update: rec(20, 4, 100, 20, unwritten: true),
                    after: [rec(10, 14, 100, 10), rec(24, 6, 100, 24, unwritten: true)]),
        ConvertCase(name: "LEFT_FILLING",
                    before: [rec(20, 10, 100, 20, unwritten: true)],
                    update: rec(20, 4, 100, 20, unwritten: true),
                    after: [rec(20, 4, 100, 20), rec(24, 6, 100, 24, unwritten: true)]),
        ConvertCase(name: "RIGHT_FILLING|RIGHT_CONTIG",
                    before: [rec(20, 10, 100, 20, unwritten: true), rec(30, 10, 100, 30)],
                    update: rec(26, 4, 100, 26, unwritten: true),
                    after: [rec(20, 6, 100, 20, unwritten: true), rec(26, 14, 100, 26)]),
        ConvertCase(name: "RIGHT_FILLING",
                    before: [rec(20, 10, 100, 20, unwritten: true), rec(30, 10, 100, 40)],
                    update: rec(26, 4, 100, 26, unwritten: true),
                    after: [rec(20, 6, 100, 20, unwritten: true), rec(26, 4, 100, 26), rec(30, 10, 100, 40)]),
        ConvertCase(name: "neither side filling (a three-way split)",
                    before: [rec(10, 10, 100, 10), rec(20, 10, 100, 20, unwritten: true), rec(30, 10, 100, 30)],
                    update: rec(23, 4, 100, 23, unwritten: true),
                    after: [rec(10, 10, 100, 10), rec(20, 3, 100, 20, unwritten: true), rec(23, 4, 100, 23),
                            rec(27, 3, 100, 27, unwritten: true), rec(30, 10, 100, 30)]),
        ConvertCase(name: "written to unwritten joins unwritten neighbours",
                    before: [rec(10, 10, 100, 10, unwritten: true), rec(20, 10, 100, 20), rec(30, 10, 100, 30, unwritten: true)],
                    update: rec(20, 10, 100, 20), after: [rec(10, 30, 100, 10, unwritten: true)]),
    ]

    @Test("convert: every state of the neighbour state machine", arguments: convertCases, [false, true])
    func convertCase(_ c: ConvertCase, shared: Bool) throws {
        let t = try tree(c.before, sharing: shared)
        try t.apply(RmapUpdate(shared ? .convertShared : .convert, agno: 0, c.update))
        #expect(try t.records() == c.after)
    }

    @Test("convert: LEFT+PREV+RIGHT longer than 2^32 - 1 blocks joins only LEFT", arguments: [false, true])
    func convertLengthLimit(shared: Bool) throws {
        // The three span the whole 2^32-block space: one block too many for a record.
        let half: UInt32 = 1 << 31
        let t = try tree([rec(0, half, 100, 0), rec(half, 10, 100, UInt64(half), unwritten: true),
                          rec(half + 10, half - 10, 100, UInt64(half) + 10)], sharing: shared)
        try t.apply(RmapUpdate(shared ? .convertShared : .convert, agno: 0, rec(half, 10, 100, UInt64(half), unwritten: true)))
        #expect(try t.records() == [rec(0, half + 10, 100, 0), rec(half + 10, half - 10, 100, UInt64(half) + 10)])
    }

    @Test("shared: the owner's record is found among other owners' overlapping records")
    func sharedAmongOverlaps() throws {
        // Owners 100..103 share [100, 200); 101's copy is unwritten in the middle.
        let t = try tree([rec(100, 100, 100, 0), rec(100, 40, 101, 0), rec(140, 20, 101, 40, unwritten: true),
                          rec(160, 40, 101, 60), rec(100, 100, 102, 0), rec(100, 100, 103, 0)], sharing: true)
        try t.apply(RmapUpdate(.convertShared, agno: 0, rec(140, 20, 101, 40, unwritten: true)))
        #expect(try t.records().filter { $0.owner == 101 } == [rec(100, 100, 101, 0)])
        try t.apply(RmapUpdate(.unmapShared, agno: 0, rec(150, 10, 102, 50)))
        try t.apply(RmapUpdate(.convertShared, agno: 0, rec(120, 5, 103, 20)))
        #expect(try t.records() == [rec(100, 100, 100, 0), rec(100, 100, 101, 0), rec(100, 50, 102, 0),
                                    rec(100, 20, 103, 0), rec(120, 5, 103, 20, unwritten: true),
                                    rec(125, 75, 103, 25), rec(160, 40, 102, 60)])
    }
}

// MARK: The model

/// The rmap operations over a plain array, written from the rules (find the owner's record
/// covering the range by a linear search, cut it, join contiguous records of the owner with
/// the same flags): nothing shared with the btree code.
struct RmapArrayModel {
    var records: [RmapRecord] = []

    static func sameKind(_ a: RmapRecord, _ b: RmapRecord) -> Bool {
        a.owner == b.owner && a.isAttrFork == b.isAttrFork && a.isBmbtBlock == b.isBmbtBlock
            && a.isUnwritten == b.isUnwritten
    }

    /// `b` continues `a` physically and logically, within a record's length.
    static func continues(_ a: RmapRecord, _ b: RmapRecord) -> Bool {
        sameKind(a, b) && UInt64(a.startBlock) + UInt64(a.blockCount) == UInt64(b.startBlock)
            && (!a.isFileMapping || a.offset + UInt64(a.blockCount) == b.offset)
            && UInt64(a.blockCount) + UInt64(b.blockCount) <= UInt64(UInt32.max)
    }

    func index(covering u: RmapRecord) -> Int? {
        records.firstIndex { r in
            r.owner == u.owner && r.isAttrFork == u.isAttrFork && r.isBmbtBlock == u.isBmbtBlock
                && r.startBlock <= u.startBlock && r.startBlock + r.blockCount > u.startBlock
                && (!u.isFileMapping || r.offset + UInt64(u.startBlock - r.startBlock) == u.offset)
        }
    }

    mutating func map(_ u: RmapRecord) -> Bool {
        if records.contains(where: { RmapFormat.lowKey(of: $0) == RmapFormat.lowKey(of: u) }) { return false }
        var merged = u
        if let l = records.firstIndex(where: { Self.continues($0, u) }) {
            merged = records[l]
            merged.blockCount += u.blockCount
            records.remove(at: l)
        }
        if let r = records.firstIndex(where: { Self.continues(merged, $0) }) {
            let right = records.remove(at: r)
            merged.blockCount += right.blockCount
        }
        records.append(merged)
        return true
    }

    mutating func unmap(_ u: RmapRecord) -> Bool {
        guard let i = index(covering: u) else { return false }
        let r = records[i]
        guard r.startBlock + r.blockCount >= u.startBlock + u.blockCount, r.isUnwritten == u.isUnwritten else { return false }
        records.remove(at: i)
        records += pieces(of: r, around: u)
        return true
    }

    /// What is left of `r` outside `u`'s range: a head and a tail, either possibly empty.
    func pieces(of r: RmapRecord, around u: RmapRecord) -> [RmapRecord] {
        var out: [RmapRecord] = []
        if u.startBlock > r.startBlock {
            var head = r
            head.blockCount = u.startBlock - r.startBlock
            out.append(head)
        }
        let uEnd = u.startBlock + u.blockCount, rEnd = r.startBlock + r.blockCount
        if rEnd > uEnd {
            var tail = r
            tail.startBlock = uEnd
            tail.blockCount = rEnd - uEnd
            if r.isFileMapping { tail.offset = r.offset + UInt64(uEnd - r.startBlock) }
            out.append(tail)
        }
        return out
    }

    mutating func convert(_ u: RmapRecord) -> Bool {
        guard let i = index(covering: u) else { return false }
        let r = records[i]
        guard r.startBlock + r.blockCount >= u.startBlock + u.blockCount, r.isUnwritten == u.isUnwritten else { return false }
        records.remove(at: i)
        records += pieces(of: r, around: u)
        var c = u
        c.isUnwritten.toggle()
        // Join a left neighbour that ends where the range starts, then a right one; when all
        // three together would be too long, only the left one joins.
        let l = records.firstIndex { Self.continues($0, c) }
        if let l {
            let left = records[l]
            if let r = records.firstIndex(where: { Self.continues(c, $0) }),
               UInt64(left.blockCount) + UInt64(c.blockCount) + UInt64(records[r].blockCount) <= UInt64(UInt32.max) {
                let right = records[r]
                records.removeAll { $0 == left || $0 == right }
                var m = left
                m.blockCount += c.blockCount + right.blockCount
                records.append(m)
            } else {
                records[l].blockCount += c.blockCount
            }
        } else if let r = records.firstIndex(where: { Self.continues(c, $0) }) {
            records[r].blockCount += c.blockCount
            records[r].startBlock = c.startBlock
            records[r].offset = c.offset
        } else {
            records.append(c)
        }
        return true
    }

    var sorted: [RmapRecord] { records.sorted { RmapFormat.lowKey(of: $0) < RmapFormat.lowKey(of: $1) } }
}

@Suite("Rmap updates: seeded sequences against an array model")
struct RmapUpdateModelTests {
    /// Random valid and invalid updates on one AG: with `shared`, several owners map the same
    /// blocks (a reflink filesystem) and the shared operations run; without, blocks belong to
    /// one owner at a time.
    @Test("random map / unmap / convert sequences equal the model after every step",
          arguments: [(1 as UInt64, false), (2, false), (3, true), (4, true)])
    func sequences(seed: UInt64, shared: Bool) throws {
        var random = SeededRandom(seed: seed)
        let t = try makeTree(sharing: shared)
        var model = RmapArrayModel()
        let owners: [UInt64] = [100, 101, 102, 103]
        var applied = 0, refused = 0
        for step in 0..<1500 {
            let pick = Int.random(in: 0..<10, using: &random)
            var update: RmapUpdate
            if pick < 4 || model.records.isEmpty {
                // Map a new range for an owner, at an offset that owner does not use yet.
                let owner = owners.randomElement(using: &random)!
                let start = UInt32.random(in: 0..<400, using: &random)
                let length = UInt32.random(in: 1...12, using: &random)
                let offset = UInt64(start) + (shared ? UInt64(owner) * 1000 : 0)
                let r = rec(start, length, owner, offset, unwritten: Bool.random(using: &random))
                let clash = model.records.contains { m in
                    let blocksMeet = m.startBlock < start + length && start < m.startBlock + m.blockCount
                    return shared ? (m.owner == owner && blocksMeet) : blocksMeet
                }
                if clash { continue }
                update = RmapUpdate(shared ? .mapShared : .map, agno: 0, r)
            } else {
                // Unmap or convert a piece of an existing record; one time in ten a piece that
                // does not match (a wrong offset or state), which both must refuse.
                let r = model.records.randomElement(using: &random)!
                let a = UInt32.random(in: 0..<r.blockCount, using: &random)
                let b = UInt32.random(in: (a + 1)...r.blockCount, using: &random)
                var u = rec(r.startBlock + a, b - a, r.owner, r.offset + UInt64(a), unwritten: r.isUnwritten)
                if Int.random(in: 0..<10, using: &random) == 0 {
                    if Bool.random(using: &random) { u.offset += 1 } else { u.isUnwritten.toggle() }
                }
                let unmap = pick < 7
                update = RmapUpdate(unmap ? (shared ? .unmapShared : .unmap) : (shared ? .convertShared : .convert),
                                    agno: 0, u)
            }
            let expected: Bool
            switch update.operation {
            case .map, .mapShared: expected = model.map(update.record)
            case .unmap, .unmapShared: expected = model.unmap(update.record)
            case .convert, .convertShared: expected = model.convert(update.record)
            }
            var succeeded = true
            do { try t.apply(update) } catch { succeeded = false }
            #expect(succeeded == expected, "seed \(seed) step \(step): \(update)")
            if succeeded { applied += 1 } else { refused += 1 }
            let actual = try t.records()
            if actual != model.sorted {
                Issue.record("seed \(seed) step \(step) after \(update):\n tree  \(actual.map(RmapText.describe))\n model \(model.sorted.map(RmapText.describe))")
                return
            }
        }
        #expect(applied > 500 && refused > 20)
    }
}

@Suite("Live collector: which failures start a check again")
struct LiveCollectorFailureTests {
    @Test("an update the trees cannot take is a restartable race; lost events are not")
    func unfitUpdatesRestart() throws {
        let unfit = LiveRmapCollector(trees: [try makeTree(sharing: true)])
        unfit.scanComplete = true
        unfit.receive(.update(RmapUpdate(.unmapShared, agno: 0, rec(479, 3, 2407, 10))))
        #expect(unfit.failure != nil && unfit.failureIsUnfit, "\(unfit.failure ?? "no failure")")
        #expect(throws: UnfitUpdate.self) { try unfit.waitForClose(1, timeout: 1) }

        let lost = LiveRmapCollector(trees: [try makeTree(sharing: true)])
        lost.receive(.lost("cpu 0: 12 events overwritten"))
        lost.receive(.update(RmapUpdate(.unmapShared, agno: 0, rec(479, 3, 2407, 10))))
        #expect(lost.failure != nil && !lost.failureIsUnfit)
        #expect(throws: LiveCheckError.self) { try lost.waitForClose(1, timeout: 1) }

        // A sound update applies and fails nothing.
        let sound = LiveRmapCollector(trees: [try makeTree(sharing: true)])
        sound.scanComplete = true
        sound.receive(.update(RmapUpdate(.mapShared, agno: 0, rec(479, 3, 2407, 10))))
        #expect(sound.failure == nil && sound.applied == 1)
    }
}
