import Foundation
import Testing
import XFSTestSupport

/// The advice that ends check's log warnings.
let logAdvice = "the verdict may be stale: mount and unmount the filesystem to replay it, or run xfs_repair -L"

@Suite("xfs-rmap check and the log")
struct LogToolTests {
    @Test("on every fixture (all cleanly unmounted) check prints no warning, and its JSON says the log is clean",
          arguments: fixtureImages)
    func cleanFixtures(name: String) throws {
        let path = try Fixtures.imagePath(name)
        let text = try ToolRunner.run(["check", path], timeout: 60)
        #expect(text.status == 0, "\(text)")
        #expect(!text.stdout.contains("warning"), "\(text)")
        let json = try checkJSON(try ToolRunner.run(["check", "--json", path], timeout: 60))
        let log = try #require(json["log"] as? [String: Any])
        let printed = try #require(try LogPrint.headAndTail(path))
        #expect(log["clean"] as? Bool == true)
        #expect(log["head_block"] as? Int == Int(printed.head) && log["tail_block"] as? Int == Int(printed.tail))
        #expect(log["head_cycle"] as? Int == 1 && log["tail_cycle"] as? Int == 1)
        let mount = try #require(json["mount"] as? [String: Any])
        #expect(mount["state"] as? String == "not_mounted" && mount["mount_point"] is NSNull && mount["device"] is NSNull)
    }

    @Test("a dirty log: a warning line and the log's head and tail in JSON; findings and exit code as with the log zeroed",
          .enabled(if: LoopMount.isAvailable, "\(LoopMount.unavailableReason ?? "")"))
    func dirtyLog() throws {
        let dirty = try DirtyLogImages.make(from: "mixed-4k")
        defer { unlink(dirty) }
        let printed = try #require(try LogPrint.headAndTail(dirty))
        let text = try ToolRunner.run(["check", dirty], timeout: 60)
        #expect(text.status == 0 || text.status == 1, "\(text)")
        let lines = text.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first.map(String.init)
            == "warning: the log is dirty (head cycle 1 block \(printed.head), tail cycle 1 block \(printed.tail)); \(logAdvice)",
            "\(text)")
        let json = try checkJSON(try ToolRunner.run(["check", "--json", dirty], timeout: 60))
        let log = try #require(json["log"] as? [String: Any])
        #expect(log["clean"] as? Bool == false)
        #expect(log["head_cycle"] as? Int == 1 && log["head_block"] as? Int == Int(printed.head))
        #expect(log["tail_cycle"] as? Int == 1 && log["tail_block"] as? Int == Int(printed.tail))

        // The same metadata with a zeroed (clean) log: the same verdict, without the warning.
        let zeroed = dirty + ".zeroed"
        try Fixtures.runTool("cp", ["--sparse=always", dirty, zeroed])
        defer { unlink(zeroed) }
        try LogPrint.overwriteLog(zeroed) { [UInt8](repeating: 0, count: $0) }
        let clean = try ToolRunner.run(["check", zeroed], timeout: 60)
        #expect(clean.status == text.status, "dirty: \(text)\nzeroed: \(clean)")
        #expect(clean.stdout.split(separator: "\n", omittingEmptySubsequences: false) == Array(lines.dropFirst()))
    }

    @Test("garbage in the log: check warns that head and tail cannot be found, and checks the rest", arguments: [1, 2] as [UInt64])
    func garbageLog(seed: UInt64) throws {
        let path = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(path) }
        try LogPrint.overwriteLog(path) { count in
            var rng = SeededRandom(seed: seed)
            let pool = (0 ..< 65536).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            // Each block: 512 bytes from a random place in the pool.
            var bytes: [UInt8] = []
            bytes.reserveCapacity(count)
            while bytes.count < count {
                let start = Int(rng.next() % UInt64(pool.count - 512))
                bytes += pool[start ..< start + 512]
            }
            return bytes
        }
        let text = try ToolRunner.run(["check", path], timeout: 60)
        #expect(text.status == 0, "\(text)")
        let first = text.stdout.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.hasPrefix("warning: the log's head and tail cannot be found (log: ") && first.hasSuffix("); \(logAdvice)"),
                "\(text)")
        let json = try checkJSON(try ToolRunner.run(["check", "--json", path], timeout: 60))
        let log = try #require(json["log"] as? [String: Any])
        #expect(log["clean"] as? Bool == false && log["head_block"] is NSNull && (log["error"] as? String)?.hasPrefix("log: ") == true,
                "\(log)")
        #expect(json["consistent"] as? Bool == true)
    }
}
