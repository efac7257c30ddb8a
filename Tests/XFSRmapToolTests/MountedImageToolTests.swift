import Foundation
import Testing
import XFSTestSupport

/// The JSON document `xfs-rmap check --json` printed.
func checkJSON(_ run: ToolRunner.Outcome) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run)")
}

@Suite("xfs-rmap on mounted images", .enabled(if: LoopMount.isAvailable, "\(LoopMount.unavailableReason ?? "")"))
struct MountedImageToolTests {
    @Test("check, scan and dump refuse a mounted image (by its path or its loop device): exit 2, one line naming the mount point")
    func refused() throws {
        let copy = try Fixtures.writableCopy("mixed-1k")
        defer { unlink(copy) }
        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        let mountPoint = URL(fileURLWithPath: mount.mountPoint).resolvingSymlinksInPath().path
        for path in [copy, mount.dataDevice] {
            for command in ["check", "scan", "dump"] {
                let run = try ToolRunner.run([command, path])
                #expect(run.status == 2 && run.stdout.isEmpty, "\(command) \(path): \(run)")
                #expect(run.stderrLines.count == 1, "\(command): \(run)")
                #expect(run.stderr == "xfs-rmap: \(path) is mounted on \(mountPoint) (\(mount.dataDevice)): unmount it first, "
                    + "or pass --force-mounted (a filesystem in use changes while it is read, so the results may show false damage)\n",
                    "\(command): \(run)")
            }
        }
    }

    @Test("with --force-mounted they go on: check's text and JSON, and scan's and dump's stderr, say the image is mounted")
    func forced() throws {
        let copy = try Fixtures.writableCopy("mixed-1k")
        defer { unlink(copy) }
        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        let mountPoint = URL(fileURLWithPath: mount.mountPoint).resolvingSymlinksInPath().path
        let warning = "\(copy) is mounted on \(mountPoint) (\(mount.dataDevice)): it may change while it is read, "
            + "so the results may show false damage"

        let text = try ToolRunner.run(["check", copy, "--force-mounted"], timeout: 60)
        #expect(text.status == 0 || text.status == 1, "\(text)")
        let lines = text.stdout.split(separator: "\n")
        #expect(lines.first.map(String.init) == "warning: \(warning)", "\(text)")
        #expect(lines.last?.hasPrefix("rmap: ") == true, "\(text)")

        let json = try checkJSON(try ToolRunner.run(["check", "--json", "--force-mounted", copy], timeout: 60))
        let state = try #require(json["mount"] as? [String: Any])
        #expect(state["state"] as? String == "mounted")
        #expect(state["mount_point"] as? String == mountPoint)
        #expect(state["device"] as? String == mount.dataDevice)

        for command in ["scan", "dump"] {
            let run = try ToolRunner.run([command, "--force-mounted", copy], timeout: 60)
            #expect(run.status == 0, "\(command): \(run)")
            #expect(run.stdout.hasPrefix("agno\tstartblock"), "\(command): \(run)")
            #expect(run.stderrLines.first.map(String.init) == "xfs-rmap: warning: \(warning)", "\(command): \(run)")
        }
    }

    @Test("a loop device held exclusively by another opener is refused as in use")
    func inUse() throws {
        let copy = try Fixtures.writableCopy("empty-4k")
        defer { unlink(copy) }
        let device = try Fixtures.runTool("losetup", ["--find", "--show", copy]).trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Fixtures.runTool("losetup", ["--detach", device]) }
        #expect(try ToolRunner.run(["check", copy]).status == 0)
        let holder = open(device, O_RDONLY | O_EXCL)
        try #require(holder >= 0, "O_EXCL open of \(device): errno \(errno)")
        defer { close(holder) }
        let run = try ToolRunner.run(["check", copy])
        #expect(run.status == 2 && run.stdout.isEmpty, "\(run)")
        #expect(run.stderr.hasPrefix("xfs-rmap: \(copy) is in use (\(device) is held exclusively"), "\(run)")
        let json = try checkJSON(try ToolRunner.run(["check", "--json", "--force-mounted", copy]))
        let state = try #require(json["mount"] as? [String: Any])
        #expect(state["state"] as? String == "in_use" && state["device"] as? String == device && state["mount_point"] is NSNull)
    }
}
