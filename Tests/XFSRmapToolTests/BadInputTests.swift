import Foundation
import Testing
import XFSTestSupport

/// One kind of bad input for `xfs-rmap dump`, how to make it, and what the message must say.
enum BadInput: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case missingFile, directory, danglingSymlink, unreadable, emptyFile, zeros, randomBytes
    case superblockThenRandom, truncatedHalf, version4, needsRepair, noRmapBT
    case pointerCycle, sharedLeaf, absurdHeight, badLeafCRC, badLeafMagic, badAGFCRC, rootOutsideAG

    var testDescription: String { rawValue }

    /// The one AG the damage is in, for damage that leaves the rest of the image readable
    /// (dump prints what it can and exits 1); nil for input that cannot be read at all.
    var damagedAG: UInt32? {
        switch self {
        case .pointerCycle, .sharedLeaf, .rootOutsideAG, .badLeafMagic: 1
        case .absurdHeight: 2
        case .badLeafCRC: 3
        case .badAGFCRC: 0
        default: nil
        }
    }

    /// The image-wide inputs, which exit 2.
    static var wholeImage: [BadInput] { allCases.filter { $0.damagedAG == nil } }
    /// The inputs damaged in one AG, which exit 1.
    static var damagedInOneAG: [BadInput] { allCases.filter { $0.damagedAG != nil } }

    /// A damaged input made in `scratch`: its path, the user to run as (nil: the caller),
    /// and the fragments the message must contain.
    func make(in scratch: ScratchDirectory) throws -> (path: String, user: String?, fragments: [String]) {
        let path = scratch.file("\(rawValue).img")
        switch self {
        case .missingFile:
            return (path, nil, ["\(path): No such file or directory"])
        case .directory:
            return (scratch.path, nil, ["\(scratch.path): is a directory"])
        case .danglingSymlink:
            try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: scratch.file("gone"))
            return (path, nil, ["\(path): is a symbolic link to a missing file"])
        case .unreadable:
            // As root every file is readable, so read a mode-000 file as `nobody`.
            try Data(count: 4096).write(to: URL(fileURLWithPath: path))
            try FileManager.default.setAttributes([.posixPermissions: 0], ofItemAtPath: path)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.path)
            return (path, "nobody", ["\(path): cannot open: EACCES (Permission denied)"])
        case .emptyFile:
            try Data().write(to: URL(fileURLWithPath: path))
            return (path, nil, ["\(path): 0 bytes is too small to hold an XFS superblock"])
        case .zeros:
            try Data(count: 1 << 20).write(to: URL(fileURLWithPath: path))
            return (path, nil, ["superblock: no XFS superblock magic at byte 0"])
        case .randomBytes:
            var rng = SeededRandom(seed: 42)
            try Data((0 ..< (1 << 20)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }).write(to: URL(fileURLWithPath: path))
            return (path, nil, ["superblock: no XFS superblock magic at byte 0"])
        case .superblockThenRandom:
            let sector = try ImageFile(path: try Fixtures.imagePath("mixed-4k")).read(at: 0, count: 4096)
            var rng = SeededRandom(seed: 7)
            let rest = (0 ..< (1 << 20)).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            try Data(sector + rest).write(to: URL(fileURLWithPath: path))
            return (path, nil, ["\(path): the filesystem needs 1073741824 bytes but the image has 1052672: truncated"])
        case .truncatedHalf:
            try Fixtures.runTool("cp", ["--sparse=always", try Fixtures.imagePath("mixed-4k"), path])
            try Fixtures.runTool("truncate", ["-s", "512M", path])
            return (path, nil, ["\(path): the filesystem needs 1073741824 bytes but the image has 536870912: truncated"])
        case .version4:
            try Fixtures.runTool("truncate", ["-s", "300M", path])
            try Fixtures.runTool("mkfs.xfs", ["-q", "-f", "-m", "crc=0", path])
            return (path, nil, ["\(path): superblock: version 4 filesystems are not supported"])
        case .needsRepair:
            try copyFixture(to: path)
            let incompat = try xfsDBNumber(path, ["sb 0"], "features_incompat")
            try xfsDBWrite(path, ["sb 0", "write -d features_incompat \(incompat | 0x10)"])
            return (path, nil, ["superblock", "needs repair"])
        case .noRmapBT:
            try Fixtures.runTool("truncate", ["-s", "300M", path])
            try Fixtures.runTool("mkfs.xfs", ["-q", "-f", "-m", "rmapbt=0", path])
            return (path, nil, ["\(path): superblock: the filesystem has no reverse-mapping btree"])
        case .pointerCycle:
            // A child pointer of AG 1's root names the root itself.
            try copyFixture(to: path)
            let root = try xfsDBNumber(path, ["agf 1"], "rmaproot")
            try xfsDBWrite(path, ["agf 1", "addr rmaproot", "write ptrs[2] \(root)"])
            return (path, nil, ["AG 1 rmapbt block \(root): cycle: child pointer \(root) reaches a block already visited"])
        case .sharedLeaf:
            // Two pointers of AG 1's root lead to the same leaf.
            try copyFixture(to: path)
            let root = try xfsDBNumber(path, ["agf 1"], "rmaproot")
            let leaf = try xfsDBNumber(path, ["agf 1", "addr rmaproot"], "ptrs[2]")
            try xfsDBWrite(path, ["agf 1", "addr rmaproot", "write ptrs[3] \(leaf)"])
            return (path, nil, ["AG 1 rmapbt block \(root): cycle: child pointer \(leaf) reaches a block already visited"])
        case .absurdHeight:
            try copyFixture(to: path)
            try xfsDBWrite(path, ["agf 2", "write -d rmaplevel 50"])
            return (path, nil, ["AG 2 AGF: rmapbt level 50 is outside 1...4: no records of AG 2 printed"])
        case .badLeafCRC:
            try copyFixture(to: path)
            let leaf = try xfsDBNumber(path, ["agf 3", "addr rmaproot"], "ptrs[3]")
            try xfsDBWrite(path, ["agf 3", "addr rmaproot", "addr ptrs[3]", "fuzz -c crc random"])
            return (path, nil, ["AG 3 rmapbt block \(leaf): read: bad CRC"])
        case .badLeafMagic:
            try copyFixture(to: path)
            let leaf = try xfsDBNumber(path, ["agf 1", "addr rmaproot"], "ptrs[5]")
            try xfsDBWrite(path, ["agf 1", "addr rmaproot", "addr ptrs[5]", "write -d magic 0x12345678"])
            return (path, nil, ["AG 1 rmapbt block \(leaf): magic: magic 0x12345678, expected 0x524d4233"])
        case .badAGFCRC:
            try copyFixture(to: path)
            try xfsDBWrite(path, ["agf 0", "fuzz -c crc random"])
            return (path, nil, ["AG 0 AGF: bad CRC: no records of AG 0 printed"])
        case .rootOutsideAG:
            try copyFixture(to: path)
            try xfsDBWrite(path, ["agf 1", "write -d rmaproot 0"])
            return (path, nil, ["AG 1 AGF: rmapbt root 0 is outside the AG: no records of AG 1 printed"])
        }
    }

    private func copyFixture(to path: String) throws {
        try Fixtures.runTool("cp", ["--sparse=always", try Fixtures.imagePath("mixed-4k"), path])
    }
}

