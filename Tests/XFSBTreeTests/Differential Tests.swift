import Testing
import XFSBTree

/// Operations per differential test; with the arguments below the suites run
/// 16 x 50,000 + 4 x 50,000 = 1,000,000 operations in total with the kernel's growth
/// policy, and 150,000 more with batched shifts. Stores with an even seed lend their
/// blocks (descents read nodes unheld, as on a memory target), the others do not.
let differentialOps = 50_000

@Suite("Differential: btree against a sorted array")
struct DifferentialTests {
    @Test("plain keys, tiny blocks (deep trees, constant splits and joins)",
          arguments: [(UInt64(1), 4, 4), (2, 4, 4), (3, 5, 3), (4, 6, 4), (5, 3, 3), (6, 4, 5), (7, 7, 7), (8, 3, 4)])
    func plainTiny(seed: UInt64, leafMax: Int, nodeMax: Int) throws {
        let store = TestStore<UInt64>(format: KVFormat.self, limits: BTreeRecordLimits(leafMax: leafMax, nodeMax: nodeMax), maxHeight: 24)
        store.lendsBlocks = seed % 2 == 0
        var d = try Differential<KVFormat, UInt64>(seed: seed, store: store, keySpace: 1500, maxSize: 600)
        try d.run(differentialOps, verifyEvery: 500)
    }

    @Test("overlapping extents, tiny blocks",
          arguments: [(UInt64(11), 4, 4), (12, 4, 4), (13, 5, 3), (14, 6, 4), (15, 3, 3), (16, 4, 5), (17, 7, 7), (18, 4, 3)])
    func overlappingTiny(seed: UInt64, leafMax: Int, nodeMax: Int) throws {
        let store = TestStore<UInt32>(format: ExtentFormat.self, limits: BTreeRecordLimits(leafMax: leafMax, nodeMax: nodeMax), maxHeight: 24)
        store.lendsBlocks = seed % 2 == 0
        var d = try Differential<ExtentFormat, UInt32>(seed: seed, store: store, blockSpace: 800, maxSize: 600)
        try d.run(differentialOps, verifyEvery: 500)
    }

    @Test("batched shifts, tiny blocks (plain and overlapping keys)", arguments: [(UInt64(51), 4, 4), (52, 6, 3), (53, 3, 5)])
    func batchedShiftsTiny(seed: UInt64, leafMax: Int, nodeMax: Int) throws {
        let plain = TestStore<UInt64>(format: KVFormat.self, limits: BTreeRecordLimits(leafMax: leafMax, nodeMax: nodeMax), maxHeight: 24)
        plain.growthPolicy = .batchedShifts
        plain.lendsBlocks = seed % 2 == 0
        var d = try Differential<KVFormat, UInt64>(seed: seed, store: plain, keySpace: 1500, maxSize: 600)
        try d.run(differentialOps / 2, verifyEvery: 500)
        let overlapping = TestStore<UInt32>(format: ExtentFormat.self, limits: BTreeRecordLimits(leafMax: leafMax, nodeMax: nodeMax), maxHeight: 24)
        overlapping.growthPolicy = .batchedShifts
        overlapping.lendsBlocks = seed % 2 == 0
        var e = try Differential<ExtentFormat, UInt32>(seed: seed, store: overlapping, blockSpace: 800, maxSize: 600)
        try e.run(differentialOps / 2, verifyEvery: 500)
    }

    @Test("plain keys, 4 KiB blocks", arguments: [UInt64(21), 22])
    func plain4K(seed: UInt64) throws {
        let store = TestStore<UInt64>(blockSize: 4096)
        store.lendsBlocks = seed % 2 == 0
        var d = try Differential<KVFormat, UInt64>(seed: seed, store: store, keySpace: 100_000, maxSize: 6000)
        try d.run(differentialOps, verifyEvery: 5000)
    }

    @Test("overlapping extents, 4 KiB blocks (short headers)", arguments: [UInt64(31), 32])
    func overlapping4K(seed: UInt64) throws {
        let store = TestStore<UInt32>(blockSize: 4096)
        store.lendsBlocks = seed % 2 == 0
        var d = try Differential<ExtentFormat, UInt32>(seed: seed, store: store, blockSpace: 50_000, maxSize: 6000)
        try d.run(differentialOps, verifyEvery: 5000)
    }

    /// Leaf searches start from a guess interpolated from the parent's keys
    /// (`ExtentFormat.interpolationPosition`); crowded keys make many guesses miss (one in
    /// six, counted once), so the fallback to the binary search answers often.
    @Test("overlapping extents crowded towards block 0, 4 KiB blocks (interpolated guesses miss)",
          arguments: [UInt64(33), 34])
    func overlappingSkewed4K(seed: UInt64) throws {
        let store = TestStore<UInt32>(blockSize: 4096)
        store.lendsBlocks = seed % 2 == 0
        var d = try Differential<ExtentFormat, UInt32>(seed: seed, store: store, blockSpace: 50_000, maxSize: 6000,
                                                       skewed: true)
        try d.run(differentialOps / 2, verifyEvery: 5000)
    }
}
