import Testing
@testable import XFSInMemoryBTrees

/// Claims 8 bytes and writes 9.
private struct Overlong: IndexRecord {
    var value: UInt64
    var key: UInt64 { value }
    static var encodedSize: Int { 8 }
    func encode(to writer: inout RecordWriter) {
        writer.write(value)
        writer.write(UInt8(1))
    }
    init(value: UInt64) { self.value = value }
    init(from reader: inout RecordReader) { value = reader.read() }
}

/// Claims 8 bytes and reads 16.
private struct Overread: IndexRecord {
    var value: UInt64
    var key: UInt64 { value }
    static var encodedSize: Int { 8 }
    func encode(to writer: inout RecordWriter) { writer.write(value) }
    init(value: UInt64) { self.value = value }
    init(from reader: inout RecordReader) {
        value = reader.read()
        _ = reader.read(UInt64.self)
    }
}

/// Writes 4 of its 8 bytes; the rest must read back as zero.
private struct Short: IndexRecord {
    var value: UInt32
    var tail: UInt32 = 0
    var key: UInt32 { value }
    static var encodedSize: Int { 8 }
    func encode(to writer: inout RecordWriter) { writer.write(value) }
    init(value: UInt32) { self.value = value }
    init(from reader: inout RecordReader) {
        value = reader.read()
        tail = reader.read()
    }
}

@Suite("Record writer and reader")
struct RecordBytesTests {
    @Test("Integers are big-endian, and fields round-trip")
    func roundTrip() throws {
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 1)
        defer { bytes.deallocate() }
        var writer = RecordWriter(bytes, count: 64)
        writer.write(UInt32(0x0102_0304))
        writer.write(Int16(-2))
        writer.write("héllo", length: 8)
        writer.write(Double.pi)
        writer.write(true)
        writer.write(bytes: [9, 8, 7])
        let (offset, remaining) = (writer.offset, writer.remaining)
        #expect(offset == 4 + 2 + 8 + 8 + 1 + 3)
        #expect(remaining == 64 - offset)
        #expect((0..<4).map { bytes.load(fromByteOffset: $0, as: UInt8.self) } == [1, 2, 3, 4])

        var reader = RecordReader(bytes, count: 64)
        let word = reader.read(UInt32.self), short = reader.read(Int16.self)
        let text = reader.readString(length: 8), pi = reader.read(Double.self)
        let flag = reader.read(Bool.self), tail = reader.readBytes(3)
        #expect(word == 0x0102_0304)
        #expect(short == -2)
        #expect(text == "héllo")
        #expect(pi == .pi)
        #expect(flag)
        #expect(tail == [9, 8, 7])
    }

    @Test("Bytes a record leaves unwritten read back as zero")
    func zeroFilled() throws {
        let index = try RecordIndex<Short>()
        try index.insert(Short(value: 7))
        #expect(try index.record(forKey: 7)?.tail == 0)
    }

    @Test("Integer keys: contiguity and interpolation positions keep order")
    func integerKeys() {
        #expect(UInt32.isContiguous(4, followedBy: 5))
        #expect(!UInt32.isContiguous(4, followedBy: 6))
        #expect(UInt8.isContiguous(.max, followedBy: .max))
        #expect(!UInt8.isContiguous(100, followedBy: 102))
        #expect(Int8(-128).interpolationPosition! < Int8(0).interpolationPosition!)
        #expect(Int8(0).interpolationPosition! < Int8(127).interpolationPosition!)
        #expect(Int64.min.interpolationPosition == 0)
        #expect(UInt64.max.interpolationPosition == .max)
    }

    @Test("Writing or reading past a record's size traps; a record that fits does not")
    func boundsChecked() async {
        await #expect(processExitsWith: .failure) {
            let index = try RecordIndex<Overlong>()
            try index.insert(Overlong(value: 1))
        }
        await #expect(processExitsWith: .failure) {
            let index = try RecordIndex<Overread>()
            try index.insert(Overread(value: 1))
            _ = try index.record(forKey: 1)
        }
        await #expect(processExitsWith: .success) {
            let index = try RecordIndex<Short>()
            try index.insert(Short(value: 1))
            _ = try index.record(forKey: 1)
        }
    }
}
