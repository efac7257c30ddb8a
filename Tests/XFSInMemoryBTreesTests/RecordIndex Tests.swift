import Testing
import XFSTestSupport
@testable import XFSInMemoryBTrees

@Suite("Record index")
struct RecordIndexTests {
    @Test("Lookups, deletes, ranges and iteration agree with a sorted-array model over random operations")
    func differential() throws {
        for seed: UInt64 in [1, 2, 3] {
            var random = SeededRandom(seed: seed)
            let index = try tinyIndex(Extent.self)
            var model: [UInt64: Extent] = [:]
            for step in 0..<3000 {
                let start = UInt64.random(in: 0..<600, using: &random)
                switch UInt8.random(in: 0..<10, using: &random) {
                case 0..<5:
                    let extent = Extent(start: start, length: UInt32.random(in: 1...9, using: &random), owner: UInt64(step))
                    if model[start] != nil {
                        #expect(throws: RecordIndexError.duplicateKey("\(start)")) { try index.insert(extent) }
                    } else {
                        try index.insert(extent)
                        model[start] = extent
                    }
                case 5..<8:
                    #expect(try index.delete(key: start) == model.removeValue(forKey: start), "seed \(seed) step \(step)")
                default:
                    let sorted = model.keys.sorted()
                    #expect(try index.record(forKey: start) == model[start])
                    #expect(try index.lastRecord(atOrBefore: start) == sorted.last { $0 <= start }.map { model[$0]! })
                    #expect(try index.firstRecord(atOrAfter: start) == sorted.first { $0 >= start }.map { model[$0]! })
                }
                #expect(index.count == model.count)
            }
            let sorted = model.keys.sorted().map { model[$0]! }
            #expect(Array(index) == sorted)
            #expect(Array(index.records(in: 100...300)) == sorted.filter { (100...300).contains($0.start) })
            #expect(Array(index.records(in: 100..<300)) == sorted.filter { (100..<300).contains($0.start) })
            #expect(Array(index.records(in: 450...)) == sorted.filter { $0.start >= 450 })
            #expect(Array(index.records(in: ...50)) == sorted.filter { $0.start <= 50 })
            #expect(Array(index.records(in: ..<50)) == sorted.filter { $0.start < 50 })
            #expect(try index.records(overlapping: 10...20) == sorted.filter { (10...20).contains($0.start) })
            #expect(try index.first() == sorted.first)
            #expect(try index.last() == sorted.last)
            #expect(index.height >= 3, "tiny blocks should make a deep tree")
            let report = index.verify()
            #expect(report.isClean, "\(report.faults)")
            #expect(report.records == model.count)
        }
    }

    @Test("Iterations interleaved with random changes return what a sorted-array model says")
    func iterationDifferential() throws {
        // The model of a walk: its next record is the first in the range after the one it
        // returned last, in the index as it is at that moment.
        for seed: UInt64 in [11, 12, 13] {
            var random = SeededRandom(seed: seed)
            let index = try tinyIndex(Extent.self)
            var model: [UInt64: Extent] = [:]
            for start in stride(from: UInt64(0), to: 800, by: 3) {
                let extent = Extent(start: start, length: 1, owner: start)
                try index.insert(extent)
                model[start] = extent
            }
            for walk in 0..<40 {
                let low = UInt64.random(in: 0..<400, using: &random)
                let high = low + UInt64.random(in: 0..<500, using: &random)
                var iterator = index.records(in: low...high).makeIterator()
                var last: UInt64? = nil
                while true {
                    let expected = model.keys.filter { key in key >= low && key <= high && (last.map { key > $0 } ?? true) }.min()
                    let got = iterator.next()
                    #expect(got?.start == expected, "seed \(seed) walk \(walk) after \(last.map(String.init) ?? "start")")
                    guard let got, got.start == expected else { break }
                    last = got.start
                    // Now and then, change the index between two steps of the walk.
                    for _ in 0..<(UInt8.random(in: 0..<4, using: &random) == 0 ? Int.random(in: 1...30, using: &random) : 0) {
                        let key = UInt64.random(in: 0..<900, using: &random)
                        if model[key] == nil {
                            let extent = Extent(start: key, length: 1, owner: UInt64(walk))
                            try index.insert(extent)
                            model[key] = extent
                        } else {
                            _ = try index.delete(key: key)
                            model[key] = nil
                        }
                    }
                }
            }
            #expect(index.verify().isClean)
        }
    }

