import Foundation
import Testing
import XFSTestSupport

// `xfs-rmap check --online MOUNTPOINT` against the real kernel: a kernel-made image mounted
// and written to by scripts/online-writers.py for the whole check, a mounted image whose
// rmapbt has one damaged record (made with xfs_db, as corruptxfs.py rec-owner does), what
// the check refuses, and Ctrl-C.

/// Why the online tests cannot run here (loop mounts, tracefs with the xfs events, python3),
/// or nil.
private let onlineUnavailableReason: String? = {
    if let reason = LoopMount.unavailableReason { return reason }
    if access("/sys/kernel/tracing/events/xfs", F_OK) != 0 {
        _ = try? Fixtures.runTool("mount", ["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
    }
    if access("/sys/kernel/tracing/events/xfs/xfs_rmap_map/format", F_OK) != 0 {
        return "tracefs with the xfs rmap tracepoints is not available at /sys/kernel/tracing"
    }
    return Fixtures.hasTool("python3") ? nil : "python3 (for scripts/online-writers.py) is not installed"
}()

/// `scripts/online-writers.py` of this checkout.
private let writersScript = Fixtures.directory.deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("scripts/online-writers.py").path

/// The writers script running on a mount point until `stop()`.
private final class Writers {
    let process = Process()
    let stopFile = NSTemporaryDirectory() + "xfs-rmap-writers-stop-\(UUID().uuidString)"
    let output = Pipe()

    init(on directory: String, seed: Int, rate: Int = 200) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", writersScript, directory, "--seed", "\(seed)", "--writers", "2", "--stop-file", stopFile, "--rate", "\(rate)"]
        process.standardOutput = output
        try process.run()
    }

    /// Stops the writers; returns their JSON summary line.
    func stop() -> [String: Any] {
        FileManager.default.createFile(atPath: stopFile, contents: nil)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        unlink(stopFile)
        return (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? ["output": String(decoding: data, as: UTF8.self)]
    }

    deinit {
        if process.isRunning {
            FileManager.default.createFile(atPath: stopFile, contents: nil)
            process.waitUntilExit()
        }
        unlink(stopFile)
    }
}

/// The tracing instances a process of `pid` left.
private func instances(of pid: Int32) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/tracing/instances")) ?? [])
        .filter { $0.hasPrefix("xfs-rmap-\(pid)-") }
}

@Suite("xfs-rmap check --online", .serialized,
       .enabled(if: onlineUnavailableReason == nil, "\(onlineUnavailableReason ?? "")"))
struct OnlineCheckToolTests {
    @Test("a kernel-made image written to for the whole check: exit 0, thousands of live updates applied (text and JSON)")
    func concurrentWriters() throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        // The writers' rate follows the checker's speed: one check of the image at rest takes
        // a second or two here, ten times that and more under Thread Sanitizer, whose trace
        // reader would fall ever further behind writers at full rate. At a rate inversely
        // proportional to the check's time, each check sees about as many updates.
        let started = Date()
        let atRest = try ToolRunner.run(["check", "--online", mount.mountPoint], timeout: 300)
        let restSeconds = Date().timeIntervalSince(started)
        #expect(atRest.status == 0, "\(atRest)")
        let rate = max(5, min(200, Int(400 / max(restSeconds, 1))))
        print("check --online at rest: \(restSeconds) s; writers at \(rate) operations/s each")
        let writers = try Writers(on: mount.mountPoint, seed: 21, rate: rate)
        Thread.sleep(forTimeInterval: 1)

        let json = try ToolRunner.run(["check", "--online", "--json", "--progress", mount.mountPoint], timeout: 300)
        let text = try ToolRunner.run(["check", "--online", mount.mountPoint], timeout: 300)
        // How many updates a check applies depends on how long it takes (a few seconds on an
        // idle machine, less the faster the scan): more checks run, while the writers go on,
        // until thousands have been applied in all (each must be consistent and apply some).
        var more: [Int] = []
        func appliedCount(_ run: ToolRunner.Outcome) -> Int {
            let line = run.stdout.split(separator: "\n").first { $0.hasPrefix("live: ") }
            return line.flatMap { $0.split(separator: " ").dropFirst(5).first.flatMap { Int($0) } } ?? 0
        }
        let firstTwo = appliedCount(text) + ((try? JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            .flatMap { ($0["live_updates"] as? [String: Any])?["applied"] as? Int } ?? 0)
        while firstTwo + more.reduce(0, +) < 2000 && more.count < 8 {
            let again = try ToolRunner.run(["check", "--online", mount.mountPoint], timeout: 300)
            #expect(again.status == 0 && again.stdout.contains("rmap (online): consistent in 4 AGs"), "\(again)")
            more.append(appliedCount(again))
        }
        let written = writers.stop()
        print("writers: \(written)\ncheck --online: \(text.stdout)")
        #expect(written["failed"] as? Int == 0, "\(written)")
        #expect((written["ops"] as? Int ?? 0) > 1000, "the writers kept changing the filesystem: \(written)")

        #expect(json.status == 0, "\(json)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json)")
        #expect(document["consistent"] as? Bool == true && document["online"] as? Bool == true)
        let live = try #require(document["live_updates"] as? [String: Any])
        let appliedJSON = live["applied"] as? Int ?? 0
        #expect(appliedJSON > 0, "live updates applied: \(live)")
        #expect((document["ags"] as? [[String: Any]])?.count == 4)
        #expect((document["findings"] as? [Any])?.isEmpty == true)
        #expect(document["frozen_seconds"] is NSNull, "no freeze: \(document["frozen_seconds"] ?? "none")")
        #expect((document["fsmap_queries"] as? Int ?? 0) >= 4, "GETFSMAP in block ranges: \(document["fsmap_queries"] ?? "none")")

        #expect(text.status == 0, "\(text)")
        let lines = text.stdout.split(separator: "\n").map(String.init)
        #expect(lines.last?.hasPrefix("rmap (online): consistent in 4 AGs") == true, "\(text)")
        let liveLine = try #require(lines.first { $0.hasPrefix("live: ") }, "\(text)")
        let applied = liveLine.split(separator: " ").dropFirst(5).first.flatMap { Int($0) } ?? 0
        #expect(applied > 0, "\(liveLine)")
        #expect(more.allSatisfy { $0 > 0 }, "every check applied live updates: \(more)")
        #expect(applied + appliedJSON + more.reduce(0, +) >= 2000,
                "live updates applied: \(appliedJSON) (JSON run) + \(applied) (text run) + \(more) (further runs)")
        #expect(lines.contains { $0.hasPrefix("not checked: AG metadata") }, "the output says what user space cannot observe")
        #expect(lines.contains { $0.hasPrefix("compare: GETFSMAP in ") && $0.hasSuffix(", no freeze") }, "\(text)")
        let left = ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/kernel/tracing/instances")) ?? [])
            .filter { $0.hasPrefix("xfs-rmap-") && !$0.hasPrefix("xfs-rmap-\(getpid())-") }
        #expect(left.isEmpty, "the checks removed their tracing instances: \(left)")

        // The kernel's own offline verdict on what the writers left: runTool throws unless
        // xfs_repair -n exits 0.
        try mount.unmount()
        try Fixtures.runTool("xfs_repair", ["-n", copy])
    }

    @Test("a mounted image with one damaged rmapbt record (another owner): exit 1, the missing and the extra record named")
    func damagedRecord() throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        // The first inode-owned data record of the first leaf of AG 1's rmapbt gets another
        // owner, its CRC recomputed (corruptxfs.py rec-owner does the same).
        var path = ["agf 1", "addr rmaproot"]
        while try xfsDBNumber(copy, path, "level") > 0 { path.append("addr ptrs[1]") }
        let recs = try XFSDB.run(copy, path + ["print recs"])
        // Lines "N:[startblock,blockcount,owner,offset,extentflag,attrfork,bmbtblock]".
        let record = try #require(recs.split(separator: "\n").compactMap { line -> (Int, [Int64])? in
            guard let colon = line.firstIndex(of: ":"), let index = Int(line[..<colon].trimmingCharacters(in: .whitespaces)),
                  line.contains("[") else { return nil }
            let fields = line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
                .split(separator: ",").compactMap { Int64($0) }
            guard fields.count == 7, fields[2] > 0, fields[5] == 0, fields[6] == 0 else { return nil }
            return (index, fields)
        }.first, "an inode-owned record in \(recs)")
        let (index, fields) = record
        // A valid inode number (the kernel's record checks refuse others), of the same chunk.
        let newOwner = fields[2] + 1
        try xfsDBWrite(copy, path + ["write -d recs[\(index)].owner \(newOwner)"])
        let unwritten = fields[4] == 1 ? ", unwritten" : ""
        let missing = "AG 1: missing record [start \(fields[0]), len \(fields[1]), owner \(fields[2]), offset \(fields[3])\(unwritten)]"
        let extra = "AG 1: extra record [start \(fields[0]), len \(fields[1]), owner \(newOwner), offset \(fields[3])\(unwritten)]"

        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        let run = try ToolRunner.run(["check", "--online", mount.mountPoint], timeout: 300)
        #expect(run.status == 1, "\(run)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains(missing), "\(run)")
        #expect(lines.contains(extra), "\(run)")
        #expect(lines.last == "rmap (online): 2 problems in 1 of 4 AGs", "\(run)")
        let json = try ToolRunner.run(["check", "--online", "--json", mount.mountPoint], timeout: 300)
        #expect(json.status == 1, "\(json)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json)")
        let findings = try #require(document["findings"] as? [[String: Any]])
        #expect(findings.map { $0["kind"] as? String } == ["missing", "extra"] || findings.map { $0["kind"] as? String } == ["extra", "missing"],
                "\(findings)")
    }

    @Test("--max-cpu keeps the check to its share of one CPU by pausing, and says so; bad values are usage errors")
    func maxCPU() throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        let run = try ToolRunner.run(["check", "--online", "--json", "--max-cpu", "20", mount.mountPoint], timeout: 300)
        #expect(run.status == 0, "\(run)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run)")
        let cpu = try #require(document["paced_cpu_seconds"] as? Double), seconds = try #require(document["seconds"] as? Double)
        let paused = try #require(document["paused_seconds"] as? Double)
        #expect(document["max_cpu_share"] as? Double == 0.2)
        #expect(paused > 0 && cpu > 0 && (document["cpu_seconds"] as? Double ?? 0) >= cpu, "\(document)")
        // After its last pause the check only writes its final marker and compares what it
        // holds: a little CPU time may come after it.
        #expect(cpu <= 0.2 * seconds + 0.25, "cpu \(cpu) s in \(seconds) s")
        let text = try ToolRunner.run(["check", "--online", "--max-cpu", "50", mount.mountPoint], timeout: 300)
        #expect(text.status == 0 && text.stdout.contains("the scan and comparison kept to 50 % of one CPU ("), "\(text)")

        for options in [["--max-cpu", "0"], ["--max-cpu", "101"]] {
            let refused = try ToolRunner.run(["check", "--online"] + options + [mount.mountPoint])
            #expect(refused.status == 2 && refused.stderr.contains("--max-cpu"), "\(options): \(refused)")
        }
        let offline = try ToolRunner.run(["check", "--max-cpu", "20", try Fixtures.imagePath("mixed-4k")])
        #expect(offline.status == 2 && offline.stderr.contains("--max-cpu needs --online"), "\(offline)")
    }

    @Test("what cannot be checked online exits 2 with the reason: no such path, not XFS")
    func refusals() throws {
        let missing = try ToolRunner.run(["check", "--online", "/nonexistent-xfs-rmap-mount"])
        #expect(missing.status == 2 && missing.stderr.contains("cannot open"), "\(missing)")
        let notXFS = try ToolRunner.run(["check", "--online", "/proc"])
        #expect(notXFS.status == 2 && notXFS.stderr.contains("not an XFS filesystem"), "\(notXFS)")
        let json = try ToolRunner.run(["check", "--online", "--json", "/proc"])
        #expect(json.status == 2 && json.stdout.hasPrefix("{\"error\": "), "\(json)")
    }

    @Test("Ctrl-C during the check: exit 2, its tracing instance removed")
    func interrupted() throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        let writers = try Writers(on: mount.mountPoint, seed: 22)
        defer { _ = writers.stop() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ToolRunner.binary)
        process.arguments = ["check", "--online", mount.mountPoint]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // Wait until its instance exists, then interrupt.
        var waited = 0
        while instances(of: process.processIdentifier).isEmpty && waited < 100 && process.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
            waited += 1
        }
        #expect(!instances(of: process.processIdentifier).isEmpty, "the check made its tracing instance")
        process.interrupt()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 2, "\(message)")
        #expect(message.contains("interrupted"), "\(message)")
        #expect(instances(of: process.processIdentifier).isEmpty, "instances left: \(instances(of: process.processIdentifier))")
    }
}
