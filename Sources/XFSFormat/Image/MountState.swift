import Glibc
import XFSBuffer

/// Whether an image path is in use by a mounted filesystem, as far as this process can see.
///
/// A mounted filesystem changes under a reader: a check of it shows damage that is only
/// changes in flight, and a tool that writes would corrupt it. Linux tells:
///
/// - for a regular file: whether a loop device is backed by it (each `/sys/block/loop*`
///   with a `loop/backing_file`, compared by device and inode through the loop device's
///   status, or through the backing path when the loop device cannot be opened), and
///   whether that loop device or a partition of it is mounted per `/proc/self/mountinfo`;
/// - for a block device: whether its device number, or a partition's, is mounted per
///   `/proc/self/mountinfo`.
///
/// A device no mount of this process's namespace shows may still be held by a mount
/// elsewhere (another namespace, a device-mapper table): an exclusive open (`O_EXCL`) of it
/// then fails with EBUSY, and the state is ``inUse(device:)``.
public enum MountState: Equatable, Sendable, CustomStringConvertible {
    /// No mount and no exclusive holder uses the image.
    case notMounted
    /// `device` (the image itself, or the loop device or partition over it) is mounted on
    /// `mountPoint`.
    case mounted(mountPoint: String, device: String)
    /// `device` is held exclusively (EBUSY on an `O_EXCL` open) though no mount of this
    /// namespace shows it: perhaps mounted elsewhere.
    case inUse(device: String)

    /// Whether the image is mounted or otherwise in use.
    public var isInUse: Bool { self != .notMounted }

    /// "not mounted", "mounted on MOUNTPOINT (DEVICE)" or "in use (DEVICE is held
    /// exclusively)".
    public var description: String {
        switch self {
        case .notMounted: "not mounted"
        case let .mounted(mountPoint, device): "mounted on \(mountPoint) (\(device))"
        case let .inUse(device): "in use (\(device) is held exclusively, perhaps by a mount in another namespace)"
        }
    }

    /// The mount state of the regular file or block device at `path` (symbolic links are
    /// followed).
    ///
    /// - Throws: `MountStateError` when `path` cannot be examined (missing, not a regular
    ///   file or block device) or `/proc/self/mountinfo` cannot be read.
    public static func of(path: String) throws(MountStateError) -> MountState {
        var status = stat()
        guard stat(path, &status) == 0 else { throw MountStateError(path: path, detail: "\(Errno(errno))") }
        let mounts = try MountTable.current()
        switch status.st_mode & S_IFMT {
        case S_IFREG:
            for loop in LoopDevice.all() where loop.isBacked(byDevice: UInt64(status.st_dev), inode: UInt64(status.st_ino)) {
                let state = BlockDevice(number: loop.number, path: loop.path).state(in: mounts)
                if state.isInUse { return state }
            }
            return .notMounted
        case S_IFBLK:
            return BlockDevice(number: DeviceNumber(UInt64(status.st_rdev)), path: path).state(in: mounts)
        default:
            throw MountStateError(path: path, detail: "is not a regular file or block device")
        }
    }
}

/// Why the mount state of a path could not be found.
public struct MountStateError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path examined.
    public var path: String
    /// What went wrong.
    public var detail: String

    /// An error about `path`.
    public init(path: String, detail: String) {
        self.path = path
        self.detail = detail
    }

    /// "PATH: DETAIL".
    public var description: String { "\(path): \(detail)" }
}

/// A device number split as the kernel prints it ("major:minor").
struct DeviceNumber: Hashable, CustomStringConvertible {
    var major: UInt32
    var minor: UInt32

    /// Splits a `dev_t` in glibc's encoding (12 bits of major and 8 of minor low, the rest high).
    init(_ dev: UInt64) {
        major = UInt32(truncatingIfNeeded: ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~UInt64(0xFFF)))
        minor = UInt32(truncatingIfNeeded: (dev & 0xFF) | ((dev >> 12) & ~UInt64(0xFF)))
    }

    init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    /// Parses "major:minor" (a sysfs `dev` file, a mountinfo field).
    init?(_ text: Substring) {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else { return nil }
        self.init(major: major, minor: minor)
    }

    var description: String { "\(major):\(minor)" }
}

/// The mounts of this process's namespace: `/proc/self/mountinfo`, parsed.
struct MountTable {
    /// One mount: its device number, mount point and source (the `mount` source field).
    struct Entry: Equatable {
        var device: DeviceNumber
        var mountPoint: String
        var source: String
    }

    var entries: [Entry]

    /// Reads and parses `/proc/self/mountinfo`.
    static func current() throws(MountStateError) -> MountTable {
        let path = "/proc/self/mountinfo"
        guard let text = SystemFile.read(path, limit: 64 << 20) else {
            throw MountStateError(path: path, detail: "cannot be read (\(Errno(errno)))")
        }
        return MountTable(parsing: text)
    }