    @Test("A duplicate key is refused with an error and changes nothing")
    func duplicateRefused() throws {
        let index = try RecordIndex<Extent>()
        try index.insert(Extent(start: 5, length: 1, owner: 1))
        #expect(throws: RecordIndexError.duplicateKey("5")) {
            try index.insert(Extent(start: 5, length: 2, owner: 2))
        }
        #expect(index.count == 1)
        #expect(try index.record(forKey: 5)?.owner == 1)
        #expect(index.verify().isClean)
        try index.insert(Extent(start: 6, length: 1, owner: 3)) // still usable
        #expect(index.count == 2)
    }

    @Test("An invalid record is refused with its problem")
    func invalidRefused() throws {
        let index = try RecordIndex<Extent>()
        #expect(throws: RecordIndexError.invalidRecord("zero length")) {
            try index.insert(Extent(start: 5, length: 0, owner: 1))
        }
        #expect(index.isEmpty)
    }

    @Test("With duplicates allowed, equal keys keep insertion order across batches and deletes")
    func duplicatesAllowed() throws {
        let index = try tinyIndex(Extent.self, duplicateKeys: .allowed)
        // 700 records on key 10 (more than two iteration batches), and neighbours.
        try index.insert(Extent(start: 9, length: 1, owner: 0))
        for owner in 1...700 { try index.insert(Extent(start: 10, length: 1, owner: UInt64(owner))) }
        try index.insert(Extent(start: 11, length: 1, owner: 999))
        #expect(index.count == 702)
        #expect(index.verify().isClean)
        #expect(Array(index.records(in: 10...10)).map(\.owner) == (1...700).map { UInt64($0) })
        #expect(try index.record(forKey: 10)?.owner == 1)
        #expect(try index.firstRecord(atOrAfter: 10)?.owner == 1)
        #expect(try index.lastRecord(atOrBefore: 10)?.owner == 700)
        #expect(try index.delete(key: 10)?.owner == 1)
        #expect(try index.delete(Extent(start: 10, length: 1, owner: 350)))
        #expect(try !index.delete(Extent(start: 10, length: 1, owner: 350)))
        let owners = Array(index.records(in: 10...10)).map(\.owner)
        #expect(owners == (2...700).filter { $0 != 350 }.map { UInt64($0) })
        #expect(index.count == 700)
        #expect(Array(index).count == 700)
        #expect(index.verify().isClean)
    }

    @Test("Records covering key intervals are found by any key they overlap")
    func overlapQueries() throws {
        var random = SeededRandom(seed: 9)
        let index = try tinyIndex(Span.self)
        var spans: [Span] = []
        for start in stride(from: UInt64(0), to: 3000, by: 7) {
            let span = Span(start: start, length: UInt32.random(in: 1...40, using: &random), owner: start)
            try index.insert(span)
            spans.append(span)
        }
        #expect(throws: RecordIndexError.self) { try index.insert(Span(start: 4000, length: 0, owner: 0)) }
        for _ in 0..<200 {
            let low = UInt64.random(in: 0..<3100, using: &random)
            let high = low + UInt64.random(in: 0..<50, using: &random)
            let expected = spans.filter { $0.start <= high && $0.lastKey >= low }
            #expect(try index.records(overlapping: low...high) == expected, "\(low)...\(high)")
        }
        var seen = 0
        try index.forEachRecord(overlapping: 0...3100) { _ in seen += 1; return seen < 5 }
        #expect(seen == 5)
        #expect(index.verify().isClean)
    }

    @Test("Compound keys and every field type round-trip")
    func compoundKeys() throws {
        let index = try RecordIndex<Note>()
        let notes = [
            Note(position: Position(file: 2, offset: 0), title: "zwei", weight: -1.5, ratio: 0.25, pinned: true, delta: -7),
            Note(position: Position(file: 1, offset: 900), title: "sixteen bytes!!!", weight: .infinity, ratio: -0, pinned: false, delta: .max),
            Note(position: Position(file: 1, offset: 4), title: "", weight: 0, ratio: 3, pinned: true, delta: .min),
        ]
        for note in notes { try index.insert(note) }
        #expect(Array(index) == notes.sorted { $0.position < $1.position })
        #expect(try index.lastRecord(atOrBefore: Position(file: 1, offset: .max))?.title == "sixteen bytes!!!")
        #expect(try index.contains(key: Position(file: 2, offset: 0)))
        #expect(try !index.contains(key: Position(file: 2, offset: 1)))
    }

    @Test("After a change during an iteration, the walk goes on after the last record it returned")
    func iterationAcrossChanges() throws {
        for duplicateKeys in [DuplicateKeys.refused, .allowed] {
            let index = try tinyIndex(Extent.self, duplicateKeys: duplicateKeys)
            for start in stride(from: UInt64(0), to: 4000, by: 2) { try index.insert(Extent(start: start, length: 1, owner: 0)) }
            var iterator = index.makeIterator()
            var seen: [UInt64] = []
            while let extent = iterator.next() {
                seen.append(extent.start)
                if extent.start == 600 {
                    // Delete what was seen (the record returned last too), add one record
                    // before the position, one in the same leaf, one far after it.
                    for start in stride(from: UInt64(0), through: 600, by: 2) { try index.delete(key: start) }
                    try index.insert(Extent(start: 1, length: 1, owner: 0))
                    try index.insert(Extent(start: 603, length: 1, owner: 0))
                    try index.insert(Extent(start: 3001, length: 1, owner: 0))
                }
                if extent.start == 2000 {
                    // A transaction rolled back changes nothing the walk sees.
                    let transaction = index.beginTransaction()
                    try transaction.insert(Extent(start: 2001, length: 1, owner: 0))
                    _ = try transaction.delete(key: 2002)
                    transaction.rollback()
                }
            }
            let expected = stride(from: UInt64(0), to: 4000, by: 2).flatMap { (start: UInt64) -> [UInt64] in
                start == 602 || start == 3000 ? [start, start + 1] : [start]
            }
            #expect(seen == expected, "\(duplicateKeys)")
        }
    }

    @Test("An empty index, and one emptied by deletes, iterates nothing; a walk sees a first insert")
    func emptyWalks() throws {
        for duplicateKeys in [DuplicateKeys.refused, .allowed] {
            let index = try tinyIndex(Extent.self, duplicateKeys: duplicateKeys)
            #expect(Array(index).isEmpty && Array(index.records(in: 5...9)).isEmpty)
            var waiting = index.makeIterator()
            for start in 0..<UInt64(100) { try index.insert(Extent(start: start, length: 1, owner: 0)) }
            #expect(waiting.next()?.start == 0, "a walk not yet started sees the index as it is when it starts")
            for start in 0..<UInt64(100) { _ = try index.delete(key: start) }
            #expect(Array(index).isEmpty && index.isEmpty, "\(duplicateKeys)")
            #expect(waiting.next() == nil, "nothing is left after the record returned")
        }
    }

    @Test("A copied iterator walks on by itself, across batches and range ends")
    func iteratorCopies() throws {
        for duplicateKeys in [DuplicateKeys.refused, .allowed] {
            let index = try tinyIndex(Extent.self, duplicateKeys: duplicateKeys)
            for start in 0..<UInt64(3000) { try index.insert(Extent(start: start, length: 1, owner: start)) }
            var first = index.records(in: 10..<2900).makeIterator()
            for _ in 0..<1500 { _ = first.next() }
            var second = first
            var rest: [UInt64] = []
            while let extent = first.next() { rest.append(extent.start) }
            #expect(rest == Array(1510..<2900), "\(duplicateKeys)")
            #expect(first.next() == nil, "an ended walk stays ended")
            var again: [UInt64] = []
            while let extent = second.next() { again.append(extent.start) }
            #expect(again == rest, "the copy walks the same records by itself (\(duplicateKeys))")
        }
    }

    @Test("A full index refuses the insert, changes nothing, and stays usable")
    func full() throws {
        let index = try RecordIndex<Extent>(maximumSize: 16 * 4096)
        var inserted = 0
        do {
            while true {
                try index.insert(Extent(start: UInt64(inserted), length: 1, owner: 0))
                inserted += 1
            }
        } catch RecordIndexError.full(let size) {
            #expect(size == 16 * 4096)
        }
        #expect(inserted > 1000)
        #expect(index.count == inserted)
        #expect(index.verify().isClean)
        #expect(try index.delete(key: 0) != nil)
        #expect(Array(index).count == inserted - 1)
    }
}
