import Foundation
import Testing
import XFSFormat
import XFSTestSupport

@Suite("mount state of images and devices, with real loop mounts")
struct MountStateTests {
    @Test("a loop-mounted copy is mounted through its path, a hard link, a symbolic link and its loop device; not after unmount",
          .enabled(if: LoopMount.isAvailable, "\(LoopMount.unavailableReason ?? "")"))
    func loopMounted() throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        let hardLink = copy + ".hard"
        let symbolicLink = copy + ".symbolic"
        #expect(link(copy, hardLink) == 0 && symlink(copy, symbolicLink) == 0)
        defer { unlink(hardLink); unlink(symbolicLink) }
        let other = try Fixtures.writableCopy("mixed-4k") // the same bytes, another inode
        defer { unlink(other) }
        // A space and a tab in the mount point: mountinfo escapes them (\040, \011).
        let mount = try LoopMount(image: copy, directoryName: "xfs-rmap mnt\t\(UUID().uuidString)")
        let mountPoint = URL(fileURLWithPath: mount.mountPoint).resolvingSymlinksInPath().path
        let expected = MountState.mounted(mountPoint: mountPoint, device: mount.dataDevice)
        for path in [copy, hardLink, symbolicLink, mount.dataDevice] {
            #expect(try MountState.of(path: path) == expected, "\(path)")
        }
        #expect(try MountState.of(path: other) == .notMounted)
        #expect(expected.description == "mounted on \(mountPoint) (\(mount.dataDevice))")
        try mount.unmount()
        for path in [copy, hardLink] { #expect(try MountState.of(path: path) == .notMounted, "\(path)") }
    }

    @Test("a loop device held exclusively (O_EXCL) but mounted nowhere here is in use; attached alone, it is not",
          .enabled(if: LoopMount.isAvailable, "\(LoopMount.unavailableReason ?? "")"))
    func heldExclusively() throws {
        let copy = try Fixtures.writableCopy("empty-4k")
        defer { unlink(copy) }
        let device = try Fixtures.runTool("losetup", ["--find", "--show", copy]).trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Fixtures.runTool("losetup", ["--detach", device]) }
        #expect(try MountState.of(path: copy) == .notMounted)
        #expect(try MountState.of(path: device) == .notMounted)
        let holder = open(device, O_RDONLY | O_EXCL)
        try #require(holder >= 0, "O_EXCL open of \(device): errno \(errno)")
        #expect(try MountState.of(path: copy) == .inUse(device: device))
        #expect(try MountState.of(path: device) == .inUse(device: device))
        close(holder)
        #expect(try MountState.of(path: copy) == .notMounted)
    }

    @Test("a path that is missing or not a file or block device is an error naming it")
    func badPaths() throws {
        let missing = NSTemporaryDirectory() + "xfs-rmap-missing-\(UUID().uuidString)"
        #expect(throws: MountStateError(path: missing, detail: "ENOENT (No such file or directory)")) {
            try MountState.of(path: missing)
        }
        #expect(throws: MountStateError(path: "/proc", detail: "is not a regular file or block device")) {
            try MountState.of(path: "/proc")
        }
        // A regular file no loop device is over.
        let file = TemporaryFile(contents: [0])
        #expect(try MountState.of(path: file.path) == .notMounted)
    }
}
