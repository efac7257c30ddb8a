#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization
import XFSBuffer

/// What `UndoSystemCalls.status` reports about an open file.
public struct FileStatus: Equatable, Sendable {
    /// The size in bytes (a block device's size from lseek to its end).
    public var size: Int64
    /// Whether the file is a block device (then it is opened with O_EXCL).
    public var isBlockDevice: Bool

    /// A status with these values.
    public init(size: Int64, isBlockDevice: Bool) {
        self.size = size
        self.isBlockDevice = isBlockDevice
    }
}

/// The system calls `UndoableWriter` and `UndoFile` make, as replaceable closures:
/// `.live` calls the kernel; tests substitute closures that fail (`failing(…)`).
///
/// Each closure makes one attempt; the callers own the policy (retrying EINTR, continuing
/// short transfers, turning errors into `UndoError`).
public struct UndoSystemCalls: Sendable {
    /// open(2) of a path with flags (O_CLOEXEC is added) and a creation mode.
    public var open: @Sendable (_ path: String, _ flags: Int32, _ mode: UInt32) -> Result<Int32, Errno>
    /// pread(2) of at most `count` bytes at a byte offset (fewer at end-of-file).
    public var pread: @Sendable (_ descriptor: Int32, _ count: Int, _ offset: Int64) -> Result<[UInt8], Errno>
    /// pwrite(2) of bytes at a byte offset; returns how many were written.
    public var pwrite: @Sendable (_ descriptor: Int32, _ bytes: ArraySlice<UInt8>, _ offset: Int64) -> Result<Int, Errno>
    /// fsync(2).
    public var fsync: @Sendable (_ descriptor: Int32) -> Result<Void, Errno>
    /// fstat(2): size and file type.
    public var status: @Sendable (_ descriptor: Int32) -> Result<FileStatus, Errno>
    /// close(2).
    public var close: @Sendable (_ descriptor: Int32) -> Void

    /// Makes a table from closures (tests usually start from `.live` and replace one).
    public init(
        open: @escaping @Sendable (String, Int32, UInt32) -> Result<Int32, Errno>,
        pread: @escaping @Sendable (Int32, Int, Int64) -> Result<[UInt8], Errno>,
        pwrite: @escaping @Sendable (Int32, ArraySlice<UInt8>, Int64) -> Result<Int, Errno>,
        fsync: @escaping @Sendable (Int32) -> Result<Void, Errno>,
        status: @escaping @Sendable (Int32) -> Result<FileStatus, Errno>,
        close: @escaping @Sendable (Int32) -> Void
    ) {
        self.open = open
        self.pread = pread
        self.pwrite = pwrite
        self.fsync = fsync
        self.status = status
        self.close = close
    }

    /// The real system calls.
    public static let live = UndoSystemCalls(
        open: { path, flags, mode in
            let descriptor = Glibc.open(path, flags | O_CLOEXEC, mode_t(mode))
            return descriptor >= 0 ? .success(descriptor) : .failure(Errno(errno))
        },
        pread: { descriptor, count, offset in RawBytes.pread(descriptor, count: count, offset: offset) },
        pwrite: { descriptor, bytes, offset in RawBytes.pwrite(descriptor, bytes, offset: offset) },
        fsync: { descriptor in Glibc.fsync(descriptor) == 0 ? .success(()) : .failure(Errno(errno)) },
        status: { descriptor in RawBytes.status(descriptor) },
        close: { descriptor in _ = Glibc.close(descriptor) })

    /// `base` with the `number`-th pwrite (1-based) to the file opened at exactly `path`
    /// failing with `error`, after writing the first `writingFirst` bytes of it (a torn
    /// write); every other call goes to `base`. Simulates a crash at that write: the writer
    /// stops there as a crashed process would.
    ///
    /// - Precondition: `number >= 1`, `writingFirst >= 0`.
    public static func failing(pwriteNumber number: Int, toPath path: String, writingFirst: Int = 0,
                               error: Errno = .ioError, base: UndoSystemCalls = .live) -> UndoSystemCalls {
        precondition(number >= 1, "pwrite numbers start at 1, not \(number)")
        precondition(writingFirst >= 0, "cannot write \(writingFirst) bytes first")
        /// The descriptors open on `path`, and how many pwrites they have seen together.
        struct Tracking { var descriptors: Set<Int32> = []; var writes = 0 }
        let tracking = Mutex(Tracking())
        var calls = base
        calls.open = { openedPath, flags, mode in
            let result = base.open(openedPath, flags, mode)
            if openedPath == path, case let .success(descriptor) = result {
                tracking.withLock { _ = $0.descriptors.insert(descriptor) }
            }
            return result
        }
        calls.pwrite = { descriptor, bytes, offset in
            let isFailing = tracking.withLock { state -> Bool in
                guard state.descriptors.contains(descriptor) else { return false }
                state.writes += 1
                return state.writes == number
            }
            guard isFailing else { return base.pwrite(descriptor, bytes, offset) }
            let torn = min(writingFirst, bytes.count)
            if torn > 0 { _ = base.pwrite(descriptor, bytes.prefix(torn), offset) }
            return .failure(error)
        }
        calls.close = { descriptor in
            tracking.withLock { _ = $0.descriptors.remove(descriptor) }
            base.close(descriptor)
        }
        return calls
    }
}
