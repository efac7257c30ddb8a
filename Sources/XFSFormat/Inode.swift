import XFSBuffer

/// The v3 inode core (176 bytes) with every field decoded, plus both forks.
///
/// Use ``Inode/load(from:ino:geometry:)`` on the `inodesize` bytes of an *allocated* inode
/// (free slots may hold stale bytes). It verifies the core and decodes the forks; every error
/// names the inode number and the check.
public struct InodeCore: Sendable, Equatable {
    /// "IN".
    public static let magic: UInt16 = 0x494E
    /// Size of the v3 core; the data fork starts here.
    public static let size = 176
    /// Offset of the little-endian CRC32c, which covers the whole inode.
    public static let crcOffset = 100

    /// flags bit 0: data on the realtime device.
    public static let flagRealtime: UInt16 = 0x1
    /// flags2 bits.
    public static let flags2DAX: UInt64 = 0x1
    /// `XFS_DIFLAG2_REFLINK`: the file may share blocks.
    public static let flags2Reflink: UInt64 = 0x2
    /// `XFS_DIFLAG2_COWEXTSIZE`: `cowExtSize` is set.
    public static let flags2CowExtSize: UInt64 = 0x4
    /// `XFS_DIFLAG2_BIGTIME`: timestamps beyond 2038.
    public static let flags2BigTime: UInt64 = 0x8
    /// `XFS_DIFLAG2_NREXT64`: 64-bit extent counters.
    public static let flags2Nrext64: UInt64 = 0x10

    /// `di_magic`: "IN".
    public var magicnum: UInt16
    /// `di_mode`: file type and permissions.
    public var mode: UInt16
    /// `di_version`: 3 on v5 filesystems.
    public var version: UInt8
    /// Data fork format (``ForkFormat`` raw value).
    public var format: UInt8
    /// `di_onlink`: the old 16-bit link count.
    public var onlink: UInt16
    /// `di_uid`: the owner's user id.
    public var uid: UInt32
    /// `di_gid`: the owner's group id.
    public var gid: UInt32
    /// `di_nlink`: links.
    public var nlink: UInt32
    /// `di_projid_lo`: the project id's low half.
    public var projidLo: UInt16
    /// `di_projid_hi`: the project id's high half.
    public var projidHi: UInt16
    /// Raw timestamps (bigtime or legacy encoding; not interpreted).
    public var atime: UInt64
    /// `di_mtime`: modification time.
    public var mtime: UInt64
    /// `di_ctime`: inode change time.
    public var ctime: UInt64
    /// `di_size`: file size in bytes.
    public var size: UInt64
    /// `di_nblocks`: blocks the file uses, bmbt blocks included.
    public var nblocks: UInt64
    /// `di_extsize`: the extent size hint.
    public var extsize: UInt32
    /// Data fork extent count, from byte 24 (u64) with NREXT64 or byte 76 (u32) without.
    public var dataExtentCount: UInt64
    /// Attr fork extent count, from byte 76 (u32) with NREXT64 or byte 80 (u16) without.
    public var attrExtentCount: UInt32
    /// Attr fork offset in 8-byte units from byte 176; 0 = no attr fork.
    public var forkOffset: UInt8
    /// Attr fork format (``ForkFormat`` raw value).
    public var attrFormat: UInt8
    /// `di_dmevmask`: DMAPI event mask (unused).
    public var dmevmask: UInt32
    /// `di_dmstate`: DMAPI state (unused).
    public var dmstate: UInt16
    /// `di_flags`: inode flags.
    public var flags: UInt16
    /// `di_gen`: generation number.
    public var gen: UInt32
    /// `di_next_unlinked`: the next inode on the AGI's unlinked list.
    public var nextUnlinked: UInt32
    /// The stored CRC (read little-endian).
    public var crc: UInt32
    /// `di_changecount`: changes to the inode.
    public var changeCount: UInt64
    /// `di_lsn`: the log sequence number of the last write.
    public var lsn: UInt64
    /// `di_flags2`: more inode flags (`flags2Reflink`, ...).
    public var flags2: UInt64
    /// `di_cowextsize`: the copy-on-write extent size hint.
    public var cowExtSize: UInt32
    /// `di_crtime`: creation time.
    public var crtime: UInt64
    /// `di_ino`: the inode's own number.
    public var ino: UInt64
    /// `di_uuid`: the filesystem's metadata uuid.
    public var uuid: FSUUID

