import Foundation
import Testing
import XFSTestSupport

/// A filesystem made by mkfs.xfs with an external log file (rmapbt, reflink, crc), filled by
/// the kernel through loop mounts of both files: small files, a shared extent and its partial
/// copy-on-write, a file of hundreds of extents (a bmbt), unwritten extents. Both files live
/// in a scratch directory removed with it.
final class ExternalLogImage {
    let scratch: ScratchDirectory
    /// The data device image.
    let data: String
    /// The log device image.
    let log: String

    static let fill = """
        mkdir d && for i in $(seq 1 200); do echo "file $i" > d/f$i; done && \
        dd if=/dev/urandom of=big bs=1M count=8 status=none && cp --reflink=always big big.clone && \
        dd if=/dev/urandom of=big.clone bs=4k count=4 seek=100 conv=notrunc status=none && \
        seq 0 2 800 | while read i; do echo "pwrite -q $((i * 4))k 4k"; done | xfs_io -f frag && \
        xfs_io -f -c "falloc 0 4m" -c "pwrite -q 1m 64k" prealloc && rm d/f7 d/f9
        """

    init() throws {
        scratch = try ScratchDirectory()
        data = scratch.file("data.img")
        log = scratch.file("log.img")
        try Fixtures.runTool("truncate", ["-s", "512M", data])
        try Fixtures.runTool("truncate", ["-s", "80M", log])
        try Fixtures.runTool("mkfs.xfs", ["-q", "-f", "-m", "rmapbt=1,reflink=1,crc=1", "-l", "logdev=\(log),size=64m", data])
        let mount = try LoopMount(image: data, logImage: log)
        try mount.shell(Self.fill)
        try mount.unmount()
    }

    /// The on-disk rmap records as `xfs_db -l LOG … btdump` prints them, in the record
    /// text format (header line included).
    func btdumpText() throws -> String {
        let superblock = try Fixtures.runTool("xfs_db", ["-r", "-l", log, "-c", "sb 0", "-c", "print agcount", data])
        let agCount = XFSDB.number(XFSDB.fields(superblock)["agcount"])
        var text = "agno\tstartblock\tblockcount\towner\toffset\tunwritten\tattrfork\tbmbtblock\n"
        for agno in 0 ..< (agCount ?? 0) {
            let dump = try Fixtures.runTool("xfs_db", ["-r", "-l", log, "-c", "agf \(agno)", "-c", "addr rmaproot", "-c", "btdump", data])
            for line in dump.split(separator: "\n") {
                // Leaf records: "N:[startblock,blockcount,owner,offset,extentflag,attrfork,bmbtblock]".
                guard let open = line.firstIndex(of: "["), line[..<open].hasSuffix(":"), line.first?.isNumber == true,
                      let close = line.firstIndex(of: "]") else { continue }
                let fields = line[line.index(after: open) ..< close].split(separator: ",")
                text += "\(agno)\t" + fields.joined(separator: "\t") + "\n"
            }
        }
        return text
    }
}

@Suite("xfs-rmap with an external log (--logdev)",
       .enabled(if: LoopMount.isAvailable && Fixtures.hasTool("mkfs.xfs"), "\(LoopMount.unavailableReason ?? "mkfs.xfs is not installed")"))
