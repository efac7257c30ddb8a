import Testing
import XFSBTree
import XFSFormat
import XFSTestSupport

/// Encodes then decodes records and keys of `F`, which must give back the same values.
func roundTrip<F: BTreeRecordFormat>(_: F.Type, _ records: [F.Record]) {
    var buffer = [UInt8](repeating: 0xA5, count: F.recordSize + 3)
    var keyBuffer = [UInt8](repeating: 0x5A, count: F.keySize + 3)
    for r in records {
        // Odd offsets: the formats must not assume alignment.
        let back = buffer.withUnsafeMutableBytes { raw -> F.Record in
            F.storeRecord(r, to: raw.baseAddress! + 3)
            return F.loadRecord(from: UnsafeRawPointer(raw.baseAddress! + 3))
        }
        #expect(back == r, "\(F.name) record \(r)")
        for key in [F.lowKey(of: r), F.highKey(of: r)] {
            let loaded = keyBuffer.withUnsafeMutableBytes { raw -> F.Key in
                F.storeKey(key, to: raw.baseAddress! + 1)
                return F.loadKey(from: UnsafeRawPointer(raw.baseAddress! + 1))
            }
            #expect(loaded == key, "\(F.name) key \(key)")
        }
    }
}

@Suite("Record formats")
struct RecordFormatTests {
    @Test func sizesAndMagics() {
        #expect(FreeSpaceByBlockFormat.magic == 0x4142_3342 && FreeSpaceByCountFormat.magic == 0x4142_3343)
        #expect(InodeBTreeFormat.magic == 0x4941_4233 && FreeInodeBTreeFormat.magic == 0x4649_4233)
        #expect(RefcountFormat.magic == 0x5233_4643 && RmapFormat.magic == 0x524D_4233 && BmbtFormat.magic == 0x424D_4133)
        #expect(RmapFormat.recordSize == 24 && RmapFormat.keySize == 20 && RmapFormat.isOverlapping)
        #expect(RefcountFormat.recordSize == 12 && InodeBTreeFormat.recordSize == 16 && BmbtFormat.keySize == 8)
    }

    @Test func randomRoundTrips() {
        var rng = SeededRandom(seed: 42)
        func u32() -> UInt32 { UInt32.random(in: 0 ... .max, using: &rng) }
        func u64() -> UInt64 { UInt64.random(in: 0 ... .max, using: &rng) }
        func bit() -> Bool { Bool.random(using: &rng) }
        let n = 500
        roundTrip(FreeSpaceByBlockFormat.self, (0 ..< n).map { _ in FreeSpaceRecord(startBlock: u32(), blockCount: u32()) })
        roundTrip(FreeSpaceByCountFormat.self, (0 ..< n).map { _ in FreeSpaceRecord(startBlock: u32(), blockCount: u32()) })
        let sparse = (0 ..< n).map { _ in
            InodeBTreeRecord(startIno: u32(), holeMask: UInt16(truncatingIfNeeded: u32()), count: UInt8(truncatingIfNeeded: u32()),
                             freeCount: u32() & 0xFF, free: u64())
        }
        roundTrip(SparseInodeBTreeFormat.self, sparse)
        roundTrip(SparseFreeInodeBTreeFormat.self, sparse)
        let full = (0 ..< n).map { _ in InodeBTreeRecord(startIno: u32(), freeCount: u32(), free: u64()) }
        roundTrip(InodeBTreeFormat.self, full)
        roundTrip(FreeInodeBTreeFormat.self, full)
        roundTrip(RefcountFormat.self, (0 ..< n).map { _ in
            RefcountRecord(startBlock: u32() >> 1, blockCount: u32(), refCount: u32(), domain: bit() ? .cow : .shared)
        })
        roundTrip(RmapFormat.self, (0 ..< n).map { _ in
            RmapRecord(startBlock: u32(), blockCount: u32(), owner: bit() ? u64() : UInt64(bitPattern: -Int64.random(in: 1 ... 10, using: &rng)),
                       offset: u64() & ((1 << 61) - 1), isAttrFork: bit(), isBmbtBlock: bit(), isUnwritten: bit())
        })
        roundTrip(BmbtFormat.self, (0 ..< n).map { _ in
            FileExtent(startOffset: u64() >> 10, startBlock: u64() >> 12, blockCount: u32() >> 11, isUnwritten: bit())
        })
    }

