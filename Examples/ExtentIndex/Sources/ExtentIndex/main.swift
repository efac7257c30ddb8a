import XFSInMemoryBTrees

/// A run of blocks a file owns: the record type of this index.
struct Extent: IndexRecord, CustomStringConvertible {
    var start: UInt64   // first block
    var length: UInt32  // blocks
    var owner: UInt64   // the file

    // The key records are sorted by, and (since an extent covers blocks start...last)
    // the interval of keys each record covers, for overlap queries.
    var key: UInt64 { start }
    var lastKey: UInt64 { start + UInt64(length) - 1 }
    static var coversKeyInterval: Bool { true }

    // Fixed-size, big-endian encoding through a bounds-checked writer and reader.
    static var encodedSize: Int { 20 }
    func encode(to writer: inout RecordWriter) {
        writer.write(start)
        writer.write(length)
        writer.write(owner)
    }
    init(from reader: inout RecordReader) {
        start = reader.read()
        length = reader.read()
        owner = reader.read()
    }
    init(start: UInt64, length: UInt32, owner: UInt64) {
        self.start = start
        self.length = length
        self.owner = owner
    }

    // Optional: records the index must refuse.
    var validityProblem: String? { length == 0 ? "an extent of no blocks" : nil }

    var description: String { "blocks \(start)-\(lastKey) (owner \(owner))" }
}

do {
    let index = try RecordIndex<Extent>()
    for extent in [
        Extent(start: 100, length: 20, owner: 7),
        Extent(start: 10, length: 5, owner: 3),
        Extent(start: 125, length: 5, owner: 9),
        Extent(start: 300, length: 50, owner: 7),
        Extent(start: 40, length: 8, owner: 3),
    ] {
        try index.insert(extent)
    }
    print("\(index.count) extents, in key order:")
    for extent in index { print("  \(extent)") }

    // Lookups: equal, at or before, at or after.
    print("extent at 125:", try index.record(forKey: 125).map(String.init(describing:)) ?? "none")
    print("last at or before 150:", try index.lastRecord(atOrBefore: 150).map(String.init(describing:)) ?? "none")
    print("first at or after 150:", try index.firstRecord(atOrAfter: 150).map(String.init(describing:)) ?? "none")

    // A range of keys, read lazily, and the extents overlapping a range of blocks.
    print("extents starting in 0..<100:", index.records(in: 0..<100).map(\.start))
    print("extents using a block in 115...127:", try index.records(overlapping: 115...127).map(\.owner))

    // Refusals change nothing and say why.
    do {
        try index.insert(Extent(start: 100, length: 1, owner: 5))
    } catch let error as RecordIndexError {
        print("refused: \(error)")
    }

    // A transaction: changes become permanent together, or not at all.
    do {
        try index.withTransaction { transaction in
            try transaction.insert(Extent(start: 500, length: 10, owner: 11))
            try transaction.delete(key: 10)
            try transaction.insert(Extent(start: 600, length: 0, owner: 11)) // invalid: throws
        }
    } catch {
        print("rolled back (\(error)): \(index.count) extents, extent at 10 still there: \(try index.contains(key: 10))")
    }
    try index.withTransaction { transaction in
        try transaction.insert(Extent(start: 500, length: 10, owner: 11))
        try transaction.delete(key: 10)
    }
    print("committed: \(index.count) extents, first \(try index.first().map(String.init(describing:)) ?? "none")")
    print("verify: \(index.verify().isClean ? "clean" : "faults")")
} catch {
    print("extent-index: \(error)")
}
