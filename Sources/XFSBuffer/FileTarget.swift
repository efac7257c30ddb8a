#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A buffer target on a disk image or block device: buffers own their bytes, reads are
/// pread then the read verifier, writes are the write verifier then pwrite.
///
/// Opened read-only unless `writable`; every write operation on a read-only target fails
/// with `.readOnlyTarget`. Interrupted (EINTR) and short transfers are continued; a read
/// that meets end-of-file fails with `.readPastEnd`. The descriptor is closed when the
/// target is freed. Thread-safe, as every `BufferTarget`.
public final class FileTarget: BufferTarget {
    /// The image or device path.
    public let path: String
    /// Whether the target was opened for writing.
    public let isWritable: Bool
    /// The device's sector size: buffer lengths are multiples of it.
    public let sectorSize: Int
    /// The device's size in bytes when it was opened.
    public let deviceSize: Int
    /// The target's buffer cache.
    public let cache: BufferCache
    /// The open descriptor.
    private let descriptor: Int32
    /// The system calls (live, or a test's).
    private let system: FileTargetSystemCalls

    /// The default memory cap of a file target's cache: 64 MiB.
    public static let defaultCacheCapacity = 64 << 20

    /// Opens `path` read-only, or read-write when `writable`.
    ///
    /// - Throws: `.openFailed` with the errno, or `.systemCallFailed` if the size cannot be found.
    public init(path: String, writable: Bool = false, sectorSize: Int = 512,
                cacheCapacity: Int = FileTarget.defaultCacheCapacity,
                systemCalls: FileTargetSystemCalls = .live) throws(BufferError) {
        precondition(sectorSize >= 512 && sectorSize & (sectorSize - 1) == 0,
                     "sector size \(sectorSize) is not a power of two of at least 512")
        let descriptor: Int32
        switch systemCalls.open(path, writable ? O_RDWR : O_RDONLY) {
        case let .success(opened): descriptor = opened
        case let .failure(error): throw .openFailed(path: path, errno: error.rawValue)
        }
        switch systemCalls.size(descriptor) {
        case let .success(size): self.deviceSize = size
        case let .failure(error):
            systemCalls.close(descriptor)
            throw .systemCallFailed(call: "lseek(SEEK_END)", errno: error.rawValue, address: DiskAddress(0), length: 0)
        }
        self.path = path
        self.isWritable = writable
        self.sectorSize = sectorSize
        self.cache = BufferCache(capacity: cacheCapacity)
        self.descriptor = descriptor
        self.system = systemCalls
    }

    deinit {
        system.close(descriptor)
    }

    /// The buffer at `address`, held and locked, unread (zeroed when new).
    public func getBuffer(at address: DiskAddress, length: Int) throws(BufferError) -> Buffer {
        checkShape(address, length: length)
        return try cache.get(address, length: length) { () throws(BufferError) in
            Buffer(diskAddress: address, ownedLength: length)
        }.buffer.takeUnretainedValue()
    }

    /// The buffer at `address`, held and locked, read from the device (once) and checked
    /// by `verifier`'s read check.
    ///
    /// - Throws: `.readPastEnd` at end-of-device, `.systemCallFailed` for pread errors,
    ///   `.verificationFailed` naming the failed check.
    public func readBuffer(at address: DiskAddress, length: Int,
                           verifier: (any BufferVerifier)?) throws(BufferError) -> Buffer {
        let buffer = try getBuffer(at: address, length: length)
        if !buffer.isDone {
            do throws(BufferError) {
                try readFromDevice(buffer)
                if let verifier {
                    do { try verifier.verifyRead(buffer) } catch { throw BufferError.verificationFailed(error) }
                }
            } catch {
                buffer.markStale() // drop the bad bytes; the next read tries again
                release(buffer)
                throw error
            }
            buffer.markDone()
        }
        if let verifier, buffer.verifier == nil { buffer.verifier = verifier }
        return buffer
    }

    /// Asks the device to start reading `length` bytes at `address` into the page cache,
    /// for a `readBuffer` soon: a walk over many scattered blocks then waits for one read at
    /// a time no longer, the device serving the next ones meanwhile. A hint; nothing is
    /// cached here and nothing can fail.
    public func readAhead(at address: DiskAddress, length: Int) {
        guard address.byteOffset >= 0, length > 0, address.byteOffset < deviceSize else { return }
        system.readAhead(descriptor, Int64(address.byteOffset), min(length, deviceSize - address.byteOffset))
    }

