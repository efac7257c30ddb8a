// A mounted XFS seen from user space: the ioctls of the online check, in one small type.
//
// Design note. The online check needs five things of the kernel, each one ioctl on a
// descriptor of the mounted filesystem: the geometry (XFS_IOC_FSGEOMETRY), the inodes in
// inode-number order (XFS_IOC_BULKSTAT, v5), a descriptor for an inode by number
// (XFS_IOC_PATH_TO_FSHANDLE once, then XFS_IOC_OPEN_BY_HANDLE with a handle made of the
// filesystem id, the inode number and its generation), an inode's mappings
// (XFS_IOC_GETBMAPX, both forks) and the kernel's own rmapbt (FS_IOC_GETFSMAP).
// Plus FIFREEZE / FITHAW. Structures are laid out by hand in byte arrays at the offsets
// of the kernel's UAPI (xfs_fs.h, fiemap.h, fsmap.h; 64-bit Linux); no other type of the
// live layer touches a raw buffer or an ioctl.
//
// GETBMAPX is asked for an explicit range up to 2^54 sectors: with the usual length -1 it
// stops at the file size, so it hides blocks allocated past EOF (speculative preallocation
// that writeback made real) and a directory's leaf and free-index blocks (at 32 and 64 GiB),
// all of which the rmapbt holds. FIEMAP would show the first but XFS has no FIEMAP for
// directories. BMV_IF_DELALLOC keeps it from flushing delayed allocations (a write).

import CXFSShims
#if canImport(Glibc)
import Glibc
#endif

/// One inode from bulkstat.
public struct BulkstatInode: Sendable, Equatable {
    /// The inode number.
    public var ino: UInt64
    /// Its generation (part of its handle).
    public var generation: UInt32
    /// Its mode (type and permissions).
    public var mode: UInt16
    /// Blocks it holds (both forks, bmbt blocks, delayed allocations).
    public var blocks: UInt64

    /// Whether a descriptor can be opened for it by handle (regular files, directories).
    public var isOpenable: Bool {
        let type = UInt32(mode) & UInt32(S_IFMT)
        return type == UInt32(S_IFREG) || type == UInt32(S_IFDIR)
    }
}

/// One mapping from GETBMAPX, in bytes.
public struct FileMapping: Sendable, Equatable {
    /// Offset in the fork.
    public var logical: UInt64
    /// Byte address on the data device.
    public var physical: UInt64
    /// Length.
    public var length: UInt64
    /// Space allocated but not written (BMV_OF_PREALLOC).
    public var isUnwritten: Bool
    /// A delayed allocation (BMV_OF_DELALLOC): no blocks, no rmap record yet.
    public var isUnallocated: Bool
}

/// One GETFSMAP record of the data device, in bytes.
public struct FSMapRecord: Sendable, Equatable {
    /// FMR_OF_* flags.
    public var flags: UInt32
    /// Byte address on the data device.
    public var physical: UInt64
    /// An inode number, or a special owner (FMR_OWNER(type, code)) when FMR_OF_SPECIAL_OWNER.
    public var owner: UInt64
    /// Byte offset in the fork.
    public var offset: UInt64
    /// Length in bytes.
    public var length: UInt64

    /// Owned by an inode (not a special owner).
    public var isInodeOwned: Bool { flags & 0x10 == 0 }
    /// A bmbt block (FMR_OF_EXTENT_MAP).
    public var isBmbtBlock: Bool { flags & 0x4 != 0 }
    /// Attr fork (FMR_OF_ATTR_FORK).
    public var isAttrFork: Bool { flags & 0x2 != 0 }
    /// Unwritten (FMR_OF_PREALLOC).
    public var isUnwritten: Bool { flags & 0x1 != 0 }
    /// The last record of the query (FMR_OF_LAST).
    public var isLast: Bool { flags & 0x20 != 0 }
}

/// The geometry the online check needs.
public struct MountedGeometry: Sendable, Equatable {
    /// Block size in bytes.
    public var blockSize: UInt32
    /// Blocks per AG.
    public var agBlocks: UInt32
    /// Number of AGs.
    public var agCount: UInt32
    /// Whether the filesystem has reflink (sharing).
    public var hasReflink: Bool
    /// Whether it has reverse-mapping btrees.
    public var hasRmap: Bool
}

/// A mounted XFS, by a descriptor of its mount point (see the design note above).
public final class MountedXFS: @unchecked Sendable {
    /// The mount point.
    public let path: String
    let fd: Int32
    private var fsid: [UInt8] = []

