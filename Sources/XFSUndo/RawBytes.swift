#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import XFSBuffer

/// The only code in XFSUndo that touches unsafe pointers: the live pread, pwrite and
/// fstat calls, and CRC32c over a slice. Everything else works on `[UInt8]`.
///
/// - Warning: each function hands a pointer to the kernel or to C for the duration of one
///   call only; none lets a pointer escape.
enum RawBytes {
    /// The CRC32c of `bytes` (XFSBuffer's hardware-accelerated implementation).
    static func crc32c(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { CRC32C.checksum($0) }
    }

    /// One pread(2) of at most `count` bytes at `offset`; fewer bytes at end-of-file.
    static func pread(_ descriptor: Int32, count: Int, offset: Int64) -> Result<[UInt8], Errno> {
        precondition(count >= 0, "negative read length \(count)")
        if count == 0 { return .success([]) }
        var failure: Errno?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let transferred = Glibc.pread(descriptor, buffer.baseAddress, count, off_t(offset))
            if transferred < 0 {
                failure = Errno(errno)
                initialized = 0
            } else {
                initialized = transferred
            }
        }
        if let failure { return .failure(failure) }
        return .success(bytes)
    }

    /// One pwrite(2) of `bytes` at `offset`; returns how many bytes the kernel took.
    static func pwrite(_ descriptor: Int32, _ bytes: ArraySlice<UInt8>, offset: Int64) -> Result<Int, Errno> {
        let transferred = bytes.withUnsafeBytes { Glibc.pwrite(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
        return transferred >= 0 ? .success(transferred) : .failure(Errno(errno))
    }

    /// fstat(2): the size (for a block device, from lseek to the end) and the file type.
    static func status(_ descriptor: Int32) -> Result<FileStatus, Errno> {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .failure(Errno(errno)) }
        let isBlockDevice = (info.st_mode & S_IFMT) == S_IFBLK
        if !isBlockDevice { return .success(FileStatus(size: Int64(info.st_size), isBlockDevice: false)) }
        let end = lseek(descriptor, 0, SEEK_END)
        guard end >= 0 else { return .failure(Errno(errno)) }
        return .success(FileStatus(size: Int64(end), isBlockDevice: true))
    }
}
