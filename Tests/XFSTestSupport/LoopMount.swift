import Foundation

/// A filesystem image mounted through loop devices (its data device, and its external log
/// device when it has one) on a fresh directory; unmounted and detached by ``unmount()`` or
/// when freed.
///
/// Mounts use `nouuid`, since tests mount copies of the same fixture at once. Needs root,
/// loop devices and the `mount`/`losetup` commands; ``LoopMount/unavailableReason`` says
/// when they are missing.
public final class LoopMount {
    /// The directory the filesystem is mounted on.
    public let mountPoint: String
    /// The loop device over the image.
    public let dataDevice: String
    /// The loop device over the external log image, if any.
    public let logDevice: String?
    private var mounted = true

    /// Attaches `image` (and `logImage`) to loop devices and mounts the filesystem on a new
    /// directory under $TMPDIR, or under `directoryName` there when given; `readOnly` makes
    /// read-only loop devices and a read-only mount (the image is never written).
    /// `beforeMount` runs with the data loop device's path once it exists and before the
    /// mount (to start tracing the device, say); when it throws, nothing is left behind.
    public init(image: String, logImage: String? = nil, directoryName: String? = nil, readOnly: Bool = false,
                beforeMount: ((String) throws -> Void)? = nil) throws {
        let directory = NSTemporaryDirectory() + (directoryName ?? "xfs-rmap-mnt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let loopFlags = readOnly ? ["--find", "--show", "--read-only"] : ["--find", "--show"]
        let data = try Fixtures.runTool("losetup", loopFlags + [image]).trimmingCharacters(in: .whitespacesAndNewlines)
        var log: String?
        do {
            if let logImage {
                log = try Fixtures.runTool("losetup", loopFlags + [logImage]).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            let options = (readOnly ? "ro,nouuid" : "nouuid") + (log.map { ",logdev=\($0)" } ?? "")
            try beforeMount?(data)
            try Fixtures.runTool("mount", ["-t", "xfs", "-o", options, data, directory])
        } catch {
            if let log { _ = try? Fixtures.runTool("losetup", ["--detach", log]) }
            _ = try? Fixtures.runTool("losetup", ["--detach", data])
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        mountPoint = directory
        dataDevice = data
        logDevice = log
    }

    /// Runs a shell command with the mount point as `$M` (and the current directory).
    @discardableResult
    public func shell(_ script: String) throws -> String {
        try Fixtures.runTool("sh", ["-c", "cd \"$M\" && " + script, "sh"], environment: ["M": mountPoint])
    }

    /// Shuts the filesystem down without flushing its log (`xfs_io -x -c shutdown`), so that
    /// what the log holds is not written in place: unmounting then leaves the log dirty.
    public func shutDown() throws {
        try Fixtures.runTool("xfs_io", ["-x", "-c", "shutdown", mountPoint])
    }

    /// Unmounts, detaches the loop devices and removes the directory (once).
    public func unmount() throws {
        guard mounted else { return }
        mounted = false
        try Fixtures.runTool("umount", [mountPoint])
        try Fixtures.runTool("losetup", ["--detach", dataDevice])
        if let logDevice { try Fixtures.runTool("losetup", ["--detach", logDevice]) }
        try FileManager.default.removeItem(atPath: mountPoint)
    }

    deinit {
        if mounted {
            _ = try? Fixtures.runTool("umount", ["-l", mountPoint])
            _ = try? Fixtures.runTool("losetup", ["--detach", dataDevice])
            if let logDevice { _ = try? Fixtures.runTool("losetup", ["--detach", logDevice]) }
            try? FileManager.default.removeItem(atPath: mountPoint)
        }
    }

    /// Why loop mounts cannot be made here, or nil when they can: found once per process by
    /// mounting and unmounting a copy of the smallest fixture.
    public static let unavailableReason: String? = {
        guard getuid() == 0 else { return "loop mounts need root" }
        for tool in ["losetup", "mount", "umount", "xfs_io"] where !Fixtures.hasTool(tool) {
            return "\(tool) is not installed"
        }
        do {
            let copy = try Fixtures.writableCopy("empty-4k")
            defer { unlink(copy) }
            try LoopMount(image: copy).unmount()
            return nil
        } catch {
            return "a loop mount of a fixture copy failed: \(error)"
        }
    }()

    /// Whether loop mounts work here.
    public static var isAvailable: Bool { unavailableReason == nil }
}

/// Images whose log is dirty, made by the kernel: a copy mounted, written to, synced, written
/// to again and shut down before its log reached the disk in place.
public enum DirtyLogImages {
    /// Files written before the sync (forcing the log) and after it.
    static let workload = """
        mkdir -p dirty && for i in $(seq 1 40); do echo "file $i" > dirty/f$i; done && \
        dd if=/dev/urandom of=dirty/big bs=64k count=16 status=none && \
        sync -f . && for i in $(seq 41 60); do echo "file $i" > dirty/f$i; done && rm dirty/f1 dirty/f2
        """

    /// A new scratch copy of fixture `name` with a dirty log; the caller deletes it. Throws
    /// unless `xfs_logprint -t` calls the result dirty.
    public static func make(from name: String) throws -> String {
        let copy = try Fixtures.writableCopy(name)
        do {
            try dirty(copy)
        } catch {
            unlink(copy)
            throw error
        }
        return copy
    }

    /// Mounts `image` (with its external log image, if any), writes files, shuts it down and
    /// unmounts it. Throws unless the log is then dirty per `xfs_logprint -t`.
    public static func dirty(_ image: String, logImage: String? = nil) throws {
        let mount = try LoopMount(image: image, logImage: logImage)
        try mount.shell(workload)
        try mount.shutDown()
        try mount.unmount()
        guard let printed = try LogPrint.headAndTail(image, logImage: logImage), !printed.clean else {
            throw Fixtures.Failure(description: "\(image): the log is not dirty after a shutdown")
        }
    }
}

/// `xfs_logprint -t`'s view of a log: its head and tail blocks and whether it is clean.
public struct LogPrint: Equatable, CustomStringConvertible {
    /// The tail block.
    public var tail: UInt32
    /// The head block.
    public var head: UInt32
    /// Whether xfs_logprint says <CLEAN>.
    public var clean: Bool

    /// A view from its parts.
    public init(tail: UInt32, head: UInt32, clean: Bool) {
        self.tail = tail
        self.head = head
        self.clean = clean
    }

    /// "tail T head H CLEAN|DIRTY".
    public var description: String { "tail \(tail) head \(head) \(clean ? "CLEAN" : "DIRTY")" }

    /// Where the internal log of `image` lies, in basic blocks, as xfs_logprint prints it
    /// ("daddr: D length: L").
    public static func region(_ image: String) throws -> (daddr: UInt64, length: UInt64) {
        let output = try Fixtures.runToolAnyStatus("timeout", ["-s", "KILL", "60", "xfs_logprint", "-n", "-s", "0", image])
        let words = output.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard let d = words.firstIndex(of: "daddr:"), let l = words.firstIndex(of: "length:"),
              d + 1 < words.count, l + 1 < words.count,
              let daddr = UInt64(words[d + 1]), let length = UInt64(words[l + 1]) else {
            throw Fixtures.Failure(description: "xfs_logprint names no log region: \(output.prefix(300))")
        }
        return (daddr, length)
    }

    /// Overwrites the internal log of `image` with `bytes(length)` (the log's length in bytes).
    public static func overwriteLog(_ image: String, with bytes: (Int) -> [UInt8]) throws {
        let (daddr, length) = try region(image)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: image))
        defer { try? handle.close() }
        try handle.seek(toOffset: daddr * 512)
        try handle.write(contentsOf: Data(bytes(Int(length) * 512)))
    }

    /// The "log tail: T head: H state: <…>" line of `xfs_logprint -t` on `image` (with its
    /// external log), or nil when xfs_logprint cannot find head and tail. Runs under a
    /// 60-second limit.
    public static func headAndTail(_ image: String, logImage: String? = nil) throws -> LogPrint? {
        let arguments = ["-s", "KILL", "60", "xfs_logprint", "-t"] + (logImage.map { ["-l", $0] } ?? []) + [image]
        let output = try Fixtures.runToolAnyStatus("timeout", arguments)
        guard let line = output.split(separator: "\n").first(where: { $0.contains("log tail:") }) else { return nil }
        let words = line.split(separator: " ")
        guard let t = words.firstIndex(of: "tail:"), let h = words.firstIndex(of: "head:"), t + 1 < words.count, h + 1 < words.count,
              let tail = UInt32(words[t + 1]), let head = UInt32(words[h + 1]) else {
            throw Fixtures.Failure(description: "cannot parse xfs_logprint's line: \(line)")
        }
        return LogPrint(tail: tail, head: head, clean: line.contains("<CLEAN>"))
    }
}