    /// Writes a held buffer: the attached verifier's write check first (nothing is written
    /// if it fails), then pwrite; the buffer is then clean.
    ///
    /// - Throws: `.readOnlyTarget`, `.verificationFailed`, `.systemCallFailed`.
    public func writeBuffer(_ buffer: Buffer) throws(BufferError) {
        guard isWritable else {
            throw .readOnlyTarget(operation: "write \(buffer.diskAddress)", path: path)
        }
        if let verifier = buffer.verifier {
            do { try verifier.verifyWrite(buffer) } catch { throw .verificationFailed(error) }
        }
        var done = 0
        while done < buffer.length {
            let from = UnsafeRawBufferPointer(start: buffer.memory + done, count: buffer.length - done)
            switch system.pwrite(descriptor, from, Int64(buffer.diskAddress.byteOffset + done)) {
            case let .success(count) where count > 0:
                done += count
            case .success:
                throw .systemCallFailed(call: "pwrite", errno: Errno.noSpace.rawValue,
                                        address: buffer.diskAddress, length: buffer.length)
            case .failure(.interrupted):
                continue
            case let .failure(error):
                throw .systemCallFailed(call: "pwrite", errno: error.rawValue,
                                        address: buffer.diskAddress, length: buffer.length)
            }
        }
        buffer.clearDirty()
        buffer.markDone()
    }

    /// Flushes everything written to stable storage (fsync).
    public func sync() throws(BufferError) {
        guard isWritable else { throw .readOnlyTarget(operation: "sync", path: path) }
        while true {
            switch system.fsync(descriptor) {
            case .success: return
            case .failure(.interrupted): continue
            case let .failure(error):
                throw .systemCallFailed(call: "fsync", errno: error.rawValue, address: DiskAddress(0), length: deviceSize)
            }
        }
    }

    /// Fills a buffer from the device, continuing interrupted and short reads.
    private func readFromDevice(_ buffer: Buffer) throws(BufferError) {
        try readFully(into: UnsafeMutableRawBufferPointer(start: buffer.memory, count: buffer.length), at: buffer.diskAddress)
    }

    /// Reads `bytes.count` bytes at `address` into `bytes`, past the cache: for blocks read
    /// once and in bulk (an inode scan reads each inode block once, a run of them at a
    /// time), where a buffer per block would cost more than the read. Nothing is cached,
    /// and a cached buffer of the same blocks is neither used nor changed: read this way
    /// only blocks that this process does not write.
    ///
    /// - Throws: `.readPastEnd` when the device ends inside the range, `.systemCallFailed`.
    public func readUncached(into bytes: UnsafeMutableRawBufferPointer, at address: DiskAddress) throws(BufferError) {
        checkShape(address, length: bytes.count)
        try readFully(into: bytes, at: address)
    }

    private func readFully(into bytes: UnsafeMutableRawBufferPointer, at address: DiskAddress) throws(BufferError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let into = UnsafeMutableRawBufferPointer(start: base + done, count: bytes.count - done)
            switch system.pread(descriptor, into, Int64(address.byteOffset + done)) {
            case let .success(count) where count > 0:
                done += count
            case .success:
                throw .readPastEnd(address: address, length: bytes.count, bytesRead: done)
            case .failure(.interrupted):
                continue
            case let .failure(error):
                throw .systemCallFailed(call: "pread", errno: error.rawValue, address: address, length: bytes.count)
            }
        }
    }

    /// Buffers are whole sectors at sector-aligned addresses.
    private func checkShape(_ address: DiskAddress, length: Int) {
        let sectorUnits = Int64(sectorSize / DiskAddress.basicBlockSize)
        precondition(length > 0 && length % sectorSize == 0,
                     "buffer length \(length) is not a positive multiple of the sector size \(sectorSize)")
        precondition(address.sectors >= 0 && address.sectors % sectorUnits == 0,
                     "\(address) is not aligned to the sector size \(sectorSize)")
    }
}