    /// Decodes the 176-byte core without checking anything.
    public static func decode(_ bytes: UnsafeRawBufferPointer, location: String) throws(XFSFormatError) -> InodeCore {
        let r = ByteReader(bytes, location: location)
        try r.require(size, at: 0, "inode core")
        let flags2 = try r.u64(at: 120)
        let nrext64 = flags2 & flags2Nrext64 != 0
        return InodeCore(
            magicnum: try r.u16(at: 0), mode: try r.u16(at: 2), version: try r.u8(at: 4), format: try r.u8(at: 5),
            onlink: try r.u16(at: 6), uid: try r.u32(at: 8), gid: try r.u32(at: 12), nlink: try r.u32(at: 16),
            projidLo: try r.u16(at: 20), projidHi: try r.u16(at: 22), atime: try r.u64(at: 32), mtime: try r.u64(at: 40),
            ctime: try r.u64(at: 48), size: try r.u64(at: 56), nblocks: try r.u64(at: 64), extsize: try r.u32(at: 72),
            dataExtentCount: nrext64 ? try r.u64(at: 24) : UInt64(try r.u32(at: 76)),
            attrExtentCount: nrext64 ? try r.u32(at: 76) : UInt32(try r.u16(at: 80)),
            forkOffset: try r.u8(at: 82), attrFormat: try r.u8(at: 83), dmevmask: try r.u32(at: 84),
            dmstate: try r.u16(at: 88), flags: try r.u16(at: 90), gen: try r.u32(at: 92),
            nextUnlinked: try r.u32(at: 96), crc: try r.u32LittleEndian(at: 100), changeCount: try r.u64(at: 104),
            lsn: try r.u64(at: 112), flags2: flags2, cowExtSize: try r.u32(at: 128), crtime: try r.u64(at: 144),
            ino: try r.u64(at: 152), uuid: try r.uuid(at: 160))
    }

    /// The file type bits of `mode`.
    public var fileType: FileType? { FileType(rawValue: mode & 0xF000) }
    /// Whether the per-inode 64-bit extent counters are in use.
    public var hasNrext64: Bool { flags2 & Self.flags2Nrext64 != 0 }
    /// Whether the data fork lives on the realtime device.
    public var isRealtime: Bool { flags & Self.flagRealtime != 0 }
    /// Whether the inode has an attr fork (forkoff ≠ 0).
    public var hasAttrFork: Bool { forkOffset != 0 }
}

/// S_IFMT file types.
public enum FileType: UInt16, Sendable {
    case fifo = 0x1000, characterDevice = 0x2000, directory = 0x4000, blockDevice = 0x6000
    case regular = 0x8000, symlink = 0xA000, socket = 0xC000
}

/// Fork formats (di_format / di_aformat).
public enum ForkFormat: UInt8, Sendable {
    case device = 0, local = 1, extents = 2, btree = 3
}

/// A decoded, verified inode: its core and both forks.
public struct Inode: Sendable, Equatable {
    /// The inode core.
    public var core: InodeCore
    /// The data fork.
    public var dataFork: InodeFork
    /// The attr fork, or nil when forkoff is 0.
    public var attrFork: InodeFork?

    /// Decodes and verifies the `inodesize` bytes of allocated inode `ino`.
    ///
    /// Checks: magic, version 3, CRC over `inodesize`, the `ino` field, the uuid, a known
    /// file type, a data fork format legal for that type, forkoff within the literal area,
    /// attr format, extent counts that fit their forks, and bmbt roots; then decodes the forks.
    public static func load(from bytes: UnsafeRawBufferPointer, ino: UInt64, geometry g: Geometry) throws(XFSFormatError) -> Inode {
        // The location is named only when an error is thrown: a scan loads millions of
        // sound inodes, and formatting "inode N" for each was measurable.
        do {
            return try decode(bytes, ino: ino, geometry: g)
        } catch {
            var named = error
            named.location = "inode \(ino)"
            throw named
        }
    }

