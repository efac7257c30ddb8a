import Glibc
import XFSBTree
import XFSBuffer

/// An XFS v5 filesystem image or block device, opened read-only: its verified primary
/// superblock and geometry, its AG headers, and the buffer target all reads go through.
///
/// Opening refuses what this project does not handle, with a message naming the reason:
/// not a regular file or block device, too small to hold a superblock, no XFS magic, v4,
/// unknown or unsupported features, a realtime volume, an image shorter than the filesystem
/// it describes, or an external log whose device was not given (or is too short).
///
/// Thread safety: `Sendable`. Its state is immutable after opening and its buffer target
/// is thread-safe, so several threads may read through one image (each with its own cursors).
public final class XFSImage: @unchecked Sendable {
    /// The path the image was opened from.
    public let path: String
    /// The buffer target (its own cache) every read goes through.
    public let target: FileTarget
    /// The external log device's path, when the filesystem has one.
    public let logDevicePath: String?
    /// The external log device's target (nil for an internal log).
    public let logTarget: FileTarget?
    /// The primary superblock, verified.
    public let superblock: Superblock
    /// Sizes and address conversions derived from the superblock.
    public let geometry: Geometry

    /// The default bound on cached image blocks. A check reads most metadata once, in
    /// order, so a small cache loses little and keeps the peak resident set small.
    public static let defaultCacheCapacity = 8 << 20

