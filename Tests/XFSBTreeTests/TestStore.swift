import XFSBTree

/// An error of the heap test store.
enum TestStoreError: Error {
    /// A read of a block that is not allocated.
    case unallocated(UInt64)
    /// An injected read failure.
    case injected(UInt64)
}

/// A heap block store for tests: tiny configurable blocks, a free list, hold counting (so
/// tests can prove every hold is released) and fault injection.
final class TestStore<Pointer: BTreePointer>: BTreeBlockStore {
    typealias BlockHandle = Int

    let blockSize: Int
    let limits: BTreeRecordLimits?
    let maxHeight: Int
    let owner: UInt64 = 5
    let uuid = BTreeUUID(high: 0x0011_2233_4455_6677, low: 0x8899_aabb_ccdd_eeff)
    var root: Pointer = .null
    var height = 0
    /// Block memory by pointer; index 0 is never used (pointer 0 is invalid).
    var blocks: [UnsafeMutableRawPointer?] = [nil]
    var isFree: [Bool] = [true]
    var freeList: [Pointer] = []
    /// Holds not yet released.
    var holds = 0
    /// Blocks currently allocated.
    var liveBlocks = 0
    /// When set, allocation fails once this many blocks are live.
    var blockLimit: Int? = nil
    /// Reads of this pointer throw.
    var failingRead: Pointer? = nil
    /// The pointers `readAhead` was asked for, in order.
    var readAheads: [Pointer] = []
    /// markDirty calls, and the bytes they logged.
    var dirtyCalls = 0
    var dirtyBytes = 0
    /// How full blocks make room.
    var growthPolicy: BTreeGrowthPolicy = .kernel
    /// Whether descents may read nodes without holding them (`peekBlock`), as they do on a
    /// memory target. A write to a node the engine did not hold would find no handle and
    /// trap, so the differential tests prove the engine holds before it writes.
    var lendsBlocks = false

    /// A store with `blockSize`-byte blocks and the XFS limits for that size.
    init(blockSize: Int, maxHeight: Int = 12) {
        self.blockSize = blockSize
        self.limits = nil
        self.maxHeight = maxHeight
    }

    /// A store with exactly `limits`, its blocks just big enough for `Format`.
    init<Format: BTreeRecordFormat>(format: Format.Type, limits: BTreeRecordLimits, maxHeight: Int = 16) {
        let header = BTreeHeaderFormat.of(Pointer.self).size
        let slot = Format.isOverlapping ? 2 * Format.keySize : Format.keySize
        self.blockSize = max(
            header + limits.leafMax * Format.recordSize,
            header + limits.nodeMax * (slot + Pointer.bitWidth / 8))
        self.limits = limits
        self.maxHeight = maxHeight
    }

    deinit {
        for b in blocks { b?.deallocate() }
    }

    func setRoot(_ root: Pointer, height: Int) {
        self.root = root
        self.height = height
    }

    func recordLimits(suggested: BTreeRecordLimits) -> BTreeRecordLimits { limits ?? suggested }

    func diskAddress(of pointer: Pointer) -> UInt64 { UInt64(pointer) &* 8 &+ 1000 }

    func isValid(_ pointer: Pointer) -> Bool { pointer >= 1 && Int(pointer) < blocks.count }

    func peekBlock(_ pointer: Pointer) -> UnsafeMutableRawPointer? {
        let i = Int(pointer)
        guard lendsBlocks, i >= 1 && i < blocks.count && !isFree[i] else { return nil }
        return blocks[i]
    }

    func readAhead(_ pointer: Pointer) { readAheads.append(pointer) }

    func readBlock(_ pointer: Pointer) throws -> Int {
        if pointer == failingRead { throw TestStoreError.injected(UInt64(pointer)) }
        let i = Int(pointer)
        guard i >= 1 && i < blocks.count && !isFree[i] else { throw TestStoreError.unallocated(UInt64(pointer)) }
        holds += 1
        return i
    }

    func newBlock(_ pointer: Pointer) throws -> Int {
        let i = Int(pointer)
        precondition(i >= 1 && i < blocks.count && !isFree[i], "newBlock on unallocated \(pointer)")
        holds += 1
        return i
    }

    @inline(__always)
    func memory(of handle: Int) -> UnsafeMutableRawPointer { blocks[handle].unsafelyUnwrapped }

    func release(_ handle: Int) {
        holds -= 1
        precondition(holds >= 0, "more releases than holds")
    }

    func markDirty(_ handle: Int, range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= blockSize, "dirty range \(range) outside block")
        dirtyCalls &+= 1
        dirtyBytes &+= range.count
    }

    func allocateBlock() throws -> Pointer? {
        if let limit = blockLimit, liveBlocks >= limit { return nil }
        liveBlocks += 1
        if let p = freeList.popLast() {
            isFree[Int(p)] = false
            return p
        }
        let m = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 16)
        m.initializeMemory(as: UInt8.self, repeating: 0xA5, count: blockSize)
        blocks.append(m)
        isFree.append(false)
        return Pointer(blocks.count - 1)
    }

    func freeBlock(_ handle: Int, at pointer: Pointer) throws {
        let i = Int(pointer)
        precondition(!isFree[i], "double free of \(pointer)")
        blocks[i]!.initializeMemory(as: UInt8.self, repeating: 0xEE, count: blockSize)
        isFree[i] = true
        freeList.append(pointer)
        liveBlocks -= 1
    }

    /// The raw view of a block, for white-box tests that corrupt trees.
    func block(_ pointer: Pointer) -> BTreeBlock { BTreeBlock(blocks[Int(pointer)]!) }
}

// MARK: A plain (non-overlapping) format: 16-byte key/value records, 8-byte keys.

