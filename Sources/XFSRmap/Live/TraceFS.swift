// The kernel's tracing filesystem, the one place of the live layer that makes system calls.
//
// Design note. Everything the live check asks of tracefs is small files written and read
// by path (an instance's `trace_clock`, `buffer_size_kb`, event `filter` and `enable`,
// `per_cpu/cpuN/stats`), directories made and removed (the instance itself), and one
// stream read (`trace_pipe`). `TraceFS` does exactly those, with errno turned into
// `LiveCheckError.tracing` naming the path, so that no other type of the layer touches a
// descriptor. A write is one `write(2)` of the whole text, as tracefs wants it; reads of
// `trace_pipe` wait (poll) a short while for text, so the reader can be stopped.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why the live check could not run, or could not reach a verdict.
public enum LiveCheckError: Error, CustomStringConvertible, Equatable {
    /// tracefs (or a file in it) could not be used: `path`, what was tried, errno's text.
    case tracing(path: String, detail: String)
    /// The kernel lacks what the check needs (an event, a field).
    case unsupported(String)
    /// The trace stream lost events, or reported a failure: the trees are incomplete.
    case incompleteStream(String)
    /// An update from the kernel could not be applied: the snapshot and the stream disagree.
    case inconsistentStream(String)
    /// The mounted filesystem could not be read (bulkstat, bmap, getfsmap, statfs).
    case filesystem(path: String, detail: String)
    /// The kernel itself found the metadata corrupt (EFSCORRUPTED) while answering.
    case corruptionReported(path: String, detail: String)

    /// A sentence saying what could not be done and why.
    public var description: String {
        switch self {
        case let .tracing(path, detail): "tracefs: \(path): \(detail)"
        case let .unsupported(what): "this kernel cannot be traced for rmap updates: \(what)"
        case let .incompleteStream(why): "the trace of rmap updates is incomplete: \(why)"
        case let .inconsistentStream(why): "a traced rmap update does not fit the trees: \(why)"
        case let .filesystem(path, detail): "\(path): \(detail)"
        case let .corruptionReported(path, detail): "\(path): \(detail)"
        }
    }
}

/// Access to a mounted tracefs by path: small reads and writes, directories, and a stream.
public struct TraceFS: Sendable {
    /// The tracefs mount (`/sys/kernel/tracing`, or the one under debugfs).
    public let root: String

    /// The tracefs at the first of the usual places that has an `events/xfs` directory, or
    /// an error saying none was found (and how to mount it).
    public static func find() throws -> TraceFS {
        for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
            if access(root + "/events/xfs", F_OK) == 0 { return TraceFS(root: root) }
        }
        if access("/sys/kernel/tracing/events", F_OK) == 0 {
            throw LiveCheckError.unsupported("tracefs has no xfs events (is the xfs module loaded?)")
        }
        throw LiveCheckError.tracing(path: "/sys/kernel/tracing",
                                     detail: "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)")
    }

    /// tracefs at `root`.
    public init(root: String) { self.root = root }

    /// Whether `path` (relative to the root) exists.
    public func exists(_ path: String) -> Bool { access(root + "/" + path, F_OK) == 0 }

    /// The whole text of the file at `path` (relative to the root).
    public func read(_ path: String) throws -> String {
        let full = root + "/" + path
        let fd = open(full, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(full, "open") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(full, "read")
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to the file at `path` in one `write(2)` (truncating, as `echo >` does).
    public func write(_ path: String, _ text: String) throws {
        let full = root + "/" + path
        let fd = open(full, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw failure(full, "open") }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        if bytes.isEmpty { bytes = [0x0a] }
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw failure(full, "write '\(text)'") }
    }

    /// Opens the file at `path` for writing many times (a `trace_marker`), with
    /// `write(to:_:path:)`; the caller closes it with `closeStream`.
    public func openForWriting(_ path: String) throws -> Int32 {
        let fd = open(root + "/" + path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(root + "/" + path, "open") }
        return fd
    }

    /// Writes `text` to `fd` (from `openForWriting`, of the file at `path`) in one `write(2)`.
    public func write(to fd: Int32, _ text: String, path: String) throws {
        var text = text
        let n = text.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == text.utf8.count else { throw failure(root + "/" + path, "write '\(text)'") }
    }

    /// Makes the directory `path` (a tracing instance).
    public func makeDirectory(_ path: String) throws {
        guard mkdir(root + "/" + path, 0o755) == 0 else { throw failure(root + "/" + path, "mkdir") }
    }

    /// Removes the directory `path` (a tracing instance).
    public func removeDirectory(_ path: String) throws {
        guard rmdir(root + "/" + path) == 0 else { throw failure(root + "/" + path, "rmdir") }
    }

    /// Opens `path` for reading as a stream; the caller reads it with `readChunk` and closes
    /// it with `closeStream`.
    public func openStream(_ path: String) throws -> Int32 {
        let fd = open(root + "/" + path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(root + "/" + path, "open") }
        return fd
    }

    /// Reads up to `buffer.count` bytes from the stream `fd` into `buffer`, waiting at most
    /// `timeoutMS` for the kernel to have some: the number read, 0 at the stream's end, nil
    /// when it had none by then.
    public func readChunk(_ fd: Int32, into buffer: inout [UInt8], timeoutMS: Int32 = 100) throws -> Int? {
        var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&waiting, 1, timeoutMS)
        if ready < 0 {
            if errno == EINTR { return nil }
            throw failure("trace stream", "poll")
        }
        if ready == 0 { return nil }
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n >= 0 { return n }
            if errno != EINTR { throw failure("trace stream", "read") }
        }
    }

    /// The device number a trace filter names for `path`: a block device's `st_rdev`, or
    /// the `st_dev` of a file or directory on a mounted filesystem (its data device).
    public static func deviceNumber(of path: String) throws -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw LiveCheckError.filesystem(path: path, detail: "stat failed: \(String(cString: strerror(errno)))")
        }
        return (info.st_mode & S_IFMT) == S_IFBLK ? UInt64(info.st_rdev) : UInt64(info.st_dev)
    }

    /// Closes a stream from `openStream`.
    public func closeStream(_ fd: Int32) { close(fd) }

    private func failure(_ path: String, _ what: String) -> LiveCheckError {
        .tracing(path: path, detail: "\(what) failed: \(String(cString: strerror(errno)))")
    }
}
