#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CXFSShims
import Synchronization

extension MemoryFile {
    /// The one owner of this layer's descriptor, virtual window and system calls.
    ///
    /// Layout of the window (reserved once, `windowSize` bytes, never moved):
    ///
    ///     window                         window + mapped            window + windowSize
    ///     ├── MAP_SHARED view of the file ──┤── PROT_NONE reservation ──────────┤
    ///     │  offsets [0, mapped) = file     │  no memory, no swap reservation   │
    ///
    /// The file's size always equals `mapped`: both grow together, only in `grow(toCover:)`,
    /// under `growthLock`, the file first (ftruncate) and the view second, so no mapped page
    /// ever lies past end-of-file (no SIGBUS) and a store never extends the file behind the
    /// growth path's back. Pages already mapped are never remapped, so their addresses stay
    /// valid while other threads grow the view.
    ///
    /// - Warning: every pointer handed out points into `window` and is valid until this
    ///   object is deinitialized, that is, while the owning `MemoryFile` is alive.
    final class _Mapping: @unchecked Sendable {
        /// The backing file's descriptor (closed in deinit).
        let descriptor: Int32
        /// The reserved window; `window + offset` is the byte at `offset` of the file.
        let window: UnsafeMutableRawPointer
        /// The window's size: the file's maximum size, rounded up to a page.
        let windowSize: Int
        /// Bytes of the window mapped onto the file (= the file's size). Read without the
        /// lock (acquire) on every page access; written with the lock held (release).
        private let mappedBytes = Atomic<Int>(0)
        /// Serializes growth of the file and of the view.
        private let growthLock = Mutex<Void>(())

        /// The smallest growth step: 2 MiB, one huge page.
        static let minimumGrowth = 2 << 20

