import CLibFuzzer
import XFSBuffer
import XFSFormat

/// SplitMix64: small, fast, and seeded from libFuzzer's seed so a run can be replayed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The structure-aware mutator: changes one field (sometimes two or three) of one metadata
/// structure of the input, with the structure's CRC recomputed three times in four.
///
/// Half the time it starts from the clean input, so most cases are one field away from the
/// clean image; otherwise it stacks on the corpus entry libFuzzer picked.
struct Mutator {
    let layout: Layout
    /// Region indices by kind, and the kinds present.
    let regionsByKind: [Region.Kind: [Int]]
    let kinds: [Region.Kind]
    /// Values worth trying in pointer-like fields: the AG block numbers of every metadata
    /// block, fsblock numbers of the same, and every inode number.
    let agBlocks: [UInt64]
    let fsBlocks: [UInt64]
    let inodes: [UInt64]

    init(layout: Layout) {
        self.layout = layout
        var byKind: [Region.Kind: [Int]] = [:]
        for (i, r) in layout.regions.enumerated() { byKind[r.kind, default: []].append(i) }
        regionsByKind = byKind
        kinds = Region.Kind.allCases.filter { byKind[$0] != nil }
        let g = layout.geometry
        var agBlocks: Set<UInt64> = [0, 1, UInt64(g.agBlocks) - 1, UInt64(g.agBlocks), UInt64(g.agflBlock),
                                     UInt64(g.agflBlock) + 1]
        var fsBlocks: Set<UInt64> = [0, g.dataBlocks - 1, g.dataBlocks, UInt64(g.agBlocks) << g.agBlockLog]
        var inodes: Set<UInt64> = []
        for r in layout.regions {
            let linear = r.imageOffset / UInt64(g.blockSize)
            let agno = UInt32(linear / UInt64(g.agBlocks)), agbno = UInt32(linear % UInt64(g.agBlocks))
            agBlocks.insert(UInt64(agbno))
            fsBlocks.insert(g.fsBlock(agno: agno, agbno: agbno))
            if r.kind == .inode || r.kind == .freeInode, let ino = UInt64(r.label.split(separator: " ").last ?? "") {
                inodes.insert(ino)
            }
        }
        self.agBlocks = agBlocks.sorted()
        self.fsBlocks = fsBlocks.sorted()
        self.inodes = inodes.sorted()
    }

