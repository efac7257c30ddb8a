#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import XFSBuffer

/// An open file descriptor, closed when this value ends, with the I/O policy of the module:
/// EINTR retried, short transfers continued, failures turned into `UndoError`.
struct OpenFile: ~Copyable {
    /// The descriptor.
    let descriptor: Int32
    /// The path it was opened at (for errors).
    let path: String
    /// The system calls.
    let system: UndoSystemCalls

    /// Opens `path` with `flags` (and `mode` when creating).
    init(path: String, flags: Int32, mode: UInt32 = 0, system: UndoSystemCalls) throws(UndoError) {
        while true {
            switch system.open(path, flags, mode) {
            case let .success(descriptor):
                self.descriptor = descriptor
                self.path = path
                self.system = system
                return
            case .failure(.interrupted):
                continue
            case let .failure(error) where error.rawValue == EEXIST && flags & O_EXCL != 0 && flags & O_CREAT != 0:
                throw .undoFileExists(path: path)
            case let .failure(error) where error.rawValue == EBUSY && flags & O_EXCL != 0:
                throw .imageInUse(path: path, reason: "the block device is busy (mounted, or open exclusively)")
            case let .failure(error):
                throw .systemCallFailed(call: "open", path: path, offset: nil, errno: error)
            }
        }
    }

    /// Opens an image for reading, or for reading and writing; a block device is opened
    /// with O_EXCL, which Linux refuses while the device is mounted.
    static func image(path: String, writable: Bool, system: UndoSystemCalls) throws(UndoError) -> OpenFile {
        let mode = writable ? O_RDWR : O_RDONLY
        let plain = try OpenFile(path: path, flags: mode, system: system)
        guard try plain.status().isBlockDevice else { return plain }
        return try OpenFile(path: path, flags: mode | O_EXCL, system: system)
    }

    deinit { system.close(descriptor) }

    /// fstat: the size and the file type.
    func status() throws(UndoError) -> FileStatus {
        switch system.status(descriptor) {
        case let .success(status): return status
        case let .failure(error): throw .systemCallFailed(call: "fstat", path: path, offset: nil, errno: error)
        }
    }

    /// Up to `count` bytes at `offset`: all of them unless the file ends first.
    ///
    /// - Precondition: `count >= 0`, and the caller has bounded `count` by the file's size.
    func read(count: Int, at offset: Int64) throws(UndoError) -> [UInt8] {
        precondition(count >= 0 && offset >= 0, "bad read of \(count) bytes at \(offset)")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            let at = offset + Int64(bytes.count)
            switch system.pread(descriptor, count - bytes.count, at) {
            case let .success(chunk) where !chunk.isEmpty:
                bytes += chunk.prefix(count - bytes.count)
            case .success:
                return bytes
            case .failure(.interrupted):
                continue
            case let .failure(error):
                throw .systemCallFailed(call: "pread", path: path, offset: at, errno: error)
            }
        }
        return bytes
    }

    /// Writes all of `bytes` at `offset`.
    func write(_ bytes: ArraySlice<UInt8>, at offset: Int64) throws(UndoError) {
        var done = 0
        while done < bytes.count {
            let at = offset + Int64(done)
            switch system.pwrite(descriptor, bytes.dropFirst(done), at) {
            case let .success(count) where count > 0:
                done += count
            case .success:
                throw .systemCallFailed(call: "pwrite", path: path, offset: at, errno: .noSpace)
            case .failure(.interrupted):
                continue
            case let .failure(error):
                throw .systemCallFailed(call: "pwrite", path: path, offset: at, errno: error)
            }
        }
    }

    /// Flushes the file's data and metadata to stable storage.
    func sync() throws(UndoError) {
        while true {
            switch system.fsync(descriptor) {
            case .success: return
            case .failure(.interrupted): continue
            case let .failure(error): throw .systemCallFailed(call: "fsync", path: path, offset: nil, errno: error)
            }
        }
    }
}