        /// Takes ownership of `descriptor` (a fresh, empty file) and reserves the window.
        init(descriptor: Int32, windowSize: Int) throws(MemoryFileError) {
            assert(windowSize > 0 && windowSize % MemoryFile.pageSize == 0)
            let reservation = mmap(nil, windowSize, PROT_NONE,
                                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let reservation, reservation != MAP_FAILED else {
                let code = errno
                close(descriptor)
                throw .systemCallFailed(call: "mmap(window reservation)", errno: code,
                                        offset: 0, length: windowSize)
            }
            self.descriptor = descriptor
            self.window = reservation
            self.windowSize = windowSize
        }

        deinit {
            munmap(window, windowSize)
            close(descriptor)
        }

        // MARK: Creating backings

        /// A memfd named `name`: CLOEXEC and NOEXEC_SEAL, or CLOEXEC alone on kernels that
        /// reject NOEXEC_SEAL with EINVAL (before 6.3).
        static func createMemfd(name: String) -> Result<Int32, MemoryFileError> {
            var descriptor = cxfs_memfd_create(name, CXFS_MFD_CLOEXEC | CXFS_MFD_NOEXEC_SEAL)
            if descriptor < 0 && errno == EINVAL {
                descriptor = cxfs_memfd_create(name, CXFS_MFD_CLOEXEC)
            }
            guard descriptor >= 0 else {
                return .failure(.systemCallFailed(call: "memfd_create", errno: errno, offset: 0, length: 0))
            }
            return restrictMode(of: descriptor)
        }

        /// An unnamed O_TMPFILE in `directory`.
        static func createTemporaryFile(in directory: String) -> Result<Int32, MemoryFileError> {
            let descriptor = cxfs_open_tmpfile(directory)
            guard descriptor >= 0 else {
                return .failure(.systemCallFailed(call: "open(\(directory), O_TMPFILE)", errno: errno,
                                                  offset: 0, length: 0))
            }
            return restrictMode(of: descriptor)
        }

        /// Sets mode 0600 on a fresh descriptor (closing it on failure).
        private static func restrictMode(of descriptor: Int32) -> Result<Int32, MemoryFileError> {
            guard fchmod(descriptor, 0o600) == 0 else {
                let code = errno
                close(descriptor)
                return .failure(.systemCallFailed(call: "fchmod(0600)", errno: code, offset: 0, length: 0))
            }
            return .success(descriptor)
        }

        // MARK: Byte ranges

        /// Fills `destination` from the file at `offset`; bytes past end-of-file (never
        /// written) read as zeros. pread on shmem does not allocate pages for holes.
        func load(into destination: UnsafeMutableRawBufferPointer, at offset: Int) throws(MemoryFileError) {
            guard let base = destination.baseAddress else { return }
            var done = 0
            while done < destination.count {
                let count = pread(descriptor, base + done, destination.count - done, off_t(offset + done))
                if count > 0 {
                    done += count
                } else if count == 0 {
                    (base + done).initializeMemory(as: UInt8.self, repeating: 0, count: destination.count - done)
                    return
                } else if errno != EINTR {
                    throw .systemCallFailed(call: "pread", errno: errno, offset: offset + done,
                                            length: destination.count - done)
                }
            }
        }

        /// Writes `source` to the file at `offset`. The caller has grown the file to cover
        /// the range, so pwrite never changes the file's size here.
        func store(_ source: UnsafeRawBufferPointer, at offset: Int) throws(MemoryFileError) {
            guard let base = source.baseAddress else { return }
            var done = 0
            while done < source.count {
                let count = pwrite(descriptor, base + done, source.count - done, off_t(offset + done))
                if count > 0 {
                    done += count
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    // A zero-byte write makes no progress: on tmpfs that means out of space.
                    throw .systemCallFailed(call: "pwrite", errno: count == 0 ? ENOSPC : errno,
                                            offset: offset + done, length: source.count - done)
                }
            }
        }

        /// Punches a hole over the range, returning its pages; the file's size is kept.
        func punchHole(offset: Int, length: Int) throws(MemoryFileError) {
            guard length > 0 else { return }
            let mapped = mappedBytes.load(ordering: .acquiring)
            guard offset < mapped else { return } // nothing was ever stored there
            let end = min(offset + length, mapped)
            while cxfs_fallocate(descriptor, CXFS_FALLOC_FL_PUNCH_HOLE | CXFS_FALLOC_FL_KEEP_SIZE,
                                 Int64(offset), Int64(end - offset)) != 0 {
                guard errno == EINTR else {
                    throw .systemCallFailed(call: "fallocate(PUNCH_HOLE|KEEP_SIZE)", errno: errno,
                                            offset: offset, length: end - offset)
                }
            }
        }

        // MARK: Accounting

        /// The file's status (fstat).
        func status() throws(MemoryFileError) -> stat {
            var status = stat()
            guard fstat(descriptor, &status) == 0 else {
                throw .systemCallFailed(call: "fstat", errno: errno, offset: 0, length: 0)
            }
            return status
        }

        /// Bytes of memory (or disk) the whole file holds: st_blocks × 512.
        func allocatedBytes() throws(MemoryFileError) -> Int {
            Int(try status().st_blocks) * 512
        }

        /// Bytes of `[offset, offset + length)` holding data, found by walking SEEK_DATA and
        /// SEEK_HOLE. Counts whole pages (the granularity of shmem's accounting).
        func dataBytes(offset: Int, length: Int) throws(MemoryFileError) -> Int {
            let end = min(offset + length, mappedBytes.load(ordering: .acquiring))
            var position = offset
            var total = 0
            while position < end {
                let dataStart = lseek(descriptor, off_t(position), CXFS_SEEK_DATA)
                if dataStart < 0 {
                    if errno == ENXIO { break } // no data at or after position
                    throw .systemCallFailed(call: "lseek(SEEK_DATA)", errno: errno, offset: position, length: end - position)
                }
                if Int(dataStart) >= end { break }
                let holeStart = lseek(descriptor, dataStart, CXFS_SEEK_HOLE)
                if holeStart < 0 {
                    throw .systemCallFailed(call: "lseek(SEEK_HOLE)", errno: errno, offset: Int(dataStart), length: end - Int(dataStart))
                }
                total += min(Int(holeStart), end) - Int(dataStart)
                position = Int(holeStart)
            }
            return total
        }

        // MARK: Pages

        /// The address of the byte at `offset`, growing the mapped view (and the file) so
        /// that `[offset, offset + length)` is mapped. Without growth this is one atomic
        /// load and an addition: no system call.
        @inline(__always)
        func address(at offset: Int, covering length: Int) throws(MemoryFileError) -> UnsafeMutableRawPointer {
            if offset + length > mappedBytes.load(ordering: .acquiring) {
                try grow(toCover: offset + length)
            }
            return window + offset
        }

        /// Grows the file, then the view, to at least `end` bytes: doubling, at least
        /// `minimumGrowth` at a time, never past the window.
        @inline(never)
        func grow(toCover end: Int) throws(MemoryFileError) {
            assert(end <= windowSize, "growth to \(end) past the window of \(windowSize)")
            let result: Result<Void, MemoryFileError> = growthLock.withLock { _ in
                let mapped = mappedBytes.load(ordering: .relaxed)
                guard end > mapped else { return .success(()) } // another thread grew it
                let page = MemoryFile.pageSize
                let wanted = max(end, mapped * 2, mapped + MemoryFile._Mapping.minimumGrowth)
                let newSize = min((wanted + page - 1) / page * page, windowSize)
                while ftruncate(descriptor, off_t(newSize)) != 0 {
                    guard errno == EINTR else {
                        return .failure(.systemCallFailed(call: "ftruncate", errno: errno, offset: 0, length: newSize))
                    }
                }
                let view = mmap(window + mapped, newSize - mapped, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_FIXED, descriptor, off_t(mapped))
                guard view != MAP_FAILED else {
                    return .failure(.systemCallFailed(call: "mmap(MAP_SHARED|MAP_FIXED)", errno: errno,
                                                      offset: mapped, length: newSize - mapped))
                }
                assert(view == window + mapped, "MAP_FIXED placed the view elsewhere")
                mappedBytes.store(newSize, ordering: .releasing)
                return .success(())
            }
            try result.get()
        }

        /// Bytes currently mapped (and the file's size).
        var mappedSize: Int { mappedBytes.load(ordering: .acquiring) }
    }
}