    /// ``load(from:ino:geometry:)``, with errors located at "inode" alone.
    private static func decode(_ bytes: UnsafeRawBufferPointer, ino: UInt64, geometry g: Geometry) throws(XFSFormatError) -> Inode {
        let location = "inode"
        func bad(_ s: String) -> XFSFormatError { XFSFormatError(.corrupt, location, s) }
        let core = try InodeCore.decode(bytes, location: location)
        guard core.magicnum == InodeCore.magic else {
            throw XFSFormatError(.badMagic, location, "bad magic 0x\(String(core.magicnum, radix: 16))")
        }
        guard core.version == 3 else { throw XFSFormatError(.badVersion, location, "inode version \(core.version) is not 3") }
        let inodeSize = Int(g.inodeSize)
        guard try ByteReader(bytes, location: location).crcMatches(span: inodeSize, crcAt: InodeCore.crcOffset, "inode") else {
            throw XFSFormatError(.badCRC, location, "bad CRC")
        }
        guard core.ino == ino else { throw bad("ino field \(core.ino) is not the inode's number") }
        guard core.uuid == g.metaUUID else { throw bad("uuid \(core.uuid) does not match the filesystem's \(g.metaUUID)") }
        guard core.mode != 0 else { throw bad("mode is 0 (the inode is free)") }
        guard let type = core.fileType else { throw bad("unknown file type in mode 0o\(String(core.mode, radix: 8))") }
        guard let format = ForkFormat(rawValue: core.format) else { throw bad("unknown data fork format \(core.format)") }
        let legal: Bool
        switch type {
        case .regular: legal = format == .extents || format == .btree
        case .directory, .symlink: legal = format == .local || format == .extents || format == .btree
        case .fifo, .characterDevice, .blockDevice, .socket: legal = format == .device
        }
        guard legal else { throw bad("data fork format \(format) is not legal for a \(type) inode") }

        let geometry = InodeForkGeometry(inodeSize: inodeSize, forkOffset: core.forkOffset)
        guard geometry.isValid else {
            throw bad("forkoff \(core.forkOffset) puts the attr fork outside the \(geometry.literalSize)-byte literal area")
        }
        let r = ByteReader(bytes, location: location)
        try r.require(inodeSize, at: 0, "inode")
        let dataFork = try InodeFork.decode(r, fork: .data, format: format, start: InodeCore.size,
                                            size: geometry.dataForkSize, extentCount: core.dataExtentCount)
        var attrFork: InodeFork?
        if core.hasAttrFork {
            guard let aformat = ForkFormat(rawValue: core.attrFormat), aformat != .device else {
                throw bad("unknown attr fork format \(core.attrFormat)")
            }
            attrFork = try InodeFork.decode(r, fork: .attr, format: aformat, start: geometry.attrForkStart,
                                            size: geometry.attrForkSize, extentCount: UInt64(core.attrExtentCount))
        } else if core.attrExtentCount != 0 {
            throw bad("attr fork extent count \(core.attrExtentCount) without an attr fork (forkoff 0)")
        }
        return Inode(core: core, dataFork: dataFork, attrFork: attrFork)
    }
}

/// Where an inode's forks sit: the literal area after the 176-byte core holds the data fork,
/// then (from forkoff × 8) the attr fork.
public struct InodeForkGeometry: Sendable, Equatable {
    /// inodesize − 176.
    public var literalSize: Int
    /// di_forkoff.
    public var forkOffset: UInt8

    /// The fork geometry of an inode of `inodeSize` bytes with the given forkoff.
    public init(inodeSize: Int, forkOffset: UInt8) {
        literalSize = inodeSize - InodeCore.size
        self.forkOffset = forkOffset
    }
    /// Whether forkoff leaves room inside the literal area.
    public var isValid: Bool { Int(forkOffset) * 8 < literalSize && literalSize > 0 }
    /// forkoff × 8, or the whole literal area when there is no attr fork.
    public var dataForkSize: Int { forkOffset == 0 ? literalSize : Int(forkOffset) * 8 }
    /// Byte offset of the attr fork within the inode.
    public var attrForkStart: Int { InodeCore.size + Int(forkOffset) * 8 }
    /// Bytes of the attr fork (0 without one).
    public var attrForkSize: Int { forkOffset == 0 ? 0 : literalSize - Int(forkOffset) * 8 }
}