/// A key/value record.
struct KV: Equatable, Sendable, CustomStringConvertible {
    var key: UInt64
    var value: UInt64
    var description: String { "\(key)=\(value)" }
}

/// Unique 64-bit keys with a 64-bit payload.
enum KVFormat: BTreeRecordFormat {
    typealias Record = KV
    typealias Key = UInt64
    static let name = "kvbt"
    static let magic: UInt32 = 0x4B56_4254
    static let recordSize = 16
    static let keySize = 8
    static let isOverlapping = false

    static func loadRecord(from bytes: UnsafeRawPointer) -> KV {
        KV(key: UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self)),
           value: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }
    static func storeRecord(_ r: KV, to bytes: UnsafeMutableRawPointer) {
        bytes.storeBytes(of: r.key.bigEndian, as: UInt64.self)
        bytes.storeBytes(of: r.value.bigEndian, toByteOffset: 8, as: UInt64.self)
    }
    static func loadKey(from bytes: UnsafeRawPointer) -> UInt64 {
        UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
    }
    static func storeKey(_ k: UInt64, to bytes: UnsafeMutableRawPointer) {
        bytes.storeBytes(of: k.bigEndian, as: UInt64.self)
    }
    static func loadLowKey(fromRecord bytes: UnsafeRawPointer) -> UInt64 {
        UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self))
    }
    static func lowKey(of r: KV) -> UInt64 { r.key }
    static func isContiguous(_ high: UInt64, followedBy low: UInt64) -> Bool { low == high &+ 1 }
    static func check(_ r: KV) -> String? { r.value == .max ? "poisoned value" : nil }
}

// MARK: An rmap-like overlapping format: 24-byte interval records, 20-byte keys.

/// An interval record: blocks [start, start + length) owned by `owner` at `offset`.
struct Extent: Equatable, Sendable, CustomStringConvertible {
    var start: UInt32
    var length: UInt32
    var owner: UInt64
    var offset: UInt64
    var description: String { "[\(start)+\(length) o\(owner) @\(offset)]" }
}

/// (start, owner, offset), compared in that order.
struct ExtentKey: Comparable, Sendable, CustomStringConvertible {
    var start: UInt32
    var owner: UInt64
    var offset: UInt64
    static func < (a: ExtentKey, b: ExtentKey) -> Bool {
        if a.start != b.start { return a.start < b.start }
        if a.owner != b.owner { return a.owner < b.owner }
        return a.offset < b.offset
    }
    var description: String { "(\(start),\(owner),\(offset))" }
    static let min = ExtentKey(start: 0, owner: 0, offset: 0)
    static let max = ExtentKey(start: .max, owner: .max, offset: .max)
}

/// Overlapping intervals keyed like the rmapbt; high key = last block, same owner, last offset.
enum ExtentFormat: BTreeRecordFormat {
    typealias Record = Extent
    typealias Key = ExtentKey
    typealias CoverageKey = UInt32
    static let name = "extbt"
    static let magic: UInt32 = 0x5854_4233
    static let recordSize = 24
    static let keySize = 20
    static let isOverlapping = true

    static func loadRecord(from b: UnsafeRawPointer) -> Extent {
        Extent(start: UInt32(bigEndian: b.loadUnaligned(as: UInt32.self)),
               length: UInt32(bigEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt32.self)),
               owner: UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
               offset: UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
    }
    static func storeRecord(_ r: Extent, to b: UnsafeMutableRawPointer) {
        b.storeBytes(of: r.start.bigEndian, as: UInt32.self)
        b.storeBytes(of: r.length.bigEndian, toByteOffset: 4, as: UInt32.self)
        b.storeBytes(of: r.owner.bigEndian, toByteOffset: 8, as: UInt64.self)
        b.storeBytes(of: r.offset.bigEndian, toByteOffset: 16, as: UInt64.self)
    }
    static func loadKey(from b: UnsafeRawPointer) -> ExtentKey {
        ExtentKey(start: UInt32(bigEndian: b.loadUnaligned(as: UInt32.self)),
                  owner: UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 4, as: UInt64.self)),
                  offset: UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt64.self)))
    }
    static func storeKey(_ k: ExtentKey, to b: UnsafeMutableRawPointer) {
        b.storeBytes(of: k.start.bigEndian, as: UInt32.self)
        b.storeBytes(of: k.owner.bigEndian, toByteOffset: 4, as: UInt64.self)
        b.storeBytes(of: k.offset.bigEndian, toByteOffset: 12, as: UInt64.self)
    }
    static func loadLowKey(fromRecord b: UnsafeRawPointer) -> ExtentKey {
        ExtentKey(start: UInt32(bigEndian: b.loadUnaligned(as: UInt32.self)),
                  owner: UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                  offset: UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
    }
    static func lowKey(of r: Extent) -> ExtentKey { ExtentKey(start: r.start, owner: r.owner, offset: r.offset) }
    /// Leaf searches start from an interpolated guess, as the rmapbt's do (plain keys,
    /// `KVFormat`, keep the binary search).
    static func interpolationPosition(of key: ExtentKey) -> UInt64? { UInt64(key.start) }
    static func highKey(of r: Extent) -> ExtentKey {
        ExtentKey(start: r.start &+ r.length &- 1, owner: r.owner, offset: r.offset &+ UInt64(r.length) &- 1)
    }
    static func isContiguous(_ high: ExtentKey, followedBy low: ExtentKey) -> Bool { low.start == high.start &+ 1 }
    static func coverageKey(_ k: ExtentKey) -> UInt32 { k.start }
    static func check(_ r: Extent) -> String? {
        if r.length == 0 { return "zero length" }
        if UInt64(r.start) + UInt64(r.length) > UInt64(UInt32.max) { return "extent past the end" }
        return nil
    }
}
