/// The XFS superblock (sector 0 of AG 0, with a copy at the start of every AG), every field
/// of the v5 layout decoded.
///
/// Use ``load(from:agno:)`` to decode *and* verify a sector. ``decode(_:)`` only decodes (it
/// needs 264 bytes and checks nothing), for tools that want to look at a broken superblock.
public struct Superblock: Sendable, Equatable {
    /// "XFSB".
    public static let magic: UInt32 = 0x5846_5342
    /// Size of the on-disk structure; the rest of the sector is zero.
    public static let structSize = 264
    /// Offset of the little-endian CRC32c, which covers the whole sector.
    public static let crcOffset = 224

    /// `sb_magicnum`: "XFSB".
    public var magicnum: UInt32
    /// `sb_blocksize`: bytes per filesystem block.
    public var blockSize: UInt32
    /// `sb_dblocks`: blocks of the data device.
    public var dataBlocks: UInt64
    /// `sb_rblocks`: blocks of the realtime device.
    public var rtBlocks: UInt64
    /// `sb_rextents`: extents of the realtime device.
    public var rtExtents: UInt64
    /// `sb_uuid`: the filesystem uuid.
    public var uuid: FSUUID
    /// Internal log start as an fsblock (agblklog encoding); 0 means an external log.
    public var logStart: UInt64
    /// `sb_rootino`: the root directory's inode.
    public var rootIno: UInt64
    /// `sb_rbmino`: the realtime bitmap inode.
    public var rbmIno: UInt64
    /// `sb_rsumino`: the realtime summary inode.
    public var rsumIno: UInt64
    /// `sb_rextsize`: blocks per realtime extent.
    public var rtExtSize: UInt32
    /// `sb_agblocks`: blocks per AG (the last AG may be shorter).
    public var agBlocks: UInt32
    /// `sb_agcount`: the number of AGs.
    public var agCount: UInt32
    /// `sb_rbmblocks`: blocks of the realtime bitmap.
    public var rbmBlocks: UInt32
    /// `sb_logblocks`: blocks of the log.
    public var logBlocks: UInt32
    /// `sb_versionnum`: the version number and its feature bits.
    public var versionNum: UInt16
    /// `sb_sectsize`: bytes per sector.
    public var sectorSize: UInt16
    /// `sb_inodesize`: bytes per inode.
    public var inodeSize: UInt16
    /// `sb_inopblock`: inodes per block.
    public var inodesPerBlock: UInt16
    /// The 12-byte label.
    public var fname: [UInt8]
    /// `sb_blocklog`: log2 of the block size.
    public var blockLog: UInt8
    /// `sb_sectlog`: log2 of the sector size.
    public var sectorLog: UInt8
    /// `sb_inodelog`: log2 of the inode size.
    public var inodeLog: UInt8
    /// `sb_inopblog`: log2 of inodes per block.
    public var inodesPerBlockLog: UInt8
    /// `sb_agblklog`: log2 of `agBlocks`, rounded up.
    public var agBlockLog: UInt8
    /// `sb_rextslog`: log2 of realtime extents.
    public var rtExtentsLog: UInt8
    /// `sb_inprogress`: nonzero while mkfs is running.
    public var inProgress: UInt8
    /// `sb_imax_pct`: the most space inodes may take, in percent.
    public var imaxPct: UInt8
    /// `sb_icount`: allocated inodes.
    public var icount: UInt64
    /// `sb_ifree`: free inodes.
    public var ifree: UInt64
    /// `sb_fdblocks`: free data blocks.
    public var freeDataBlocks: UInt64
    /// `sb_frextents`: free realtime extents.
    public var freeRtExtents: UInt64
    /// `sb_uquotino`: the user quota inode.
    public var uquotIno: UInt64
    /// `sb_gquotino`: the group quota inode.
    public var gquotIno: UInt64
    /// `sb_qflags`: quota flags.
    public var qflags: UInt16
    /// `sb_flags`: miscellaneous flags.
    public var flags: UInt8
    /// `sb_shared_vn`: shared version number (unused).
    public var sharedVN: UInt8
    /// `sb_inoalignmt`: inode chunk alignment, in blocks.
    public var inodeAlignment: UInt32
    /// `sb_unit`: the stripe unit, in blocks.
    public var stripeUnit: UInt32
    /// `sb_width`: the stripe width, in blocks.
    public var stripeWidth: UInt32
    /// `sb_dirblklog`: log2 of directory blocks per filesystem block.
    public var dirBlockLog: UInt8
    /// `sb_logsectlog`: log2 of the log's sector size.
    public var logSectorLog: UInt8
    /// `sb_logsectsize`: bytes per log sector.
    public var logSectorSize: UInt16
    /// `sb_logsunit`: the log stripe unit, in bytes.
    public var logStripeUnit: UInt32
    /// `sb_features2`: more version feature bits.
    public var features2: UInt32
    /// `sb_bad_features2`: a copy of `features2` (an old layout bug wrote it there).
    public var badFeatures2: UInt32
    /// `sb_features_compat`: compatible feature bits.
    public var featuresCompat: UInt32
    /// `sb_features_ro_compat`: read-only-compatible feature bits (`ROCompat`).
    public var featuresROCompat: UInt32
    /// `sb_features_incompat`: incompatible feature bits (`Incompat`).
    public var featuresIncompat: UInt32
    /// `sb_features_log_incompat`: log-incompatible feature bits.
    public var featuresLogIncompat: UInt32
    /// The stored CRC value (read little-endian). xfs_db prints `crc.byteSwapped`.
    public var crc: UInt32
    /// `sb_spino_align`: sparse inode chunk alignment, in blocks.
    public var sparseInodeAlignment: UInt32
    /// `sb_pquotino`: the project quota inode.
    public var pquotIno: UInt64
    /// `sb_lsn`: the log sequence number of the last write.
    public var lsn: UInt64
    /// `sb_meta_uuid`: the uuid metadata carries when `metaUUID` is set.
    public var metaUUIDField: FSUUID

