import XFSMemoryFile

/// Why a buffer could not be got, read or written.
public enum BufferError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A verifier rejected the buffer's bytes.
    case verificationFailed(VerificationFailure)
    /// The cache holds a buffer at this address with a different length.
    case lengthMismatch(address: DiskAddress, cachedLength: Int, requestedLength: Int)
    /// The device ended before the buffer did.
    case readPastEnd(address: DiskAddress, length: Int, bytesRead: Int)
    /// A system call failed on the buffer's range.
    case systemCallFailed(call: String, errno: Int32, address: DiskAddress, length: Int)
    /// Opening the device failed.
    case openFailed(path: String, errno: Int32)
    /// A write was asked of a target opened read-only.
    case readOnlyTarget(operation: String, path: String)
    /// A memory target's buffer must be exactly one page at a page-aligned address.
    case misalignedMemoryBuffer(address: DiskAddress, length: Int, pageSize: Int)
    /// The address lies past the end of the target.
    case beyondTarget(address: DiskAddress, length: Int, targetSize: Int)
    /// The memory file behind a memory target failed.
    case memoryFile(MemoryFileError)

    /// A sentence naming what failed and where.
    public var description: String {
        switch self {
        case let .verificationFailed(failure):
            return "verification failed: \(failure)"
        case let .lengthMismatch(address, cachedLength, requestedLength):
            return "buffer at \(address) is cached with length \(cachedLength), not \(requestedLength)"
        case let .readPastEnd(address, length, bytesRead):
            return "read past end of device at \(address) (length \(length), got \(bytesRead) bytes)"
        case let .systemCallFailed(call, errno, address, length):
            return "\(call) failed at \(address), length \(length): \(Errno(errno))"
        case let .openFailed(path, errno):
            return "cannot open \(path): \(Errno(errno))"
        case let .readOnlyTarget(operation, path):
            return "cannot \(operation): \(path) was opened read-only"
        case let .misalignedMemoryBuffer(address, length, pageSize):
            return "memory buffer at \(address), length \(length) is not one page of \(pageSize) bytes at a page-aligned address"
        case let .beyondTarget(address, length, targetSize):
            return "buffer at \(address), length \(length) lies past the end of the target (\(targetSize) bytes)"
        case let .memoryFile(error):
            return error.description
        }
    }
}
