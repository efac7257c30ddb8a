import Foundation

/// The small, real XFS images in `Tests/Fixtures` and the text files that describe them.
///
/// Images are stored zstd-compressed (`NAME.img.zst`). ``imagePath(_:)`` decompresses one
/// (with the `zstd` command, which writes holes, so a 1 GiB image costs only its used blocks)
/// into a cache directory at most once per test process, and returns its path. Treat that
/// file as read-only; tests that modify an image take a ``writableCopy(_:)``.
public enum Fixtures {
    /// Errors from locating or unpacking fixtures.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public var description: String
        /// A failure described by `description`.
        public init(description: String) { self.description = description }
    }

    /// The `Tests/Fixtures` directory, found from this source file's location.
    public static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    /// Decompressed image paths by name. An `NSLock` (a pthread mutex) rather than
    /// `Synchronization.Mutex`, which Thread Sanitizer cannot see on Linux.
    nonisolated(unsafe) private static var cache: [String: String] = [:]
    private static let cacheLock = NSLock()

    /// The path of a fixture file by its full name (e.g. "mixed-4k.img.json").
    public static func url(_ fileName: String) -> URL { directory.appendingPathComponent(fileName) }

    /// The path of the decompressed image `name` (e.g. "mixed-4k" for `mixed-4k.img.zst`).
    ///
    /// Images are decompressed into `$TMPDIR/xfs-rmap-fixtures-<uid>-<checkout>/`, named
    /// after the compressed file's size and modification time, so later test processes reuse
    /// them and a changed fixture gets a fresh copy. `<checkout>` is a hash of this
    /// checkout's fixture directory: each clone or worktree has its own copies, so what
    /// another one's tests do with theirs (a loop mount makes the tool refuse an image) never
    /// reaches these. Each is written under a per-process temporary
    /// name and then renamed, so no process ever sees a partial file. Within a process the
    /// lookup runs once per name.
    public static func imagePath(_ name: String) throws -> String {
        try cacheLock.withLock {
            if let p = cache[name] { return p }
            let source = url("\(name).img.zst")
            let attributes = try FileManager.default.attributesOfItem(atPath: source.path)
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            let mtime = Int64((attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
            let dir = URL(fileURLWithPath: NSTemporaryDirectory())
                .appendingPathComponent("xfs-rmap-fixtures-\(getuid())-\(checkoutHash)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let target = dir.appendingPathComponent("\(name)-\(size)-\(mtime).img")
            if !FileManager.default.fileExists(atPath: target.path) {
                let partial = dir.appendingPathComponent("\(name).\(getpid()).img.tmp")
                try runTool("zstd", ["-d", "-q", "-f", "-o", partial.path, source.path])
                guard rename(partial.path, target.path) == 0 else {
                    throw Failure(description: "cannot rename \(partial.path) to \(target.path): errno \(errno)")
                }
            }
            cache[name] = target.path
            return target.path
        }
    }

    /// A stable hash (FNV-1a, 32 bits, hex) of the fixture directory's path.
    private static let checkoutHash: String = {
        var hash: UInt32 = 0x811C_9DC5
        for byte in directory.path.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
        return String(hash, radix: 16)
    }()

    /// A fresh writable copy of image `name` (sparse), in its own temporary file; the caller
    /// deletes it when done.
    public static func writableCopy(_ name: String) throws -> String {
        let source = try imagePath(name)
        let copy = NSTemporaryDirectory() + "/xfs-rmap-\(name)-\(UUID().uuidString).img"
        try runTool("cp", ["--sparse=always", source, copy])
        return copy
    }

    /// The decompressed text of `NAME.img.rmap.tsv.zst`.
    public static func rmapText(_ name: String) throws -> String {
        try runTool("zstd", ["-d", "-q", "-c", url("\(name).img.rmap.tsv.zst").path])
    }

    /// The contents of `NAME.img.json` (how the image was made, its record count, …).
    public static func metadata(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: url("\(name).img.json"))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(description: "\(name).img.json is not a JSON object")
        }
        return object
    }

    /// Runs a tool found on `PATH` (with `environment` added to this process's), returning
    /// its standard output; throws on a nonzero exit.
    @discardableResult
    public static func runTool(_ tool: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\(tool) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): "
                + (String(data: errors, encoding: .utf8) ?? ""))
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Runs a tool found on `PATH`, returning its standard output and then its standard
    /// error, whatever its exit status.
    public static func runToolAnyStatus(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let out = Pipe()
        let errorFile = NSTemporaryDirectory() + "xfs-rmap-tool-stderr-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: errorFile, contents: nil) else {
            throw Failure(description: "cannot create \(errorFile)")
        }
        defer { unlink(errorFile) }
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errorFile))
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try err.close()
        let errors = try Data(contentsOf: URL(fileURLWithPath: errorFile))
        return String(decoding: output, as: UTF8.self) + String(decoding: errors, as: UTF8.self)
    }

    /// Whether a tool is on `PATH`.
    public static func hasTool(_ tool: String) -> Bool {
        (try? runTool("sh", ["-c", "command -v \(tool)"])) != nil
    }
}

/// Read-only random access to an image file.
public final class ImageFile: Sendable {
    private let descriptor: Int32
    /// The file's path.
    public let path: String

    /// Opens `path` read-only.
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Fixtures.Failure(description: "cannot open \(path): errno \(errno)") }
        descriptor = fd
        self.path = path
    }

    deinit { close(descriptor) }

    /// `count` bytes at byte `offset` (fewer at the end of the file).
    public func read(at offset: UInt64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(offset)) }
        guard n >= 0 else { throw Fixtures.Failure(description: "pread \(path) at \(offset): errno \(errno)") }
        return Array(bytes.prefix(n))
    }
}

/// Runs `xfs_db -r` on an image and parses what `print` shows.
public enum XFSDB {
    /// Whether xfs_db is installed.
    public static let isAvailable: Bool = Fixtures.hasTool("xfs_db")

    /// The output of `xfs_db -r -c c1 -c c2 … image`.
    public static func run(_ image: String, _ commands: [String]) throws -> String {
        try Fixtures.runTool("xfs_db", ["-r"] + commands.flatMap { ["-c", $0] } + [image])
    }

    /// The `field = value` lines of `xfs_db` output as a dictionary (later lines win).
    public static func fields(_ output: String) -> [String: String] {
        var result: [String: String] = [:]
        for line in output.split(separator: "\n") {
            guard let eq = line.range(of: " = ") else { continue }
            result[String(line[..<eq.lowerBound])] = String(line[eq.upperBound...])
        }
        return result
    }

    /// An xfs_db number: decimal, "0x…" hex, "0…" octal (modes), or "null" (all ones); nil otherwise. A trailing
    /// annotation such as " (correct)" is ignored.
    public static func number(_ text: String?) -> UInt64? {
        guard let text else { return nil }
        let word = text.split(separator: " ").first.map(String.init) ?? ""
        if word == "null" { return UInt64.max }
        if word.hasPrefix("0x") { return UInt64(word.dropFirst(2), radix: 16) }
        if word.hasPrefix("-") { return Int64(word).map { UInt64(bitPattern: $0) } }
        if word.count > 1, word.hasPrefix("0") { return UInt64(word.dropFirst(), radix: 8) }
        return UInt64(word)
    }
}
