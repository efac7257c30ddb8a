#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An errno value, so that system-call results can be `Result<_, Errno>`.
public struct Errno: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The C errno value.
    public var rawValue: Int32

    /// Wraps a C errno value.
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    /// EINTR: the call was interrupted by a signal and should be retried.
    public static let interrupted = Errno(EINTR)
    /// EIO: an I/O error.
    public static let ioError = Errno(EIO)
    /// ENOSPC: no space left on the device.
    public static let noSpace = Errno(ENOSPC)

    /// The current thread's errno.
    static var current: Errno { Errno(errno) }

    /// "EIO (Input/output error)" style text.
    public var description: String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF",
            EACCES: "EACCES", EISDIR: "EISDIR", EINVAL: "EINVAL", ENOSPC: "ENOSPC",
            EROFS: "EROFS", ENOMEM: "ENOMEM",
        ]
        return "\(names[rawValue] ?? "errno \(rawValue)") (\(String(cString: strerror(rawValue))))"
    }
}

/// The system calls a `FileTarget` makes, as replaceable closures: `.live` calls the
/// kernel; tests substitute closures that fail, interrupt or transfer short.
///
/// Each closure makes one attempt; `FileTarget` owns the policy (retrying EINTR,
/// continuing short transfers, turning errors into `BufferError`).
public struct FileTargetSystemCalls: Sendable {
    /// open(2) of a path with flags; returns the descriptor.
    public var open: @Sendable (_ path: String, _ flags: Int32) -> Result<Int32, Errno>
    /// pread(2) into the buffer at a byte offset; returns the bytes read (0 at end-of-file).
    public var pread: @Sendable (_ descriptor: Int32, _ into: UnsafeMutableRawBufferPointer, _ offset: Int64) -> Result<Int, Errno>
    /// pwrite(2) from the buffer at a byte offset; returns the bytes written.
    public var pwrite: @Sendable (_ descriptor: Int32, _ from: UnsafeRawBufferPointer, _ offset: Int64) -> Result<Int, Errno>
    /// fsync(2).
    public var fsync: @Sendable (_ descriptor: Int32) -> Result<Void, Errno>
    /// The device's size in bytes (lseek to the end works for files and block devices).
    public var size: @Sendable (_ descriptor: Int32) -> Result<Int, Errno>
    /// close(2).
    public var close: @Sendable (_ descriptor: Int32) -> Void
    /// posix_fadvise(2) with POSIX_FADV_WILLNEED: start reading a byte range into the page
    /// cache without waiting for it. A hint: its failure changes nothing.
    public var readAhead: @Sendable (_ descriptor: Int32, _ offset: Int64, _ length: Int) -> Void

    /// Makes a table from closures (tests usually start from `.live` and replace one).
    public init(
        open: @escaping @Sendable (String, Int32) -> Result<Int32, Errno>,
        pread: @escaping @Sendable (Int32, UnsafeMutableRawBufferPointer, Int64) -> Result<Int, Errno>,
        pwrite: @escaping @Sendable (Int32, UnsafeRawBufferPointer, Int64) -> Result<Int, Errno>,
        fsync: @escaping @Sendable (Int32) -> Result<Void, Errno>,
        size: @escaping @Sendable (Int32) -> Result<Int, Errno>,
        close: @escaping @Sendable (Int32) -> Void,
        readAhead: @escaping @Sendable (Int32, Int64, Int) -> Void = { _, _, _ in }
    ) {
        self.open = open
        self.pread = pread
        self.pwrite = pwrite
        self.fsync = fsync
        self.size = size
        self.close = close
        self.readAhead = readAhead
    }

    /// The real system calls.
    public static let live = FileTargetSystemCalls(
        open: { path, flags in
            let descriptor = Glibc.open(path, flags | O_CLOEXEC)
            return descriptor >= 0 ? .success(descriptor) : .failure(.current)
        },
        pread: { descriptor, buffer, offset in
            let count = Glibc.pread(descriptor, buffer.baseAddress, buffer.count, off_t(offset))
            return count >= 0 ? .success(count) : .failure(.current)
        },
        pwrite: { descriptor, buffer, offset in
            let count = Glibc.pwrite(descriptor, buffer.baseAddress, buffer.count, off_t(offset))
            return count >= 0 ? .success(count) : .failure(.current)
        },
        fsync: { descriptor in
            Glibc.fsync(descriptor) == 0 ? .success(()) : .failure(.current)
        },
        size: { descriptor in
            let end = lseek(descriptor, 0, SEEK_END)
            return end >= 0 ? .success(Int(end)) : .failure(.current)
        },
        close: { descriptor in _ = Glibc.close(descriptor) },
        readAhead: { descriptor, offset, length in
            _ = posix_fadvise(descriptor, off_t(offset), off_t(length), POSIX_FADV_WILLNEED)
        })
}
