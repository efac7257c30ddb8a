/// Why a memory file operation failed: which system call (with its errno) at which
/// offset and size, or which limit was crossed.
public enum MemoryFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed. `offset` and `length` describe the byte range it worked on
    /// (zero when it had none).
    case systemCallFailed(call: String, errno: Int32, offset: Int, length: Int)
    /// The range `[offset, offset + length)` reaches past the file's (or the partition's)
    /// maximum size.
    case beyondMaximumSize(offset: Int, length: Int, maximumSize: Int)
    /// No backing could be created; each attempt is listed with its error.
    case noBackingAvailable(attempts: [String])
    /// The shared file has no room left for a partition of `requested` bytes.
    case partitionSpaceExhausted(requested: Int, available: Int)

    /// A sentence naming what failed, where, and why.
    public var description: String {
        switch self {
        case let .systemCallFailed(call, errno, offset, length):
            return "memory file: \(call) failed at offset \(offset), length \(length): "
                + "\(MemoryFileError.errnoName(errno))"
        case let .beyondMaximumSize(offset, length, maximumSize):
            return "memory file: range at offset \(offset), length \(length) reaches past "
                + "the maximum size of \(maximumSize) bytes"
        case let .noBackingAvailable(attempts):
            return "memory file: no backing could be created (" + attempts.joined(separator: "; ") + ")"
        case let .partitionSpaceExhausted(requested, available):
            return "memory file: no room for a partition of \(requested) bytes "
                + "(\(available) bytes left below the maximum size)"
        }
    }

    /// The C name and message of an errno value, e.g. "ENOSPC (No space left on device)".
    static func errnoName(_ code: Int32) -> String {
        let names: [Int32: String] = [
            1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 9: "EBADF", 12: "ENOMEM",
            13: "EACCES", 14: "EFAULT", 17: "EEXIST", 20: "ENOTDIR", 21: "EISDIR",
            22: "EINVAL", 24: "EMFILE", 27: "EFBIG", 28: "ENOSPC", 30: "EROFS",
            38: "ENOSYS", 95: "EOPNOTSUPP",
        ]
        let message = String(cString: strerror(code))
        return "\(names[code] ?? "errno \(code)") (\(message))"
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
