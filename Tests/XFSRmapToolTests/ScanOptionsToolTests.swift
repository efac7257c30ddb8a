import Foundation
import Testing
import XFSTestSupport

// --threads and --memory-dir change how the work is done, never what it finds.

@Suite("xfs-rmap --threads and --memory-dir", .enabled(if: Fixtures.hasTool("xfs_db"), "needs xfs_db"))
struct ScanOptionsToolTests {
    @Test("check and scan print the same with one thread, two, and the trees in a directory")
    func sameResults() throws {
        let image = try Fixtures.imagePath("mixed-4k")
        let directory = try ScratchDirectory()
        for command in ["check", "scan"] {
            let plain = try ToolRunner.run([command, image], timeout: 60)
            #expect(plain.status == 0, "\(plain)")
            let variants = [["--threads", "1"], ["--threads", "2"], ["--memory-dir", directory.path, "--threads", "1"]]
            for options in variants {
                let run = try ToolRunner.run([command, image] + options, timeout: 60)
                #expect(run.status == 0 && run.stdout == plain.stdout, "\(command) \(options): \(run.stderr)")
            }
        }
        // The memory file was an unnamed file there: nothing is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    @Test("a thread count below 1 or a memory directory that is not one is a usage error")
    func badValues() throws {
        let image = try Fixtures.imagePath("mixed-4k")
        let scratch = try ScratchDirectory()
        let file = scratch.file("plain-file")
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        for options in [["--threads", "0"], ["--memory-dir", scratch.file("missing")], ["--memory-dir", file]] {
            let run = try ToolRunner.run(["check", image] + options)
            #expect(run.status == 2, "\(options): \(run)")
            #expect(run.stderr.contains(options[0]), "\(options): \(run.stderr)")
        }
    }
}
