import Foundation
import XFSTestSupport

/// Runs the built `xfs-rmap` executable under a wall-clock limit and captures what it did.
///
/// The binary sits next to the test bundle (`swift test` builds it because this target
/// depends on it): the directory of `CommandLine.arguments[0]`, else `.build/debug` found
/// from this source file. Each run goes through `timeout -s KILL`, so a hang ends the run
/// (and fails the test) instead of the test process.
enum ToolRunner {
    /// What one run produced.
    struct Outcome: CustomStringConvertible {
        /// The exit status (137 when `timeout` killed a hang).
        var status: Int32
        /// Everything written to standard output.
        var stdout: String
        /// Everything written to standard error.
        var stderr: String
        /// Whether the wall-clock limit ended the run.
        var timedOut: Bool { status == 137 || status == 124 }
        /// The lines of standard error.
        var stderrLines: [Substring] { stderr.split(separator: "\n") }

        var description: String { "exit \(status), stderr: \(stderr.debugDescription), stdout: \(stdout.prefix(200).debugDescription)" }
    }

    /// The `xfs-rmap` executable.
    static let binary: String = {
        let fm = FileManager.default
        var candidates: [URL] = []
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = argv0.deletingLastPathComponent()
        // On macOS the test binary lives inside NAME.xctest/Contents/MacOS.
        for _ in 0 ..< 4 {
            candidates.append(dir.appendingPathComponent("xfs-rmap"))
            dir = dir.deletingLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/xfs-rmap"))
        return candidates.first { fm.isExecutableFile(atPath: $0.path) }?.path ?? candidates[0].path
    }()

    /// Runs `xfs-rmap arguments…` (as `user` through `runuser` when given), killed after
    /// `timeout` seconds.
    static func run(_ arguments: [String], timeout: Int = 20, user: String? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        var command = ["-s", "KILL", "\(timeout)"]
        if let user { command += ["runuser", "-u", user, "--"] }
        process.arguments = command + [binary] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no" // a crash reports tersely and quickly
        process.environment = environment
        let out = Pipe()
        // Standard error goes to a file so a long crash report can never block the child.
        let errPath = NSTemporaryDirectory() + "xfs-rmap-stderr-\(UUID().uuidString)"
        guard FileManager.default.createFile(atPath: errPath, contents: nil) else {
            throw Fixtures.Failure(description: "cannot create \(errPath)")
        }
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try err.close()
        let errors = try Data(contentsOf: URL(fileURLWithPath: errPath))
        return Outcome(status: process.terminationStatus,
                       stdout: String(decoding: output, as: UTF8.self),
                       stderr: String(decoding: errors, as: UTF8.self))
    }
}

/// A temporary directory for damaged images, removed with everything in it when freed.
final class ScratchDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "xfs-rmap-tool-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A path inside the directory.
    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// `xfs_db -x` (expert mode: writes, with CRCs recomputed unless told otherwise) on `image`.
@discardableResult
func xfsDBWrite(_ image: String, _ commands: [String]) throws -> String {
    try Fixtures.runTool("xfs_db", ["-x"] + commands.flatMap { ["-c", $0] } + [image])
}

/// One numeric field that `xfs_db -r` prints for `commands` + `print FIELD`.
func xfsDBNumber(_ image: String, _ commands: [String], _ field: String) throws -> UInt64 {
    let output = try XFSDB.run(image, commands + ["print \(field)"])
    guard let value = XFSDB.number(XFSDB.fields(output)[field]) else {
        throw Fixtures.Failure(description: "xfs_db printed no \(field): \(output)")
    }
    return value
}
