import ArgumentParser
import Glibc
import XFSBuffer
import XFSFormat
import XFSRmap

/// An error that ends the tool with a one-line message on stderr and exit code 2 ("could
/// not check", as `xfs_repair -n` uses it).
struct ToolFailure: Error, CustomStringConvertible {
    var description: String

    /// Opens an image (with its external log device, if given), turning any failure into a
    /// one-line message naming the file.
    static func opening(_ path: String, logDevice: String? = nil,
                        cacheCapacity: Int = XFSImage.defaultCacheCapacity) throws -> XFSImage {
        do {
            return try XFSImage(path: path, logDevicePath: logDevice, cacheCapacity: cacheCapacity)
        } catch let error as XFSFormatError where error.location == path || error.location == logDevice {
            throw ToolFailure(description: error.description)
        } catch BufferError.openFailed(let failed, let code) {
            throw ToolFailure(description: "\(failed): cannot open: \(Errno(code))")
        } catch {
            let text = "\(error)"
            throw ToolFailure(description: text.hasPrefix(path) ? text : "\(path): \(text)")
        }
    }
}

/// The tool's exit for errors: code 2.
extension ParsableCommand {
    /// Ends the tool with exit code 2 and `message` as one line on stderr; with `json`, the
    /// message also goes to stdout as `{"error": MESSAGE}`.
    static func exitCouldNotCheck(_ message: String, json: Bool = false) -> Never {
        if json { printJSONError(message) }
        var stderr = StandardError()
        stderr.write("xfs-rmap: \(message)\n")
        Glibc.exit(2)
    }

    /// Prints `{"error": MESSAGE}` and a newline on stdout.
    static func printJSONError(_ message: String) {
        var output = StandardOutput()
        output.write("{\"error\": \(CheckJSON.string(message))}\n")
        output.flush()
    }
}

/// A command with a `--json` flag: when it fails (exit 2) with `--json`, stdout still gets a
/// JSON document, `{"error": MESSAGE}`.
protocol JSONOutputCommand {
    /// Whether `--json` was given.
    var json: Bool { get }
}

/// What the raw arguments say before they are parsed (a usage error leaves nothing else).
enum ToolArguments {
    /// The subcommands whose `--json` output must stay JSON on a usage error.
    static let jsonCommands: Set<String> = ["check", "rebuild"]

    /// Whether `arguments` (without the program name) name `check` or `rebuild` and hold
    /// `--json` before any `--`.
    static func wantsJSONError<C: Collection>(_ arguments: C) -> Bool where C.Element == String {
        let options = arguments.prefix { $0 != "--" }
        guard let command = options.first(where: { !$0.hasPrefix("-") }), jsonCommands.contains(command) else { return false }
        return options.contains("--json")
    }
}

/// The AGs a command works on: all, or the one `--ag` names.
func selectedAGs(_ ag: UInt32?, in image: XFSImage) throws -> [UInt32] {
    let count = image.geometry.agCount
    guard let ag else { return Array(0..<count) }
    guard ag < count else { throw ToolFailure(description: "--ag \(ag): the filesystem has \(count) AGs (0...\(count - 1))") }
    return [ag]
}

/// Runs one job per AG on up to `threads` threads (`XFSRmap.ParallelAGs`) and returns the
/// results in AG order; the first error in AG order is thrown, prefixed with its AG unless
/// it names one.
func forEachAG<T>(_ ags: [UInt32], threads: Int, _ body: @Sendable (UInt32) throws -> T) throws -> [T] {
    try zip(ags, ParallelAGs.results(ags, threads: threads, body)).map { agno, result in
        do {
            return try result.get()
        } catch {
            let text = "\(error)"
            throw ToolFailure(description: text.hasPrefix("AG ") ? text : "AG \(agno): \(text)")
        }
    }
}

/// Buffered standard output (large writes, no per-line system call).
struct StandardOutput {
    private var pending: [UInt8] = []

    mutating func write(_ text: String) {
        pending.append(contentsOf: text.utf8)
        if pending.count >= 1 << 20 { flush() }
    }

    /// Writes `bytes` after whatever is pending (large arrays go out without a copy).
    mutating func write(bytes: [UInt8]) {
        if bytes.count < 1 << 16 {
            pending.append(contentsOf: bytes)
            if pending.count >= 1 << 20 { flush() }
            return
        }
        flush()
        Self.writeAll(bytes)
    }

    /// Appends one record line in the record text format, formatted straight into the
    /// pending bytes.
    mutating func writeRecord(agno: UInt32, _ record: RmapRecord) {
        RmapText.appendLine(agno: agno, record, to: &pending)
        if pending.count >= 1 << 20 { flush() }
    }