    @Test("packed extents: the bit layout of §5.3")
    func packedExtent() {
        let e = FileExtent(startOffset: 0x2A, startBlock: (1 << 51) | 0x123, blockCount: 0x1F_FFFF, isUnwritten: true)
        let (l0, l1) = e.pack()
        #expect(l0 == (UInt64(1) << 63 | UInt64(0x2A) << 9 | (UInt64(1) << 51) >> 43))
        #expect(l1 == (0x123 << 21) | 0x1F_FFFF)
        #expect(FileExtent(l0: l0, l1: l1) == e)
        #expect(FileExtent(startOffset: 0, startBlock: 5, blockCount: 0).problem != nil)
        #expect(FileExtent(startOffset: FileExtent.maxStartOffset, startBlock: 5, blockCount: 2).problem != nil)
    }

    @Test("rmap key order: special owners after inodes; data < bmbt(data) < attr < bmbt(attr)")
    func rmapKeyOrder() {
        func key(_ r: RmapRecord) -> RmapKey { RmapFormat.lowKey(of: r) }
        let inodeOwned = RmapRecord(startBlock: 10, blockCount: 1, owner: 133, offset: 5)
        let special = RmapRecord(startBlock: 10, blockCount: 1, owner: RmapOwner.inodes)
        #expect(key(inodeOwned) < key(special))
        #expect(key(RmapRecord(startBlock: 9, blockCount: 1, owner: RmapOwner.fs)) < key(inodeOwned))
        let data = RmapRecord(startBlock: 10, blockCount: 1, owner: 133, offset: 900)
        let bmbtData = RmapRecord(startBlock: 10, blockCount: 1, owner: 133, isBmbtBlock: true)
        let attr = RmapRecord(startBlock: 10, blockCount: 1, owner: 133, offset: 0, isAttrFork: true)
        let bmbtAttr = RmapRecord(startBlock: 10, blockCount: 1, owner: 133, isAttrFork: true, isBmbtBlock: true)
        #expect([bmbtAttr, attr, data, bmbtData].map(key).sorted() == [data, bmbtData, attr, bmbtAttr].map(key))
        // UNWRITTEN is not part of a key.
        var unwritten = data
        unwritten.isUnwritten = true
        #expect(key(unwritten) == key(data))
        #expect(!key(unwritten).hasUnwrittenBit)
    }

    @Test("rmap high keys advance the offset only for file mappings")
    func rmapHighKeys() {
        let file = RmapRecord(startBlock: 100, blockCount: 8, owner: 200, offset: 16, isUnwritten: true)
        #expect(RmapFormat.highKey(of: file) == RmapKey(startBlock: 107, owner: 200, packedOffset: 23))
        let attr = RmapRecord(startBlock: 100, blockCount: 8, owner: 200, offset: 16, isAttrFork: true)
        #expect(RmapFormat.highKey(of: attr) == RmapKey(startBlock: 107, owner: 200, packedOffset: RmapRecord.attrForkBit | 23))
        let bmbt = RmapRecord(startBlock: 100, blockCount: 1, owner: 200, isBmbtBlock: true)
        #expect(RmapFormat.highKey(of: bmbt) == RmapFormat.lowKey(of: bmbt))
        let log = RmapRecord(startBlock: 7, blockCount: 16384, owner: RmapOwner.log)
        #expect(RmapFormat.highKey(of: log) == RmapKey(startBlock: 16390, owner: RmapOwner.log, packedOffset: 0))
        #expect(RmapFormat.isContiguous(RmapFormat.highKey(of: file), followedBy: RmapKey(startBlock: 108, owner: 1, packedOffset: 0)))
        #expect(!RmapFormat.isContiguous(RmapFormat.highKey(of: file), followedBy: RmapKey(startBlock: 109, owner: 200, packedOffset: 24)))
        #expect(!RmapFormat.isContiguous(RmapKey(startBlock: .max, owner: 0, packedOffset: 0), followedBy: RmapKey(startBlock: 0, owner: 0, packedOffset: 0)))
    }

