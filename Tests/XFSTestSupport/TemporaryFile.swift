#if canImport(Glibc)
import Glibc
#endif

/// A uniquely named file under $TMPDIR (or /tmp), removed when this value is freed: a
/// small disk image for buffer and format tests.
public final class TemporaryFile: Sendable {
    /// The file's path.
    public let path: String

    /// Creates the file with `contents`.
    public init(contents: [UInt8], prefix: String = "xfs-test") {
        let parent = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(parent)/\(prefix)-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        precondition(descriptor >= 0, "mkstemp in \(parent) failed: errno \(errno)")
        path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var written = 0
        while written < contents.count {
            let count = contents.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, contents.count - written) }
            precondition(count > 0, "writing \(path) failed: errno \(errno)")
            written += count
        }
        close(descriptor)
    }

    /// The file's current bytes.
    public func contents() -> [UInt8] {
        let descriptor = open(path, O_RDONLY)
        precondition(descriptor >= 0, "opening \(path) failed: errno \(errno)")
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            precondition(count >= 0, "reading \(path) failed: errno \(errno)")
            if count == 0 { return bytes }
            bytes += chunk[..<count]
        }
    }

    deinit { unlink(path) }
}