    mutating func flush() {
        Self.writeAll(pending)
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes all of `bytes` to descriptor 1, retrying on EINTR; gives up quietly when
    /// stdout is closed (a pipe into head).
    private static func writeAll(_ array: [UInt8]) {
        array.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(1, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return // stdout closed (a pipe into head): nothing more to say
                }
                offset += n
            }
        }
    }
}

/// Unbuffered standard error.
struct StandardError {
    mutating func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = Glibc.write(2, bytes.baseAddress, bytes.count) }
    }
}

/// The options every command that reads an image takes.
struct ImageOptions: ParsableArguments {
    @Argument(help: "The XFS image file or block device (opened read-only).")
    var image: String

    @Option(help: "Only this allocation group.")
    var ag: UInt32?

    @Option(help: ArgumentHelp("The external log device of a filesystem made with mkfs.xfs -l logdev=... (as xfs_repair -l).",
                               valueName: "logdev"))
    var logdev: String?

    @Flag(help: "Read the image even when a mounted filesystem uses it (the results may then show false damage).")
    var forceMounted = false

    /// Opens the image (refusing one a mounted filesystem uses, unless --force-mounted) and
    /// resolves `--ag`; when forced, a warning on stderr says the image is in use. The
    /// image caches at most `cacheCapacity` bytes of blocks.
    func open(cacheCapacity: Int = XFSImage.defaultCacheCapacity) throws -> (XFSImage, [UInt32]) {
        let opened = try openImage(cacheCapacity: cacheCapacity)
        var stderr = StandardError()
        for warning in opened.mountWarnings { stderr.write("xfs-rmap: warning: \(warning)\n") }
        return (opened.image, opened.ags)
    }

    /// Opens the image as `open()` does, returning what was found in use instead of
    /// printing it.
    func openImage(cacheCapacity: Int = XFSImage.defaultCacheCapacity) throws -> OpenedImage {
        let image = try ToolFailure.opening(self.image, logDevice: logdev, cacheCapacity: cacheCapacity)
        let inUse = try MountCheck.devicesInUse([self.image] + (logdev.map { [$0] } ?? []), force: forceMounted)
        return OpenedImage(image: image, ags: try selectedAGs(ag, in: image), inUse: inUse)
    }
}

/// Whether `path` names a directory (following symbolic links).
func isDirectory(_ path: String) -> Bool {
    var status = stat()
    return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR
}

/// `value` with `places` decimal places (the benchmarks' figures): "12.5", "0.07".
func decimal(_ value: Double, places: Int) -> String {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let scaled = (value * scale).rounded()
    guard scaled.isFinite, abs(scaled) < 1e15 else { return "\(value)" }
    let units = Int(scaled), unit = Int(scale)
    let whole = units / unit, fraction = String(abs(units % unit))
    let sign = units < 0 && whole == 0 ? "-" : ""
    return places == 0 ? "\(whole)" : "\(sign)\(whole)." + String(repeating: "0", count: places - fraction.count) + fraction
}

/// How many threads a command uses.
struct ThreadOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Use at most this many threads (one per core unless set).", valueName: "n"))
    var threads: Int = ParallelAGs.defaultThreads

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be 1 or more, not \(threads)") }
    }
}

/// Where the commands that scan keep their in-memory btrees, and how many threads they use.
struct ScanOptions: ParsableArguments {
    @OptionGroup var threadOptions: ThreadOptions

    @Option(help: ArgumentHelp(
        "Keep the in-memory btrees in an unnamed file in this directory (on a disk, for filesystems whose "
            + "records do not fit in memory) instead of in memory; observations then go into the trees one by one.",
        valueName: "dir"))
    var memoryDir: String?

    var threads: Int { threadOptions.threads }

    func validate() throws {
        if let memoryDir, !isDirectory(memoryDir) {
            throw ValidationError("--memory-dir \(memoryDir): not a directory")
        }
    }

    /// A scanner for `image` as these options say.
    func scanner(for image: XFSImage) throws -> RmapScanner {
        do {
            return try RmapScanner(image: image, stashing: memoryDir == nil ? .sortedBulkLoad : .perObservation,
                                   threads: threads, memoryDirectory: memoryDir)
        } catch {
            throw ToolFailure(description: memoryDir.map { "--memory-dir \($0): \(error)" } ?? "\(error)")
        }
    }
}

/// The progress option of the commands that scan.
struct ProgressOptions: ParsableArguments {
    @Flag(help: "Show progress on stderr (on by default when stderr is a terminal).")
    var progress = false
}