    /// Opens `path`, which must be the root of a mounted XFS.
    public init(path: String) throws {
        self.path = path
        fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw LiveCheckError.filesystem(path: path, detail: "cannot open: \(Self.errorText())") }
        var magic: UInt64 = 0
        guard cxfs_fs_magic(fd, &magic) == 0 else {
            Glibc.close(fd)
            throw LiveCheckError.filesystem(path: path, detail: "statfs failed: \(Self.errorText())")
        }
        guard magic == 0x5846_5342 else {
            Glibc.close(fd)
            throw LiveCheckError.filesystem(path: path, detail: "not an XFS filesystem (statfs type 0x\(String(magic, radix: 16)))")
        }
        // The filesystem id for handles.
        var out = [UInt8](repeating: 0, count: 8)
        var outLength: UInt32 = 8
        let status = path.withCString { cpath in
            out.withUnsafeMutableBytes { outBytes in
                withUnsafeMutablePointer(to: &outLength) { lengthPointer in
                    var request = [UInt8](repeating: 0, count: 56)
                    Self.put(UInt64(UInt(bitPattern: cpath)), &request, 8)
                    Self.put(UInt64(UInt(bitPattern: outBytes.baseAddress)), &request, 40)
                    Self.put(UInt64(UInt(bitPattern: lengthPointer)), &request, 48)
                    return request.withUnsafeMutableBytes { cxfs_ioctl(fd, 0xC038_5868, $0.baseAddress) }
                }
            }
        }
        guard status >= 0 else {
            Glibc.close(fd)
            throw LiveCheckError.filesystem(path: path, detail: "XFS_IOC_PATH_TO_FSHANDLE failed (is it the mount point?): \(Self.errorText())")
        }
        fsid = out
    }

    deinit { Glibc.close(fd) }

    /// The device number of the filesystem (its data device): the tracepoints' `dev`.
    public var device: UInt64 {
        get throws {
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                throw LiveCheckError.filesystem(path: path, detail: "fstat failed: \(Self.errorText())")
            }
            return UInt64(info.st_dev)
        }
    }

    /// XFS_IOC_FSGEOMETRY.
    public func geometry() throws -> MountedGeometry {
        var buffer = [UInt8](repeating: 0, count: 256)
        guard buffer.withUnsafeMutableBytes({ cxfs_ioctl(fd, 0x8100_587E, $0.baseAddress) }) >= 0 else {
            throw LiveCheckError.filesystem(path: path, detail: "XFS_IOC_FSGEOMETRY failed: \(Self.errorText())")
        }
        let flags = Self.u32(buffer, 92)
        return MountedGeometry(blockSize: Self.u32(buffer, 0), agBlocks: Self.u32(buffer, 8), agCount: Self.u32(buffer, 12),
                               hasReflink: flags & 0x10_0000 != 0, hasRmap: flags & 0x8_0000 != 0)
    }

    /// Up to `count` inodes from `start` (inclusive) upward, in inode-number order, and the
    /// inode number to continue from (nil when there are no more).
    public func bulkstat(from start: UInt64, count: Int = 1024) throws -> (inodes: [BulkstatInode], next: UInt64?) {
        let recordSize = 192
        var buffer = [UInt8](repeating: 0, count: 64 + count * recordSize)
        Self.put(start, &buffer, 0)
        Self.put32(UInt32(count), &buffer, 12)
        guard buffer.withUnsafeMutableBytes({ cxfs_ioctl(fd, 0x8040_587F, $0.baseAddress) }) >= 0 else {
            throw LiveCheckError.filesystem(path: path, detail: "XFS_IOC_BULKSTAT failed: \(Self.errorText())")
        }
        let filled = Int(Self.u32(buffer, 16))
        var inodes: [BulkstatInode] = []
        inodes.reserveCapacity(filled)
        for i in 0..<filled {
            let base = 64 + i * recordSize
            inodes.append(BulkstatInode(ino: Self.u64(buffer, base), generation: Self.u32(buffer, base + 64),
                                        mode: UInt16(truncatingIfNeeded: Self.u32(buffer, base + 132)),
                                        blocks: Self.u64(buffer, base + 16)))
        }
        return (inodes, filled == 0 ? nil : Self.u64(buffer, 0))
    }

    /// The allocated inode numbers in `range`, by the inode btree (XFS_IOC_INUMBERS: each
    /// chunk's allocation mask). An inode allocated here but not returned by `bulkstat`
    /// is one the kernel would not load: an unlinked inode waiting to be inactivated, whose
    /// blocks are freed later.
    public func allocatedInodes(in range: ClosedRange<UInt64>) throws -> [UInt64] {
        // Chunks per call: enough for the range (64 inodes each), at most 64.
        let recordSize = 24, count = Int(min(64, (range.upperBound - range.lowerBound) / 64 + 2))
        var result: [UInt64] = []
        var start = range.lowerBound & ~63 // chunks start at multiples of 64
        while true {
            var buffer = [UInt8](repeating: 0, count: 64 + count * recordSize)
            Self.put(start, &buffer, 0)
            Self.put32(UInt32(count), &buffer, 12)
            guard buffer.withUnsafeMutableBytes({ cxfs_ioctl(fd, 0x8040_5880, $0.baseAddress) }) >= 0 else {
                throw LiveCheckError.filesystem(path: path, detail: "XFS_IOC_INUMBERS failed: \(Self.errorText())")
            }
            let filled = min(Int(Self.u32(buffer, 16)), count)
            if filled == 0 { return result }
            for i in 0..<filled {
                let base = 64 + i * recordSize
                let first = Self.u64(buffer, base), mask = Self.u64(buffer, base + 8)
                if first > range.upperBound { return result }
                for bit in 0..<64 where mask & (1 << UInt64(bit)) != 0 {
                    let ino = first &+ UInt64(bit)
                    if range.contains(ino) { result.append(ino) }
                }
            }
            let next = Self.u64(buffer, 0)
            if filled < count || next <= start { return result }
            start = next
        }
    }

    /// A read-only descriptor of `inode` (by handle), or nil when it no longer exists (or
    /// is another inode now: the generation differs). The caller closes it with `close(_:)`.
    public func open(_ inode: BulkstatInode) throws -> Int32? {
        var handle = fsid
        handle += [14, 0, 0, 0]
        handle += withUnsafeBytes(of: inode.generation.littleEndian, Array.init)
        handle += withUnsafeBytes(of: inode.ino.littleEndian, Array.init)
        let result = handle.withUnsafeMutableBytes { handleBytes in
            var request = [UInt8](repeating: 0, count: 56)
            Self.put32(UInt32(bitPattern: O_RDONLY | O_CLOEXEC | 0o1000000 /* O_NOATIME */), &request, 16)
            Self.put(UInt64(UInt(bitPattern: handleBytes.baseAddress)), &request, 24)
            Self.put32(UInt32(handleBytes.count), &request, 32)
            return request.withUnsafeMutableBytes { cxfs_ioctl(fd, 0xC038_586B, $0.baseAddress) }
        }
        if result >= 0 { return result }
        if errno == ESTALE || errno == ENOENT || errno == EINVAL { return nil }
        throw LiveCheckError.filesystem(path: path, detail: "open of inode \(inode.ino) by handle failed: \(Self.errorText())")
    }

    /// Closes a descriptor from `open(_:)`.
    public func close(_ descriptor: Int32) { _ = Glibc.close(descriptor) }

    /// Every mapping of the data fork (or, with `attrFork`, the attr fork) of `descriptor`
    /// (XFS_IOC_GETBMAPX with BMV_IF_PREALLOC, and BMV_IF_DELALLOC so that nothing is
    /// flushed; holes left out).
    public func mappings(of descriptor: Int32, attrFork: Bool) throws -> [FileMapping] {
        let entrySize = 48, batch = 1024
        // An explicit length past any fork offset: with -1 the kernel stops at the file size,
        // hiding blocks past EOF and a directory's leaf and free-index blocks.
        let end: Int64 = 1 << 54
        var result: [FileMapping] = []
        var start: Int64 = 0
        while start < end {
            var buffer = [UInt8](repeating: 0, count: (batch + 1) * entrySize)
            Self.put(UInt64(start), &buffer, 0)
            Self.put(UInt64(end - start), &buffer, 16)
            Self.put32(UInt32(batch + 1), &buffer, 24)
            Self.put32((attrFork ? 0x1 : 0) | 0x4 | 0x8, &buffer, 32)
            guard buffer.withUnsafeMutableBytes({ cxfs_ioctl(descriptor, 0xC020_5838, $0.baseAddress) }) >= 0 else {
                if attrFork && errno == EINVAL { return result }
                throw LiveCheckError.filesystem(path: path, detail: "XFS_IOC_GETBMAPX failed: \(Self.errorText())")
            }
            let entries = Int(Self.u32(buffer, 28))
            var last = false
            var next = start
            for i in 1..<(entries + 1) {
                let base = i * entrySize
                let offset = Int64(bitPattern: Self.u64(buffer, base))
                let block = Int64(bitPattern: Self.u64(buffer, base + 8))
                let length = Int64(bitPattern: Self.u64(buffer, base + 16))
                let flags = Self.u32(buffer, base + 36)
                next = offset + length
                if flags & 0x4 != 0 { last = true }
                if block == -1 || length <= 0 { continue }
                result.append(FileMapping(logical: UInt64(offset) * 512, physical: block >= 0 ? UInt64(block) * 512 : 0,
                                          length: UInt64(length) * 512, isUnwritten: flags & 0x1 != 0,
                                          isUnallocated: block < 0 || flags & 0x2 != 0))
            }
            if entries < batch || last || next <= start { return result }
            start = next
        }
        return result
    }

    /// The kernel's rmap records of the bytes [`low`, `high`] of the data device
    /// (FS_IOC_GETFSMAP, continued until the last).
    public func fsmap(physical low: UInt64, through high: UInt64) throws -> [FSMapRecord] {
        try fsmap(physical: low, through: high, limit: nil).records
    }

    /// At most `limit` of the kernel's rmap records of the bytes [`low`, `high`] of the data
    /// device, in one FS_IOC_GETFSMAP call (the kernel reads each AG's part of it with that
    /// AG's headers locked), and whether they are all the range has (`complete`).
    public func fsmap(physical low: UInt64, through high: UInt64, atMost limit: Int) throws
        -> (records: [FSMapRecord], complete: Bool) {
        try fsmap(physical: low, through: high, limit: max(1, limit))
    }

    private func fsmap(physical low: UInt64, through high: UInt64, limit: Int?) throws
        -> (records: [FSMapRecord], complete: Bool) {
        let recordSize = 64, batch = limit ?? 4096
        var buffer = [UInt8](repeating: 0, count: 192 + batch * recordSize)
        let device = UInt32(truncatingIfNeeded: try device)
        // Low key: the data device (its dev_t, as the kernel encodes it for user space) at
        // `low`; a key of another device would make the query start at the device's start.
        Self.put32(device, &buffer, 64)
        Self.put(low, &buffer, 64 + 8)
        // High key: everything of the data device up to `high`.
        Self.put32(device, &buffer, 128)
        Self.put32(UInt32.max, &buffer, 128 + 4)
        Self.put(high, &buffer, 128 + 8)
        Self.put(UInt64.max, &buffer, 128 + 16)
        Self.put(UInt64.max, &buffer, 128 + 24)
        Self.put32(UInt32(batch), &buffer, 8)
        var records: [FSMapRecord] = []
        while true {
            guard buffer.withUnsafeMutableBytes({ cxfs_ioctl(fd, 0xC0C0_583B, $0.baseAddress) }) >= 0 else {
                if errno == EUCLEAN {
                    throw LiveCheckError.corruptionReported(path: path, detail: "FS_IOC_GETFSMAP: \(Self.errorText())")
                }
                throw LiveCheckError.filesystem(path: path, detail: "FS_IOC_GETFSMAP failed: \(Self.errorText())")
            }
            let entries = Int(Self.u32(buffer, 12))
            if entries == 0 { return (records, true) }
            records.reserveCapacity(records.count + entries)
            var last = false
            for i in 0..<entries {
                let base = 192 + i * recordSize
                let record = FSMapRecord(flags: Self.u32(buffer, base + 4), physical: Self.u64(buffer, base + 8),
                                         owner: Self.u64(buffer, base + 16), offset: Self.u64(buffer, base + 24),
                                         length: Self.u64(buffer, base + 32))
                records.append(record)
                if record.isLast { last = true }
            }
            if last || entries < batch { return (records, true) }
            if limit != nil { return (records, false) }
            // Continue after the last record returned: it becomes the low key.
            let lastBase = 192 + (entries - 1) * recordSize
            let lastRecord = Array(buffer[lastBase..<(lastBase + recordSize)])
            buffer.replaceSubrange(64..<128, with: lastRecord)
        }
    }

    /// Freezes the filesystem (FIFREEZE); `thaw()` undoes it.
    public func freeze() throws {
        var zero: Int32 = 0
        guard withUnsafeMutablePointer(to: &zero, { cxfs_ioctl(fd, 0xC004_5877, $0) }) >= 0 else {
            throw LiveCheckError.filesystem(path: path, detail: "FIFREEZE failed: \(Self.errorText())")
        }
    }

    /// Thaws a filesystem frozen by `freeze()` (FITHAW).
    public func thaw() throws {
        var zero: Int32 = 0
        guard withUnsafeMutablePointer(to: &zero, { cxfs_ioctl(fd, 0xC004_5878, $0) }) >= 0 else {
            throw LiveCheckError.filesystem(path: path, detail: "FITHAW failed: \(Self.errorText())")
        }
    }

    // MARK: Bytes

    static func errorText() -> String { String(cString: strerror(errno)) }

    static func put(_ value: UInt64, _ buffer: inout [UInt8], _ offset: Int) {
        for i in 0..<8 { buffer[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    static func put32(_ value: UInt32, _ buffer: inout [UInt8], _ offset: Int) {
        for i in 0..<4 { buffer[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    static func u64(_ buffer: [UInt8], _ offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value |= UInt64(buffer[offset + i]) << (8 * i) }
        return value
    }

    static func u32(_ buffer: [UInt8], _ offset: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<4 { value |= UInt32(buffer[offset + i]) << (8 * i) }
        return value
    }
}
