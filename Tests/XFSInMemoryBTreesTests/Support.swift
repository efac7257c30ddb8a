@testable import XFSInMemoryBTrees

/// A record as a user would write one: a 20-byte extent keyed by its start.
struct Extent: IndexRecord, CustomStringConvertible {
    var start: UInt64
    var length: UInt32
    var owner: UInt64

    var key: UInt64 { start }
    static var encodedSize: Int { 20 }
    func encode(to writer: inout RecordWriter) {
        writer.write(start)
        writer.write(length)
        writer.write(owner)
    }
    init(start: UInt64, length: UInt32, owner: UInt64) {
        self.start = start
        self.length = length
        self.owner = owner
    }
    init(from reader: inout RecordReader) {
        start = reader.read()
        length = reader.read()
        owner = reader.read()
    }
    var validityProblem: String? { length == 0 ? "zero length" : nil }
    var description: String { "[\(start)+\(length) owner \(owner)]" }
}

/// The same extent, covering the keys start...start+length-1, so that overlap queries
/// find it by any block it covers.
struct Span: IndexRecord {
    var start: UInt64
    var length: UInt32
    var owner: UInt64

    var key: UInt64 { start }
    var lastKey: UInt64 { start + UInt64(length) - 1 }
    static var coversKeyInterval: Bool { true }
    static var encodedSize: Int { 20 }
    func encode(to writer: inout RecordWriter) {
        writer.write(start)
        writer.write(length)
        writer.write(owner)
    }
    init(start: UInt64, length: UInt32, owner: UInt64) {
        self.start = start
        self.length = length
        self.owner = owner
    }
    init(from reader: inout RecordReader) {
        start = reader.read()
        length = reader.read()
        owner = reader.read()
    }
    var validityProblem: String? { length == 0 ? "zero length" : nil }
}

/// A compound key: (file, offset), compared in that order.
struct Position: IndexKey, CustomStringConvertible {
    var file: UInt32
    var offset: UInt64

    static func < (a: Position, b: Position) -> Bool { (a.file, a.offset) < (b.file, b.offset) }
    static var encodedSize: Int { 12 }
    func encode(to writer: inout RecordWriter) {
        writer.write(file)
        writer.write(offset)
    }
    init(file: UInt32, offset: UInt64) {
        self.file = file
        self.offset = offset
    }
    init(from reader: inout RecordReader) {
        file = reader.read()
        offset = reader.read()
    }
    var description: String { "\(file):\(offset)" }
}

/// A record keyed by a compound key, with every kind of field the writer has.
struct Note: IndexRecord {
    var position: Position
    var title: String
    var weight: Double
    var ratio: Float
    var pinned: Bool
    var delta: Int16

    var key: Position { position }
    static var encodedSize: Int { 12 + 16 + 8 + 4 + 1 + 2 + 3 }
    func encode(to writer: inout RecordWriter) {
        position.encode(to: &writer)
        writer.write(title, length: 16)
        writer.write(weight)
        writer.write(ratio)
        writer.write(pinned)
        writer.write(delta)
        writer.writeZeros(3)
    }
    init(position: Position, title: String, weight: Double, ratio: Float, pinned: Bool, delta: Int16) {
        self.position = position
        self.title = title
        self.weight = weight
        self.ratio = ratio
        self.pinned = pinned
        self.delta = delta
    }
    init(from reader: inout RecordReader) {
        position = Position(from: &reader)
        title = reader.readString(length: 16)
        weight = reader.read()
        ratio = reader.read()
        pinned = reader.read()
        delta = reader.read()
        reader.skip(3)
    }
}

/// An index with tiny blocks (`leafMax` records, `nodeMax` keys), so a few hundred records
/// make a tree three or four levels deep.
func tinyIndex<R: IndexRecord>(_: R.Type, duplicateKeys: DuplicateKeys = .refused, leafMax: Int = 6, nodeMax: Int = 4,
                               maximumSize: Int = 64 << 20) throws -> RecordIndex<R> {
    try RecordIndex<R>(duplicateKeys: duplicateKeys, maximumSize: maximumSize, growthPolicy: .batchedShifts,
                       name: "index-test", recordLimits: BTreeRecordLimits(leafMax: leafMax, nodeMax: nodeMax))
}