    /// Opens and verifies the image at `path`, caching at most `cacheCapacity` bytes of
    /// clean blocks. A filesystem with an external log needs `logDevicePath`, its log
    /// device (as `xfs_repair -l` does); one with an internal log must not be given one.
    ///
    /// - Throws: `XFSFormatError` naming what is wrong (the file, the superblock, a
    ///   feature, the log device), or a `BufferError` for I/O failures.
    public init(path: String, logDevicePath: String? = nil, cacheCapacity: Int = XFSImage.defaultCacheCapacity) throws {
        self.path = path
        self.logDevicePath = logDevicePath
        try Self.checkIsFileOrBlockDevice(path)
        let target = try FileTarget(path: path, writable: false, cacheCapacity: cacheCapacity)
        self.target = target
        guard target.deviceSize >= 512 else {
            throw XFSFormatError(.truncated, path, "\(target.deviceSize) bytes is too small to hold an XFS superblock")
        }
        // The sector size is in the superblock itself: read one 512-byte sector first,
        // then the whole sector the CRC covers.
        let probe = try target.readBuffer(at: DiskAddress(0), length: 512, verifier: nil)
        let sectorSize = probe.withUnsafeBytes { bytes -> Int in
            let magic = UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
            guard magic == Superblock.magic else { return 0 }
            return Int(UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 102, as: UInt16.self)))
        }
        target.release(probe)
        target.cache.purge()
        guard sectorSize != 0 else {
            throw XFSFormatError(.badMagic, "superblock", "no XFS superblock magic at byte 0: not an XFS filesystem")
        }
        guard [512, 1024, 2048, 4096, 8192, 16384, 32768].contains(sectorSize), sectorSize <= target.deviceSize else {
            throw XFSFormatError(.corrupt, "superblock", "sector size \(sectorSize) is invalid")
        }
        let sector = try target.readBuffer(at: DiskAddress(0), length: sectorSize, verifier: nil)
        defer { target.release(sector) }
        let superblock = try sector.withUnsafeBytes { bytes throws(XFSFormatError) in try Superblock.load(from: bytes) }
        self.superblock = superblock
        self.geometry = superblock.geometry
        guard superblock.hasRmapBT else {
            throw XFSFormatError(.unsupported, "superblock", "the filesystem has no reverse-mapping btree (mkfs.xfs -m rmapbt=1)")
        }
        let needed = UInt64(superblock.dataBlocks) * UInt64(superblock.blockSize)
        guard UInt64(target.deviceSize) >= needed else {
            throw XFSFormatError(.truncated, path,
                                 "the filesystem needs \(needed) bytes but the image has \(target.deviceSize): truncated")
        }
        logTarget = try Self.openLogDevice(logDevicePath, for: superblock)
    }

    /// Throws unless `path` names a regular file or a block device (through symbolic links).
    private static func checkIsFileOrBlockDevice(_ path: String) throws(XFSFormatError) {
        var status = stat()
        guard stat(path, &status) == 0 else {
            let reason = String(cString: strerror(errno))
            var link = stat()
            if errno == ENOENT, lstat(path, &link) == 0, link.st_mode & S_IFMT == S_IFLNK {
                throw XFSFormatError(.unsupported, path, "is a symbolic link to a missing file (\(reason))")
            }
            throw XFSFormatError(.unsupported, path, reason)
        }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else {
            throw XFSFormatError(.unsupported, path, type == S_IFDIR ? "is a directory" : "is not a regular file or block device")
        }
    }

    /// The external log device's target: required when the filesystem's log is external,
    /// refused when it is internal, and long enough for sb_logblocks.
    private static func openLogDevice(_ path: String?, for superblock: Superblock) throws -> FileTarget? {
        guard superblock.hasExternalLog else {
            if let path {
                throw XFSFormatError(.unsupported, path, "a log device was given but the filesystem's log is internal")
            }
            return nil
        }
        guard let path else {
            throw XFSFormatError(.unsupported, "superblock",
                                 "the filesystem has an external log: give its device (xfs-rmap --logdev LOGDEV, as xfs_repair -l LOGDEV)")
        }
        try checkIsFileOrBlockDevice(path)
        let target = try FileTarget(path: path, writable: false, cacheCapacity: 1 << 20)
        let needed = UInt64(superblock.logBlocks) * UInt64(superblock.blockSize)
        guard UInt64(target.deviceSize) >= needed else {
            throw XFSFormatError(.truncated, path,
                                 "the log needs \(needed) bytes but the log device has \(target.deviceSize): truncated or not this filesystem's log")
        }
        return target
    }

    /// The filesystem uuid stamped in metadata, as the btree engine expects it.
    public var metadataUUID: BTreeUUID { BTreeUUID(high: geometry.metaUUID.high, low: geometry.metaUUID.low) }

    /// Reads one AG header sector and decodes it.
    private func readSector<T>(_ byteOffset: UInt64, _ decode: (UnsafeRawBufferPointer) throws(XFSFormatError) -> T) throws -> T {
        let buffer = try target.readBuffer(at: DiskAddress(Int64(byteOffset >> 9)), length: Int(geometry.sectorSize), verifier: nil)
        defer { target.release(buffer) }
        return try buffer.withUnsafeBytes { bytes throws(XFSFormatError) in try decode(bytes) }
    }

    /// The bytes of the sector at `byteOffset` (a multiple of the sector size), as on disk.
    public func sectorBytes(at byteOffset: UInt64) throws -> [UInt8] {
        precondition(byteOffset % UInt64(geometry.sectorSize) == 0, "byte \(byteOffset) is not at a sector boundary")
        let buffer = try target.readBuffer(at: DiskAddress(Int64(byteOffset >> 9)), length: Int(geometry.sectorSize), verifier: nil)
        defer { target.release(buffer) }
        return buffer.withUnsafeBytes { Array($0) }
    }

    /// AG `agno`'s AGF, verified (magic, CRC, fields).
    /// With `checkingRmap` false, the rmapbt's fields are not checked (see
    /// ``AGF/load(from:agno:geometry:checkingRmap:)``).
    public func agf(_ agno: UInt32, checkingRmap: Bool = true) throws -> AGF {
        precondition(agno < geometry.agCount, "AG \(agno) of \(geometry.agCount)")
        let g = geometry
        return try readSector(g.agfByteOffset(agno)) { bytes throws(XFSFormatError) in
            try AGF.load(from: bytes, agno: agno, geometry: g, checkingRmap: checkingRmap)
        }
    }

    /// AG `agno`'s AGI, verified (magic, CRC, fields).
    public func agi(_ agno: UInt32) throws -> AGI {
        precondition(agno < geometry.agCount, "AG \(agno) of \(geometry.agCount)")
        let g = geometry
        return try readSector(g.agiByteOffset(agno)) { bytes throws(XFSFormatError) in try AGI.load(from: bytes, agno: agno, geometry: g) }
    }

    /// AG `agno`'s free list under the window `agf` gives, as far as it can be trusted
    /// (``AGFL/readableBlocks(agf:agno:geometry:)``). An AGFL sector that fails its own
    /// checks (CRC, seqno, uuid) is still decoded when its magic is right, with the failure
    /// among the problems; an unreadable sector or a wrong magic gives no blocks.
    public func freeList(_ agno: UInt32, agf: AGF) -> FreeListReading {
        let g = geometry
        do {
            return try readSector(g.agflByteOffset(agno)) { bytes throws(XFSFormatError) -> FreeListReading in
                do throws(XFSFormatError) {
                    return try AGFL.load(from: bytes, agno: agno, geometry: g).readableBlocks(agf: agf, agno: agno, geometry: g)
                } catch {
                    let agfl = try AGFL.decode(bytes, agno: agno, agflSize: g.agflSize)
                    guard agfl.magicnum == AGFL.magic else { throw error }
                    var reading = agfl.readableBlocks(agf: agf, agno: agno, geometry: g)
                    reading.problems.insert(error.detail, at: 0)
                    return reading
                }
            }
        } catch let error as XFSFormatError {
            var reading = FreeListReading()
            reading.problems = [error.detail]
            return reading
        } catch {
            var reading = FreeListReading()
            reading.problems = ["\(error)"]
            return reading
        }
    }

    /// AG `agno`'s AGF and AGI, each verified, and its free list as far as it can be
    /// trusted (a damaged free list does not stop the rest of the AG from being read: see
    /// ``AGHeaders/freeList``).
    public func agHeaders(_ agno: UInt32) throws -> AGHeaders {
        let agf = try agf(agno)
        let agi = try agi(agno)
        return AGHeaders(agno: agno, agf: agf, agi: agi, freeList: freeList(agno, agf: agf))
    }
}

/// One AG's verified headers.
public struct AGHeaders: Sendable {
    /// The AG number.
    public var agno: UInt32
    /// The free-space header (free-space, rmap and refcount roots).
    public var agf: AGF
    /// The inode header (inobt and finobt roots).
    public var agi: AGI
    /// The free list's trusted blocks in order from `flfirst`, and what is wrong with it.
    public var freeList: FreeListReading

    /// The AGFL's trusted active entries, in order from `flfirst`.
    public var freeListBlocks: [UInt32] { freeList.blocks }

    /// Headers from their parts.
    public init(agno: UInt32, agf: AGF, agi: AGI, freeList: FreeListReading) {
        self.agno = agno
        self.agf = agf
        self.agi = agi
        self.freeList = freeList
    }
}