@Suite("xfs-rmap dump on bad input")
struct BadInputTests {
    @Test("exit 2, one line on stderr naming what is wrong and where, no crash, no hang", arguments: BadInput.wholeImage)
    func badInput(_ input: BadInput) throws {
        if input == .unreadable && (getuid() != 0 || !Fixtures.hasTool("runuser")) {
            // Reading a mode-000 file needs a user other than root; without runuser (or as a
            // normal user, where the tool itself could not be run as nobody) it is skipped.
            return
        }
        if [.version4, .noRmapBT].contains(input) && !Fixtures.hasTool("mkfs.xfs") { return }
        let scratch = try ScratchDirectory()
        let (path, user, fragments) = try input.make(in: scratch)
        let run = try withExtendedLifetime(scratch) { try ToolRunner.run(["dump", path], timeout: 20, user: user) }
        #expect(!run.timedOut, "\(input): hung")
        #expect(run.status == 2, "\(input): \(run)")
        #expect(run.stdout.isEmpty, "\(input): printed records")
        #expect(run.stderrLines.count == 1 && run.stderr.hasSuffix("\n"), "\(input): \(run)")
        #expect(run.stderr.hasPrefix("xfs-rmap: "), "\(input): \(run)")
        for fragment in fragments {
            #expect(run.stderr.contains(fragment), "\(input): message lacks \(fragment.debugDescription): \(run.stderr)")
        }
        // What each case printed, for the record.
        print("bad input \(input): \(run.stderr)", terminator: "")
    }
}

@Suite("xfs-rmap dump on an image damaged in one AG")
struct PartlyDamagedDumpTests {
    @Test("exit 1: every other AG's records as xfs_db printed them, what can be read of the damaged AG, and stderr naming the damage",
          arguments: BadInput.damagedInOneAG)
    func damagedAG(_ input: BadInput) throws {
        let agno = try #require(input.damagedAG)
        let scratch = try ScratchDirectory()
        let (path, user, fragments) = try input.make(in: scratch)
        let run = try withExtendedLifetime(scratch) { try ToolRunner.run(["dump", path], timeout: 20, user: user) }
        #expect(!run.timedOut, "\(input): hung")
        #expect(run.status == 1, "\(input): \(run)")
        let corpus = try Fixtures.rmapText("mixed-4k").split(separator: "\n")
        let lines = run.stdout.split(separator: "\n")
        #expect(lines.first == corpus.first)
        // The undamaged AGs in full, in order; of the damaged one, only records it holds.
        let prefix = "\(agno)\t"
        #expect(lines.dropFirst().filter { !$0.hasPrefix(prefix) } == corpus.dropFirst().filter { !$0.hasPrefix(prefix) }, "\(input)")
        let damaged = lines.filter { $0.hasPrefix(prefix) }
        #expect(Set(damaged).isSubset(of: Set(corpus.filter { $0.hasPrefix(prefix) })), "\(input): records not on disk")
        #expect(Set(damaged).count == damaged.count, "\(input): a record printed twice")
        for fragment in fragments {
            #expect(run.stderr.contains(fragment), "\(input): stderr lacks \(fragment.debugDescription): \(run.stderr)")
        }
        #expect(run.stderrLines.allSatisfy { $0.hasPrefix("xfs-rmap: AG \(agno)") }, "\(input): \(run.stderr)")
        if !damaged.isEmpty {
            #expect(run.stderrLines.last == "xfs-rmap: AG \(agno): printed the \(damaged.count) records that could be read, in tree order",
                    "\(input): \(run.stderr)")
        }
        print("damaged \(input): \(damaged.count) records of AG \(agno) printed; \(run.stderr)", terminator: "")
    }
}