    /// Mutates `data` (`size` bytes, room for `maxSize`) in place; returns the new size.
    func mutate(_ data: UnsafeMutablePointer<UInt8>, size: Int, maxSize: Int, seed: UInt32) -> Int {
        var rng = SplitMix(state: UInt64(seed) &* 0x2545_F491_4F6C_DD1D)
        let n = layout.inputSize
        guard maxSize >= n else { return LLVMFuzzerMutate(data, size, maxSize) }
        let buffer = UnsafeMutableBufferPointer(start: data, count: n)
        if size != n || Bool.random(using: &rng) {
            _ = buffer.initialize(from: layout.clean)
        }
        let changes = Int.random(in: 0 ..< 10, using: &rng) < 8 ? 1 : Int.random(in: 2 ... 3, using: &rng)
        for _ in 0 ..< changes {
            var kind = kinds.randomElement(using: &rng)!
            if kind == .freeInode || kind == .secondarySuperblock { kind = kinds.randomElement(using: &rng)! }
            let region = layout.regions[regionsByKind[kind]!.randomElement(using: &rng)!]
            let bytes = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[region.inputRange])
            let roll = Int.random(in: 0 ..< 100, using: &rng)
            if roll < 85 || region.fields.isEmpty {
                let field = region.fields.randomElement(using: &rng)!
                change(field, in: bytes, region: region, using: &rng)
            } else if roll < 93 {
                swapEntries(in: bytes, region: region, using: &rng)
            } else {
                // libFuzzer's own byte-level mutation, confined to this structure.
                let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: region.length)
                defer { scratch.deallocate() }
                scratch.initialize(from: bytes.bindMemory(to: UInt8.self).baseAddress!, count: region.length)
                let m = LLVMFuzzerMutate(scratch, region.length, region.length)
                bytes.copyMemory(from: UnsafeRawBufferPointer(start: scratch, count: min(m, region.length)))
            }
            if Int.random(in: 0 ..< 4, using: &rng) != 0 {
                CRC32C.update(bytes, crcFieldAt: region.crcOffset)
            }
        }
        return n
    }

    /// Gives `field` a new value (always a different one when the field is an integer).
    private func change(_ field: Field, in bytes: UnsafeMutableRawBufferPointer, region: Region,
                        using rng: inout SplitMix) {
        guard [1, 2, 4, 8].contains(field.size) else {
            // uuid, label, spare areas, unlinked buckets: one byte changed.
            let at = field.offset + Int.random(in: 0 ..< field.size, using: &rng)
            bytes[at] ^= UInt8.random(in: 1 ... 255, using: &rng)
            return
        }
        if field.name.hasSuffix("extent.l0") || field.name.hasSuffix("extent.l1"), Bool.random(using: &rng) {
            let start = field.name.hasSuffix("l0") ? field.offset : field.offset - 8
            changeExtent(at: start, in: bytes, using: &rng)
            return
        }
        let old = load(bytes, field.offset, field.size)
        let mask: UInt64 = field.size == 8 ? .max : (1 << UInt64(field.size * 8)) - 1
        var value = old
        var tries = 0
        while value == old && tries < 8 {
            tries += 1
            value = interesting(old: old, field: field, region: region, using: &rng) & mask
        }
        if value == old { value = old ^ 1 }
        store(value, bytes, field.offset, field.size)
    }

    /// A new value for an integer field: boundaries, small steps, single bits, random
    /// values, and the block and inode numbers of other metadata (so that pointers alias,
    /// loop and cross trees).
    private func interesting(old: UInt64, field: Field, region: Region, using rng: inout SplitMix) -> UInt64 {
        let g = layout.geometry
        switch Int.random(in: 0 ..< 12, using: &rng) {
        case 0: return 0
        case 1: return .max
        case 2: return old &+ UInt64(Int.random(in: 1 ... 16, using: &rng))
        case 3: return old &- UInt64(Int.random(in: 1 ... 16, using: &rng))
        case 4: return old ^ (1 << UInt64(Int.random(in: 0 ..< field.size * 8, using: &rng)))
        case 5: return UInt64.random(in: 0 ... .max, using: &rng)
        case 6: return UInt64.random(in: 0 ... 64, using: &rng)
        case 7: return agBlocks.randomElement(using: &rng)!
        case 8: return fsBlocks.randomElement(using: &rng)!
        case 9: return inodes.randomElement(using: &rng) ?? old
        case 10:
            // Another field of the same width in this structure (a sibling, a neighbour's key).
            let other = region.fields.filter { $0.size == field.size }.randomElement(using: &rng)!
            return (0 ..< other.size).reduce(0) { $0 << 8 | UInt64(layout.clean[region.inputOffset + other.offset + $1]) }
        default:
            return [UInt64(g.agBlocks), UInt64(g.agCount), UInt64(g.blockSize), g.dataBlocks, UInt64(g.inodeSize),
                    0x7FFF_FFFF, 0x8000_0000, 0xFFFF, 0x1_0000, UInt64(1) << 63].randomElement(using: &rng)!
        }
    }

    /// Changes one component of the packed extent record at `start` (§5.3): start offset,
    /// start block, length or the unwritten flag.
    private func changeExtent(at start: Int, in bytes: UnsafeMutableRawBufferPointer, using rng: inout SplitMix) {
        let l0 = load(bytes, start, 8), l1 = load(bytes, start + 8, 8)
        var flag = l0 >> 63
        var offset = (l0 & ~(1 << 63)) >> 9
        var block = (l0 & 0x1FF) << 43 | l1 >> 21
        var count = l1 & 0x1F_FFFF
        switch Int.random(in: 0 ..< 4, using: &rng) {
        case 0: flag ^= 1
        case 1: offset = [0, offset &+ 1, offset &- 1, UInt64.random(in: 0 ..< 1 << 54, using: &rng)].randomElement(using: &rng)!
        case 2: block = [fsBlocks.randomElement(using: &rng)!, block &+ 1, block &- 1,
                         UInt64.random(in: 0 ..< 1 << 52, using: &rng)].randomElement(using: &rng)!
        default: count = [0, 1, count &+ 1, count &- 1, 0x1F_FFFF].randomElement(using: &rng)!
        }
        offset &= (1 << 54) - 1
        block &= (1 << 52) - 1
        count &= 0x1F_FFFF
        store(flag << 63 | offset << 9 | block >> 43, bytes, start, 8)
        store((block & ((1 << 43) - 1)) << 21 | count, bytes, start + 8, 8)
    }

    /// Swaps two records or two key slots of a btree block, or two extents of an inode
    /// fork: order faults with every field plausible.
    private func swapEntries(in bytes: UnsafeMutableRawBufferPointer, region: Region, using rng: inout SplitMix) {
        // The first field of each entry marks where entries start.
        let markers: Set<String> = ["rec.startblock", "rec.startino", "rec.extent.l0", "key.startblock", "key.startino",
                                    "key.startoff", "key.low.startblock", "data extent.l0", "attr extent.l0"]
        var groups: [String: [Int]] = [:]
        for f in region.fields where markers.contains(f.name) { groups[f.name, default: []].append(f.offset) }
        guard let offsets = groups.values.filter({ $0.count >= 2 }).randomElement(using: &rng) else { return }
        let stride = offsets[1] - offsets[0]
        let a = offsets.randomElement(using: &rng)!, b = offsets.randomElement(using: &rng)!
        guard a != b else { return }
        for i in 0 ..< stride {
            let t = bytes[a + i]
            bytes[a + i] = bytes[b + i]
            bytes[b + i] = t
        }
    }
}

/// Big-endian integer access to a structure's bytes.
func load(_ bytes: UnsafeMutableRawBufferPointer, _ at: Int, _ size: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0 ..< size { v = v << 8 | UInt64(bytes[at + i]) }
    return v
}

func store(_ value: UInt64, _ bytes: UnsafeMutableRawBufferPointer, _ at: Int, _ size: Int) {
    for i in 0 ..< size { bytes[at + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (size - 1 - i))) }
}