    @Test("rmap record checks")
    func rmapChecks() {
        #expect(RmapFormat.check(RmapRecord(startBlock: 0, blockCount: 1, owner: RmapOwner.fs)) == nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 0, blockCount: 0, owner: RmapOwner.fs)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: .max, blockCount: 2, owner: 5)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: RmapOwner.fs, offset: 3)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: RmapOwner.ag, isAttrFork: true)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: RmapOwner.min)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: RmapOwner.unknown)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: RmapOwner.cow)) == nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: 131, offset: 1 << 54)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: 131, offset: 4, isBmbtBlock: true)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: 131, isAttrFork: true, isUnwritten: true)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: 131, isBmbtBlock: true, isUnwritten: true)) != nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 1, owner: 131, offset: 7, isUnwritten: true)) == nil)
        #expect(RmapFormat.check(RmapRecord(startBlock: 1, blockCount: 4, owner: 131, offset: RmapRecord.offsetMask - 1)) != nil)
        #expect(RmapOwner.signedValue(RmapOwner.fs) == -3 && RmapOwner.signedValue(RmapOwner.cow) == -9)
        #expect(RmapOwner.name(RmapOwner.inobt) == "INOBT" && RmapOwner.name(4242) == "4242")
    }

    @Test("refcount: CoW records sort after shared ones; checks")
    func refcount() {
        let shared = RefcountRecord(startBlock: 0x7FFF_0000, blockCount: 1, refCount: 2)
        let cow = RefcountRecord(startBlock: 3, blockCount: 1, refCount: 1, domain: .cow)
        #expect(RefcountFormat.lowKey(of: shared) < RefcountFormat.lowKey(of: cow))
        #expect(RefcountFormat.lowKey(of: cow).startBlock == 3 && RefcountFormat.lowKey(of: cow).domain == .cow)
        #expect(RefcountFormat.check(shared) == nil && RefcountFormat.check(cow) == nil)
        #expect(RefcountFormat.check(RefcountRecord(startBlock: 3, blockCount: 1, refCount: 1)) != nil)
        #expect(RefcountFormat.check(RefcountRecord(startBlock: 3, blockCount: 1, refCount: 2, domain: .cow)) != nil)
        #expect(RefcountFormat.check(RefcountRecord(startBlock: 0x7FFF_FFFF, blockCount: 2, refCount: 2)) != nil)
    }

    @Test("cntbt orders by (blockcount, startblock); bnobt by startblock")
    func freeSpaceOrder() {
        let a = FreeSpaceRecord(startBlock: 100, blockCount: 1)
        let b = FreeSpaceRecord(startBlock: 5, blockCount: 9)
        #expect(FreeSpaceByCountFormat.lowKey(of: a) < FreeSpaceByCountFormat.lowKey(of: b))
        #expect(FreeSpaceByBlockFormat.lowKey(of: b) < FreeSpaceByBlockFormat.lowKey(of: a))
        #expect(FreeSpaceByBlockFormat.check(FreeSpaceRecord(startBlock: 1, blockCount: 0)) != nil)
    }

    @Test("inobt records: the holemask example of §4 and the checks")
    func inodeRecords() {
        let sparse = InodeBTreeRecord(startIno: 128, holeMask: 0xFF00, count: 32, freeCount: 0, free: 0xFFFF_FFFF_0000_0000)
        #expect(SparseInodeBTreeFormat.check(sparse) == nil)
        #expect(sparse.holeSlots == 0xFFFF_FFFF_0000_0000)
        #expect(sparse.allocatedAGInodes == Array(128 ..< 160))
        var bad = sparse
        bad.count = 64
        #expect(SparseInodeBTreeFormat.check(bad) != nil)
        bad = sparse
        bad.free = 0
        #expect(SparseInodeBTreeFormat.check(bad) != nil) // holes not marked free
        bad = sparse
        bad.freeCount = 1
        #expect(SparseInodeBTreeFormat.check(bad) != nil)
        let full = InodeBTreeRecord(startIno: 64, freeCount: 2, free: 0b101)
        #expect(InodeBTreeFormat.check(full) == nil)
        #expect(full.allocatedAGInodes.count == 62 && !full.allocatedAGInodes.contains(64) && !full.allocatedAGInodes.contains(66))
        #expect(InodeBTreeFormat.check(InodeBTreeRecord(startIno: 65, freeCount: 0, free: 0)) != nil)
        // The non-sparse form reads freecount as a 32-bit field.
        var bytes: [UInt8] = [0, 0, 0, 64, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0]
        let r = bytes.withUnsafeBytes { InodeBTreeFormat.loadRecord(from: $0.baseAddress!) }
        #expect(r.freeCount == 0x102 && r.holeMask == 0 && r.count == 64)
        bytes.withUnsafeMutableBytes { SparseInodeBTreeFormat.storeRecord(sparse, to: $0.baseAddress!) }
        #expect(bytes[4 ..< 8] == [0xFF, 0x00, 32, 0])
    }
}