    /// Decodes the 264-byte superblock structure without checking anything.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(XFSFormatError) -> Superblock {
        let r = ByteReader(bytes, location: "superblock")
        try r.require(structSize, at: 0, "superblock structure")
        return Superblock(
            magicnum: try r.u32(at: 0), blockSize: try r.u32(at: 4), dataBlocks: try r.u64(at: 8),
            rtBlocks: try r.u64(at: 16), rtExtents: try r.u64(at: 24), uuid: try r.uuid(at: 32),
            logStart: try r.u64(at: 48), rootIno: try r.u64(at: 56), rbmIno: try r.u64(at: 64),
            rsumIno: try r.u64(at: 72), rtExtSize: try r.u32(at: 80), agBlocks: try r.u32(at: 84),
            agCount: try r.u32(at: 88), rbmBlocks: try r.u32(at: 92), logBlocks: try r.u32(at: 96),
            versionNum: try r.u16(at: 100), sectorSize: try r.u16(at: 102), inodeSize: try r.u16(at: 104),
            inodesPerBlock: try r.u16(at: 106), fname: try r.byteArray(at: 108, count: 12),
            blockLog: try r.u8(at: 120), sectorLog: try r.u8(at: 121), inodeLog: try r.u8(at: 122),
            inodesPerBlockLog: try r.u8(at: 123), agBlockLog: try r.u8(at: 124), rtExtentsLog: try r.u8(at: 125),
            inProgress: try r.u8(at: 126), imaxPct: try r.u8(at: 127), icount: try r.u64(at: 128),
            ifree: try r.u64(at: 136), freeDataBlocks: try r.u64(at: 144), freeRtExtents: try r.u64(at: 152),
            uquotIno: try r.u64(at: 160), gquotIno: try r.u64(at: 168), qflags: try r.u16(at: 176),
            flags: try r.u8(at: 178), sharedVN: try r.u8(at: 179), inodeAlignment: try r.u32(at: 180),
            stripeUnit: try r.u32(at: 184), stripeWidth: try r.u32(at: 188), dirBlockLog: try r.u8(at: 192),
            logSectorLog: try r.u8(at: 193), logSectorSize: try r.u16(at: 194), logStripeUnit: try r.u32(at: 196),
            features2: try r.u32(at: 200), badFeatures2: try r.u32(at: 204), featuresCompat: try r.u32(at: 208),
            featuresROCompat: try r.u32(at: 212), featuresIncompat: try r.u32(at: 216),
            featuresLogIncompat: try r.u32(at: 220), crc: try r.u32LittleEndian(at: 224),
            sparseInodeAlignment: try r.u32(at: 228), pquotIno: try r.u64(at: 232), lsn: try r.u64(at: 240),
            metaUUIDField: try r.uuid(at: 248))
    }

    /// Decodes and fully verifies a superblock sector: magic, version 5, sector size, CRC over
    /// the sector, geometry (``validateGeometry()``) and features (``validateFeatures(isPrimary:)``).
    /// Secondary copies (agno > 0) keep stale counters and `inprogress` = 1, which is accepted.
    ///
    /// - Parameters:
    ///   - sector: at least `sb_sectsize` bytes starting at the superblock.
    ///   - agno: which AG's copy this is, for error messages (0 = the primary).
    public static func load(from sector: UnsafeRawBufferPointer, agno: UInt32 = 0) throws(XFSFormatError) -> Superblock {
        let location = agno == 0 ? "superblock" : "AG \(agno) superblock"
        var sb: Superblock
        do throws(XFSFormatError) { sb = try decode(sector) } catch { throw XFSFormatError(error.kind, location, error.detail) }
        guard sb.magicnum == magic else {
            throw XFSFormatError(.badMagic, location, "bad magic 0x\(String(sb.magicnum, radix: 16)) (expected 0x58465342 \"XFSB\")")
        }
        let version = sb.versionNum & 0xF
        if version == 4 {
            throw XFSFormatError(.badVersion, location, "version 4 filesystems are not supported")
        }
        guard version == 5 else {
            throw XFSFormatError(.badVersion, location, "unknown superblock version \(version)")
        }
        let sect = Int(sb.sectorSize)
        guard sect >= 512, sect <= 32768, sect & (sect - 1) == 0 else {
            throw XFSFormatError(.corrupt, location, "sectsize \(sect) is not a power of two in 512...32768")
        }
        let r = ByteReader(sector, location: location)
        guard try r.crcMatches(span: sect, crcAt: crcOffset, "superblock sector") else {
            throw XFSFormatError(.badCRC, location, "bad CRC")
        }
        do throws(XFSFormatError) {
            try sb.validateGeometry()
            try sb.validateFeatures(isPrimary: agno == 0)
        } catch { throw XFSFormatError(error.kind, location, error.detail) }
        return sb
    }

    // MARK: Feature bits

    /// features_ro_compat bits.
    public enum ROCompat {
        /// The free inode btree.
        public static let finobt: UInt32 = 0x1
        /// The reverse-mapping btree.
        public static let rmapbt: UInt32 = 0x2
        /// Shared extents and the refcount btree.
        public static let reflink: UInt32 = 0x4
        /// Inode btree block counts in the AGI.
        public static let inobtCounts: UInt32 = 0x8
        /// Every bit this code knows.
        public static let known: UInt32 = 0xF
    }

    /// features_incompat bits.
    public enum Incompat {
        /// File types in directory entries.
        public static let ftype: UInt32 = 0x1
        /// Sparse inode chunks.
        public static let sparseInodes: UInt32 = 0x2
        /// Metadata carries `sb_meta_uuid` rather than `sb_uuid`.
        public static let metaUUID: UInt32 = 0x4
        /// Timestamps beyond 2038.
        public static let bigTime: UInt32 = 0x8
        /// The filesystem must be repaired before it is mounted.
        public static let needsRepair: UInt32 = 0x10
        /// 64-bit extent counters in inodes.
        public static let nrext64: UInt32 = 0x20
        /// File range exchange (log items).
        public static let exchangeRange: UInt32 = 0x40
        /// Parent pointers.
        public static let parent: UInt32 = 0x80
        /// Every bit this code knows.
        public static let known: UInt32 = 0xFF
    }

    /// features2 bit that marks a v5 (CRC) filesystem.
    public static let features2CRC: UInt32 = 0x100

    /// Whether the filesystem has a reverse-mapping btree per AG.
    public var hasRmapBT: Bool { featuresROCompat & ROCompat.rmapbt != 0 }
    /// Whether the filesystem has reflink (a refcount btree per AG).
    public var hasReflink: Bool { featuresROCompat & ROCompat.reflink != 0 }
    /// Whether the filesystem has a free-inode btree per AG.
    public var hasFinobt: Bool { featuresROCompat & ROCompat.finobt != 0 }
    /// Whether the AGI records inobt/finobt block counts.
    public var hasInobtCounts: Bool { featuresROCompat & ROCompat.inobtCounts != 0 }
    /// Whether inode chunks may be sparse (inobt records use the holemask form).
    public var hasSparseInodes: Bool { featuresIncompat & Incompat.sparseInodes != 0 }
    /// Whether inodes may use 64-bit extent counters (per inode: flags2 NREXT64).
    public var hasNrext64: Bool { featuresIncompat & Incompat.nrext64 != 0 }
    /// Whether the log has a device of its own (sb_logstart is 0).
    public var hasExternalLog: Bool { logStart == 0 }
    /// Whether metadata is stamped with `meta_uuid` rather than `uuid`.
    public var hasMetaUUID: Bool { featuresIncompat & Incompat.metaUUID != 0 }
    /// Whether timestamps use the bigtime encoding.
    public var hasBigTime: Bool { featuresIncompat & Incompat.bigTime != 0 }
    /// The UUID every metadata block, AG header and inode must carry.
    public var metaUUID: FSUUID { hasMetaUUID ? metaUUIDField : uuid }

    /// Throws `.unsupported` for features this code refuses to work on: unknown incompat or
    /// ro-compat bits, NEEDSREPAIR, a nonzero `inprogress`, nonzero log_incompat, a realtime
    /// volume. Each message names the feature. (An external log is accepted here; opening
    /// the image needs its device, see `XFSImage`.)
    ///
    /// `inprogress` is checked only on the primary (`isPrimary`): mkfs leaves it set to 1 in
    /// the secondary copies, which nothing but growfs and repair rewrite.
    public func validateFeatures(isPrimary: Bool = true) throws(XFSFormatError) {
        func refuse(_ what: String) -> XFSFormatError {
            XFSFormatError(.unsupported, "superblock", "unsupported feature: \(what)")
        }
        let unknownIncompat = featuresIncompat & ~Incompat.known
        if unknownIncompat != 0 { throw refuse("unknown incompat feature bits 0x\(String(unknownIncompat, radix: 16))") }
        let unknownRO = featuresROCompat & ~ROCompat.known
        if unknownRO != 0 { throw refuse("unknown ro-compat feature bits 0x\(String(unknownRO, radix: 16))") }
        if featuresIncompat & Incompat.needsRepair != 0 { throw refuse("needs repair (NEEDSREPAIR is set; run xfs_repair)") }
        if isPrimary && inProgress != 0 { throw refuse("mkfs in progress (inprogress = \(inProgress))") }
        if featuresLogIncompat != 0 {
            throw refuse("log incompat features 0x\(String(featuresLogIncompat, radix: 16)) (log not clean; mount and unmount first)")
        }
        if rtBlocks != 0 || rtExtents != 0 { throw refuse("realtime volume") }
        if features2 & Superblock.features2CRC == 0 { throw refuse("v5 superblock without the CRC feature bit") }
    }

    /// Throws `.corrupt` naming the field when the geometry is not self-consistent.
    public func validateGeometry() throws(XFSFormatError) {
        func bad(_ s: String) -> XFSFormatError { XFSFormatError(.corrupt, "superblock", s) }
        func isPow2(_ v: UInt64) -> Bool { v != 0 && v & (v - 1) == 0 }
        let bs = UInt64(blockSize)
        guard isPow2(bs), bs >= 1024, bs <= 65536 else { throw bad("blocksize \(bs) is not a power of two in 1024...65536") }
        guard UInt64(1) << blockLog == bs else { throw bad("blocklog \(blockLog) does not match blocksize \(bs)") }
        let ss = UInt64(sectorSize)
        guard isPow2(ss), ss >= 512, ss <= bs else { throw bad("sectsize \(ss) is not a power of two in 512...blocksize") }
        guard UInt64(1) << sectorLog == ss else { throw bad("sectlog \(sectorLog) does not match sectsize \(ss)") }
        let isz = UInt64(inodeSize)
        guard isPow2(isz), isz >= 256, isz <= 2048, isz <= bs else {
            throw bad("inodesize \(isz) is not a power of two in 256...2048 (and at most blocksize)")
        }
        guard UInt64(1) << inodeLog == isz else { throw bad("inodelog \(inodeLog) does not match inodesize \(isz)") }
        guard UInt64(inodesPerBlock) == bs / isz else {
            throw bad("inopblock \(inodesPerBlock) is not blocksize/inodesize = \(bs / isz)")
        }
        guard UInt64(1) << inodesPerBlockLog == UInt64(inodesPerBlock) else {
            throw bad("inopblog \(inodesPerBlockLog) does not match inopblock \(inodesPerBlock)")
        }
        guard agBlocks >= Geometry.minAGBlocks else { throw bad("agblocks \(agBlocks) is below the minimum \(Geometry.minAGBlocks)") }
        guard agCount > 0 else { throw bad("agcount is 0") }
        let expectedLog = Geometry.ceilLog2(UInt64(agBlocks))
        guard agBlockLog == expectedLog else {
            throw bad("agblklog \(agBlockLog) is not ceil(log2(agblocks \(agBlocks))) = \(expectedLog)")
        }
        guard Int(agBlockLog) + Int(inodesPerBlockLog) <= 32 else { throw bad("agblklog + inopblog exceeds 32 bits") }
        let full = UInt64(agCount - 1) * UInt64(agBlocks)
        guard dataBlocks > full, dataBlocks <= full + UInt64(agBlocks) else {
            throw bad("dblocks \(dataBlocks) does not fit agcount \(agCount) × agblocks \(agBlocks)")
        }
        // Image byte offsets are 64-bit and files end below 2^63 bytes: a larger filesystem
        // cannot be addressed (and its size in bytes may not even fit in 64 bits).
        guard dataBlocks <= (UInt64(1) << 63) / bs else {
            throw bad("dblocks \(dataBlocks) × blocksize \(bs) exceeds 2^63 bytes")
        }
        guard dataBlocks - full >= Geometry.minAGBlocks else {
            throw bad("last AG has \(dataBlocks - full) blocks, below the minimum \(Geometry.minAGBlocks)")
        }
        guard rootIno != 0 else { throw bad("rootino is 0") }
        if logStart != 0 {
            let logAG = logStart >> agBlockLog
            let logAGBlock = logStart & ((UInt64(1) << agBlockLog) - 1)
            guard logAG < UInt64(agCount) else { throw bad("logstart \(logStart) names AG \(logAG) beyond agcount \(agCount)") }
            let agLen = logAG == UInt64(agCount - 1) ? dataBlocks - full : UInt64(agBlocks)
            guard logBlocks > 0, logAGBlock + UInt64(logBlocks) <= agLen else {
                throw bad("internal log (logstart \(logStart), logblocks \(logBlocks)) does not fit in AG \(logAG)")
            }
        } else {
            guard logBlocks > 0 else { throw bad("external log of logblocks 0") }
        }
        guard icount >= ifree else { throw bad("ifree \(ifree) exceeds icount \(icount)") }
        guard freeDataBlocks <= dataBlocks else { throw bad("fdblocks \(freeDataBlocks) exceeds dblocks \(dataBlocks)") }
        if hasSparseInodes {
            guard sparseInodeAlignment > 0, sparseInodeAlignment <= agBlocks else {
                throw bad("spino_align \(sparseInodeAlignment) is invalid with sparse inodes")
            }
        }
    }

    /// The derived geometry and address arithmetic of this filesystem.
    ///
    /// Meaningful only for a superblock that passed ``validateGeometry()``.
    public var geometry: Geometry { Geometry(self) }
}