    /// Parses mountinfo lines: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - TYPE
    /// SOURCE SUPEROPTIONS", with spaces, tabs, newlines and backslashes in paths written as
    /// octal escapes. Lines that do not parse are skipped.
    init(parsing text: String) {
        entries = text.split(separator: "\n").compactMap { line -> Entry? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count >= 10, let device = DeviceNumber(fields[2]),
                  let separator = fields[6...].firstIndex(of: "-"), separator + 2 < fields.count else { return nil }
            return Entry(device: device, mountPoint: Self.unescape(fields[4]), source: Self.unescape(fields[separator + 2]))
        }
    }

    /// The first mount of `device`, if any.
    func mount(of device: DeviceNumber) -> Entry? {
        entries.first { $0.device == device }
    }

    /// Undoes mountinfo's octal escapes ("\040" is a space).
    static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count, let value = Self.octal(utf8[(i + 1) ... (i + 3)]) {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The byte three octal digits name, or nil.
    private static func octal(_ digits: ArraySlice<UInt8>) -> UInt8? {
        guard digits.count == 3 else { return nil }
        var value = 0
        for d in digits {
            guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "7") else { return nil }
            value = value * 8 + Int(d - UInt8(ascii: "0"))
        }
        return value <= 255 ? UInt8(value) : nil
    }
}

/// A block device and its partitions, as sysfs lists them.
struct BlockDevice {
    var number: DeviceNumber
    /// The path it is known by (a /dev node), for messages and the exclusive open.
    var path: String

    /// The device and partition numbers: the device's own, then those sysfs lists under
    /// `/sys/dev/block/MAJ:MIN/` (each partition directory has a `partition` file).
    var numbersWithPartitions: [DeviceNumber] {
        let directory = "/sys/dev/block/\(number)"
        var numbers = [number]
        for name in SystemFile.directoryEntries(directory)
        where SystemFile.exists("\(directory)/\(name)/partition") {
            if let text = SystemFile.read("\(directory)/\(name)/dev", limit: 64),
               let partition = DeviceNumber(Substring(text.trimmingNewline)) {
                numbers.append(partition)
            }
        }
        return numbers
    }

    /// Mounted (the first mount of the device or a partition), else in use (an exclusive
    /// open fails with EBUSY), else not mounted.
    func state(in mounts: MountTable) -> MountState {
        for device in numbersWithPartitions {
            if let mount = mounts.mount(of: device) {
                return .mounted(mountPoint: mount.mountPoint, device: mount.source.hasPrefix("/") ? mount.source : path)
            }
        }
        let descriptor = open(path, O_RDONLY | O_EXCL | O_CLOEXEC)
        if descriptor >= 0 {
            close(descriptor)
            return .notMounted
        }
        return errno == EBUSY ? .inUse(device: path) : .notMounted
    }
}

/// A loop device that has a backing file.
struct LoopDevice {
    /// "loop3".
    var name: String
    var number: DeviceNumber
    /// The backing file as sysfs shows it (may end in " (deleted)").
    var backingFile: String

    /// The /dev node.
    var path: String { "/dev/\(name)" }

    /// Every bound loop device sysfs lists.
    static func all() -> [LoopDevice] {
        SystemFile.directoryEntries("/sys/block").filter { $0.hasPrefix("loop") }.sorted().compactMap { name in
            guard let backing = SystemFile.read("/sys/block/\(name)/loop/backing_file", limit: 8192),
                  let dev = SystemFile.read("/sys/block/\(name)/dev", limit: 64),
                  let number = DeviceNumber(Substring(dev.trimmingNewline)) else { return nil }
            return LoopDevice(name: name, number: number, backingFile: backing.trimmingNewline)
        }
    }

    /// Whether the backing file is the file with this device and inode: from the loop
    /// device's status (LOOP_GET_STATUS64), or when the node cannot be opened, from a stat
    /// of the backing path.
    func isBacked(byDevice device: UInt64, inode: UInt64) -> Bool {
        if let (backingDevice, backingInode) = statusDeviceAndInode() {
            return DeviceNumber(backingDevice) == DeviceNumber(device) && backingInode == inode
        }
        var status = stat()
        guard stat(backingFile, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }

    /// LOOP_GET_STATUS64: `struct loop_info64` starts with the backing file's device and
    /// inode, two native-endian u64 (the device in the kernel's "huge" encoding, which is
    /// glibc's for the numbers in use).
    private func statusDeviceAndInode() -> (UInt64, UInt64)? {
        let loopGetStatus64: UInt = 0x4C05
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        let info = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 8) // loop_info64 is 232 bytes
        defer { info.deallocate() }
        info.initializeMemory(as: UInt8.self, repeating: 0, count: 256)
        guard ioctl(descriptor, loopGetStatus64, info) == 0 else { return nil }
        return (info.load(fromByteOffset: 0, as: UInt64.self), info.load(fromByteOffset: 8, as: UInt64.self))
    }
}

/// Small reads of /proc and /sys.
enum SystemFile {
    /// The contents of `path` (at most `limit` bytes), or nil when it cannot be read.
    static func read(_ path: String, limit: Int) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes.prefix(limit), as: UTF8.self)
    }

    /// The names in directory `path` ("." and ".." left out); empty when it cannot be read.
    static func directoryEntries(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Whether `path` exists.
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}

extension String {
    /// The string without one trailing newline.
    fileprivate var trimmingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
