import XFSBuffer

/// The bytes of one metadata sector, changed field by field (big-endian, bounds-checked by
/// precondition: the offsets are the format's, never the input's) and sealed with its
/// CRC32c. A rebuild reads the AGF, AGFL and superblock sectors as they are and changes only
/// the fields it recomputes, so every other field (LSNs, counters it does not own, padding)
/// stays exactly as the kernel wrote it.
public struct SectorEdit: Sendable, Equatable {
    /// The sector's bytes.
    public private(set) var bytes: [UInt8]

    /// An edit of `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Stores `value` big-endian at `offset`.
    public mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        let size = T.bitWidth / 8
        precondition(offset >= 0 && offset + size <= bytes.count, "field at \(offset) outside a \(bytes.count)-byte sector")
        for i in 0..<size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> ((size - 1 - i) * 8)) }
    }

    /// The big-endian value at `offset`.
    public func get<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        let size = T.bitWidth / 8
        precondition(offset >= 0 && offset + size <= bytes.count, "field at \(offset) outside a \(bytes.count)-byte sector")
        var value: T = 0
        for i in 0..<size { value = value << 8 | T(bytes[offset + i]) }
        return value
    }

    /// Stamps the CRC32c of the whole sector into the field at `crcOffset`.
    public mutating func sealCRC(at crcOffset: Int) {
        bytes.withUnsafeMutableBytes { CRC32C.update($0, crcFieldAt: crcOffset) }
    }
}

extension AGF {
    /// The fields a rebuild of an AG's free-space and rmap btrees and its free list sets.
    public struct RebuiltFields: Sendable, Equatable {
        /// The new bnobt's root block.
        public var bnoRoot: UInt32
        /// The new bnobt's height.
        public var bnoLevel: UInt32
        /// The new cntbt's root block.
        public var cntRoot: UInt32
        /// The new cntbt's height.
        public var cntLevel: UInt32
        /// The new rmapbt's root block.
        public var rmapRoot: UInt32
        /// The new rmapbt's height.
        public var rmapLevel: UInt32
        /// The new free list's first slot.
        public var flFirst: UInt32
        /// The new free list's last slot.
        public var flLast: UInt32
        /// Blocks on the new free list.
        public var flCount: UInt32
        /// Free blocks in the AG, free list excluded.
        public var freeBlocks: UInt32
        /// The longest free extent.
        public var longest: UInt32
        /// Non-root blocks of the bnobt, cntbt and rmapbt.
        public var btreeBlocks: UInt32
        /// rmapbt blocks, root included.
        public var rmapBlocks: UInt32

        /// The fields, each named.
        public init(bnoRoot: UInt32, bnoLevel: UInt32, cntRoot: UInt32, cntLevel: UInt32, rmapRoot: UInt32, rmapLevel: UInt32,
                    flFirst: UInt32, flLast: UInt32, flCount: UInt32, freeBlocks: UInt32, longest: UInt32,
                    btreeBlocks: UInt32, rmapBlocks: UInt32) {
            self.bnoRoot = bnoRoot; self.bnoLevel = bnoLevel
            self.cntRoot = cntRoot; self.cntLevel = cntLevel
            self.rmapRoot = rmapRoot; self.rmapLevel = rmapLevel
            self.flFirst = flFirst; self.flLast = flLast; self.flCount = flCount
            self.freeBlocks = freeBlocks; self.longest = longest
            self.btreeBlocks = btreeBlocks; self.rmapBlocks = rmapBlocks
        }
    }

    /// `sector` (an AGF as read) with `fields` set and its CRC sealed.
    public static func edited(_ sector: [UInt8], _ fields: RebuiltFields) -> [UInt8] {
        var edit = SectorEdit(sector)
        edit.set(fields.bnoRoot, at: 16); edit.set(fields.cntRoot, at: 20); edit.set(fields.rmapRoot, at: 24)
        edit.set(fields.bnoLevel, at: 28); edit.set(fields.cntLevel, at: 32); edit.set(fields.rmapLevel, at: 36)
        edit.set(fields.flFirst, at: 40); edit.set(fields.flLast, at: 44); edit.set(fields.flCount, at: 48)
        edit.set(fields.freeBlocks, at: 52); edit.set(fields.longest, at: 56); edit.set(fields.btreeBlocks, at: 60)
        edit.set(fields.rmapBlocks, at: 80)
        edit.sealCRC(at: crcOffset)
        return edit.bytes
    }
}

extension AGFL {
    /// `sector` (an AGFL as read) holding `blocks` in slots 0 ... n−1 and NULLAGBLOCK in every
    /// other slot (`agflSize` slots), its CRC sealed.
    public static func edited(_ sector: [UInt8], blocks: [UInt32], agflSize: UInt32) -> [UInt8] {
        precondition(blocks.count <= Int(agflSize), "\(blocks.count) blocks do not fit an AGFL of \(agflSize) slots")
        var edit = SectorEdit(sector)
        for slot in 0..<Int(agflSize) {
            edit.set(slot < blocks.count ? blocks[slot] : Geometry.nullAGBlock, at: headerSize + 4 * slot)
        }
        edit.sealCRC(at: crcOffset)
        return edit.bytes
    }
}

extension Superblock {
    /// Byte offset of `sb_fdblocks`.
    public static let freeDataBlocksOffset = 144
    /// Byte offset of `sb_features_incompat`.
    public static let featuresIncompatOffset = 216

    /// `sector` (a superblock as read) with `sb_fdblocks` set to `freeDataBlocks`, the
    /// NEEDSREPAIR incompat flag set or cleared, and its CRC sealed.
    public static func edited(_ sector: [UInt8], freeDataBlocks: UInt64, needsRepair: Bool) -> [UInt8] {
        var edit = SectorEdit(sector)
        edit.set(freeDataBlocks, at: freeDataBlocksOffset)
        var incompat = edit.get(UInt32.self, at: featuresIncompatOffset)
        incompat = needsRepair ? incompat | Incompat.needsRepair : incompat & ~Incompat.needsRepair
        edit.set(incompat, at: featuresIncompatOffset)
        edit.sealCRC(at: crcOffset)
        return edit.bytes
    }
}