struct ExternalLogToolTests {
    @Test("dump equals xfs_db btdump, scan equals dump, no OWN_LOG record anywhere, check exit 0 with a clean external log")
    func filledByTheKernel() throws {
        let image = try ExternalLogImage()
        let expected = try image.btdumpText()
        #expect(expected.split(separator: "\n").count > 300, "\(expected.prefix(300))")
        let dump = try ToolRunner.run(["dump", image.data, "--logdev", image.log], timeout: 60)
        #expect(dump.status == 0 && dump.stderr.isEmpty, "\(dump)")
        #expect(dump.stdout == expected)
        let scan = try ToolRunner.run(["scan", image.data, "--logdev", image.log], timeout: 60)
        #expect(scan.status == 0 && scan.stderr.isEmpty, "\(scan)")
        #expect(scan.stdout == dump.stdout)
        // Owners are the fourth field; -4 is OWN_LOG. The special owners that are there:
        let owners = Set(dump.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: "\t")[3] })
        #expect(!owners.contains("-4") && owners.isSuperset(of: ["-3", "-5", "-6", "-7", "-8"]), "\(owners.sorted())")
        // Bmbt blocks, unwritten extents and shared extents made it into the image.
        #expect(dump.stdout.contains("\t0\t0\t1\n") && dump.stdout.contains("\t1\t0\t0\n"))

        let check = try ToolRunner.run(["check", image.data, "--logdev", image.log], timeout: 60)
        #expect(check.status == 0 && !check.stdout.contains("warning"), "\(check)")
        let json = try checkJSON(try ToolRunner.run(["check", "--json", "--logdev", image.log, image.data], timeout: 60))
        let log = try #require(json["log"] as? [String: Any])
        let printed = try #require(try LogPrint.headAndTail(image.data, logImage: image.log))
        #expect(printed.clean && log["clean"] as? Bool == true)
        #expect(log["head_block"] as? Int == Int(printed.head) && log["tail_block"] as? Int == Int(printed.tail), "\(log)")
        #expect(try ToolRunner.run(["check", "--ag", "2", image.data, "--logdev", image.log], timeout: 60).status == 0)
    }

    @Test("without --logdev the image is refused (exit 2) naming --logdev; --logdev with an internal log is refused too")
    func logDeviceRequired() throws {
        let image = try ExternalLogImage()
        for command in ["check", "scan", "dump"] {
            let run = try ToolRunner.run([command, image.data])
            #expect(run.status == 2 && run.stdout.isEmpty && run.stderrLines.count == 1, "\(command): \(run)")
            #expect(run.stderr == "xfs-rmap: \(image.data): superblock: the filesystem has an external log: "
                + "give its device (xfs-rmap --logdev LOGDEV, as xfs_repair -l LOGDEV)\n", "\(run)")
        }
        let fixture = try Fixtures.imagePath("mixed-4k")
        let run = try ToolRunner.run(["check", fixture, "--logdev", image.log])
        #expect(run.status == 2 && run.stderr == "xfs-rmap: \(image.log): a log device was given but the filesystem's log is internal\n",
                "\(run)")
        // A log device shorter than the log.
        let short = image.scratch.file("short.img")
        try Fixtures.runTool("truncate", ["-s", "1M", short])
        let shortRun = try ToolRunner.run(["dump", image.data, "--logdev", short])
        #expect(shortRun.status == 2 && shortRun.stderr.contains("\(short): the log needs 67108864 bytes but the log device has 1048576"),
                "\(shortRun)")
    }

    @Test("mounted: refused by the data device's mount point; forced, the log device is reported held exclusively too")
    func mounted() throws {
        let image = try ExternalLogImage()
        let mount = try LoopMount(image: image.data, logImage: image.log)
        defer { try? mount.unmount() }
        let mountPoint = URL(fileURLWithPath: mount.mountPoint).resolvingSymlinksInPath().path
        let run = try ToolRunner.run(["check", image.data, "--logdev", image.log])
        #expect(run.status == 2 && run.stderr.hasPrefix("xfs-rmap: \(image.data) is mounted on \(mountPoint) (\(mount.dataDevice)): "),
                "\(run)")
        let forced = try ToolRunner.run(["check", image.data, "--logdev", image.log, "--force-mounted"], timeout: 60)
        let warnings = forced.stdout.split(separator: "\n").filter { $0.hasPrefix("warning: ") }
        #expect(warnings.count >= 2, "\(forced)")
        #expect(warnings.contains { $0.hasPrefix("warning: \(image.data) is mounted on \(mountPoint)") }, "\(forced)")
        #expect(warnings.contains { $0.hasPrefix("warning: \(image.log) is in use (\(mount.logDevice ?? "") is held exclusively") },
                "\(forced)")
    }

    @Test("a dirty external log: check reads the log device and reports head and tail as xfs_logprint -l does")
    func dirtyExternalLog() throws {
        let image = try ExternalLogImage()
        try DirtyLogImages.dirty(image.data, logImage: image.log)
        let printed = try #require(try LogPrint.headAndTail(image.data, logImage: image.log))
        let text = try ToolRunner.run(["check", image.data, "--logdev", image.log], timeout: 60)
        #expect(text.status == 0 || text.status == 1, "\(text)")
        #expect(text.stdout.hasPrefix("warning: the log is dirty (head cycle 1 block \(printed.head), tail cycle 1 block \(printed.tail)); "),
                "\(text)")
        let json = try checkJSON(try ToolRunner.run(["check", "--json", image.data, "--logdev", image.log], timeout: 60))
        let log = try #require(json["log"] as? [String: Any])
        #expect(log["clean"] as? Bool == false && log["head_block"] as? Int == Int(printed.head)
                && log["tail_block"] as? Int == Int(printed.tail), "\(log)")
    }
}
