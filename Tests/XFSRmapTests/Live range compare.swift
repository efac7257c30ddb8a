import Foundation
import Testing
import XFSFormat
import XFSTestSupport
@testable import XFSRmap

// The online check's final comparison reads each AG's rmapbt in block ranges (GETFSMAP's
// own continuation chooses them), each between two trace markers and compared with the
// trees' records of the same start blocks. Ranges of a few records each put range
// boundaries everywhere: between records, inside a run of records that share a start block
// (reflink), and under records that a range's last block does not end. Every record must be
// compared exactly once, a damaged one named once, and writers must not make it freeze.

/// `OnlineCheckOptions` with ranges of about `records` records.
private func smallRanges(_ records: Int, allowFreeze: Bool = false) -> OnlineCheckOptions {
    var options = OnlineCheckOptions()
    options.fsmapRangeRecords = records
    options.allowFreeze = allowFreeze
    return options
}

/// The inode-owned data and attr-fork records GETFSMAP gives for the whole data device.
private func kernelInodeRecords(_ mountPoint: String) throws -> Int {
    let filesystem = try MountedXFS(path: mountPoint)
    return try filesystem.fsmap(physical: 0, through: UInt64.max >> 1).filter { $0.isInodeOwned && !$0.isBmbtBlock }.count
}

@Suite("Live: the final comparison in block ranges", .serialized,
       .enabled(if: liveUnavailableReason == nil, "\(liveUnavailableReason ?? "")"))
struct OnlineRangeCompareTests {
    @Test("the range bounds: records are kept by their start block, a raced range is read again in halves")
    func bounds() throws {
        #expect(OnlineRmapCheck.split(0...127) == [0...127])
        #expect(OnlineRmapCheck.split(0...128) == [0...63, 64...128])
        #expect(OnlineRmapCheck.split(10...4_000_009) == [10...2_000_009, 2_000_010...4_000_009])
        #expect(OnlineRmapCheck.split(UInt32.max - 199...UInt32.max).count == 2)
    }

    @Test("ranges of 1 to 64 records on a reflink image at rest: every record compared once, consistent",
          arguments: [1, 3, 64])
    func everyRecordOnce(records: Int) throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        let report = try OnlineRmapCheck(mountPoint: mount.mountPoint, options: smallRanges(records)).run()
        #expect(report.isConsistent, "\(report.findings.prefix(10).map(\.detail))")
        // The same check with one range per AG (a GETFSMAP call of every record) compares
        // the same records; both leave out the inodes that cannot be opened by handle.
        let whole = try OnlineRmapCheck(mountPoint: mount.mountPoint, options: smallRanges(100_000)).run()
        #expect(whole.isConsistent && whole.fsmapQueries == 4)
        #expect(report.recordsCompared == whole.recordsCompared, "records compared \(report.recordsCompared), in one range per AG \(whole.recordsCompared)")
        let kernel = try kernelInodeRecords(mount.mountPoint)
        #expect(report.recordsCompared.reduce(0, +) <= kernel && report.recordsCompared.reduce(0, +) > kernel * 9 / 10,
                "records compared \(report.recordsCompared), GETFSMAP has \(kernel) of inodes")
        #expect(report.fsmapQueries >= kernel / max(records, 2) / 2, "\(report.fsmapQueries) ranges for \(kernel) records")
        #expect(report.fsmapRetries == 0 && report.frozenSeconds == nil)
    }

    @Test("INUMBERS and bulkstat agree on a filesystem at rest; a chunk's inodes are found from any inode in it")
    func allocatedInodes() throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        let filesystem = try MountedXFS(path: mount.mountPoint)
        var bulkstat: [UInt64] = []
        var next: UInt64? = 0
        while let start = next {
            let (inodes, following) = try filesystem.bulkstat(from: start, count: 100)
            if inodes.isEmpty { break }
            bulkstat += inodes.map(\.ino)
            next = following
        }
        let allocated = try filesystem.allocatedInodes(in: 0...UInt64.max)
        // At rest bulkstat returns every allocated inode but the superblock's own (realtime
        // bitmap and summary, quota), which it never returns.
        let skipped = Set(allocated).subtracting(bulkstat)
        #expect(allocated.count > 3000 && Set(bulkstat).isSubset(of: allocated) && skipped == [129, 130],
                "allocated \(allocated.count), bulkstat \(bulkstat.count), skipped \(skipped.sorted())")
        // A range that starts and ends inside chunks.
        let middle = allocated[allocated.count / 2]
        let range = (middle - 5)...(middle + 70)
        #expect(try filesystem.allocatedInodes(in: range) == allocated.filter { range.contains($0) })
        #expect(try filesystem.allocatedInodes(in: middle...middle) == [middle])
    }

    @Test("small ranges while writers change the filesystem: consistent, live updates applied, no freeze")
    func smallRangesWithWriters() throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        // Writers at a rate that follows the checker's speed (slower under Thread Sanitizer).
        let started = Date()
        _ = try OnlineRmapCheck(mountPoint: mount.mountPoint, options: smallRanges(32)).run()
        let rate = max(5, min(100, Int(200 / max(Date().timeIntervalSince(started), 1))))
        let stopFile = NSTemporaryDirectory() + "xfs-rmap-range-writers-\(UUID().uuidString)"
        let writers = Process()
        writers.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        writers.arguments = ["python3", writersScript, mount.mountPoint, "--seed", "31", "--writers", "2",
                             "--stop-file", stopFile, "--rate", "\(rate)"]
        writers.standardOutput = FileHandle.nullDevice
        try writers.run()
        defer {
            FileManager.default.createFile(atPath: stopFile, contents: nil)
            writers.waitUntilExit()
            unlink(stopFile)
        }
        Thread.sleep(forTimeInterval: 1)
        // Freezing is not allowed: a range that never settles fails the check instead.
        let report = try OnlineRmapCheck(mountPoint: mount.mountPoint, options: smallRanges(32)).run()
        #expect(report.isConsistent, "\(report.findings.prefix(10).map(\.detail))")
        #expect(report.frozenSeconds == nil)
        #expect(report.updatesApplied > 0, "live updates applied: \(report.updatesApplied) of \(report.updatesSeen)")
        #expect(report.fsmapQueries > 100, "\(report.fsmapQueries) ranges")
        print("small ranges with writers: \(report.fsmapQueries) ranges, \(report.fsmapRetries) repeated, "
              + "\(report.updatesApplied) updates applied, \(report.totalSeconds) s")
    }

    @Test("a damaged record (another owner) is named once, as missing and extra, with ranges of 1 to 64 records",
          arguments: [1, 5, 64])
    func damagedRecord(records: Int) throws {
        let copy = try Fixtures.writableCopy("mixed-4k")
        defer { unlink(copy) }
        // The first inode-owned data record of the first leaf of AG 2's rmapbt gets the next
        // inode number as its owner (the kernel's record checks accept it).
        var path = ["agf 2", "addr rmaproot"]
        while XFSDB.number(XFSDB.fields(try XFSDB.run(copy, path + ["print level"]))["level"]) ?? 0 > 0 {
            path.append("addr ptrs[1]")
        }
        let recs = try XFSDB.run(copy, path + ["print recs"])
        let record = try #require(recs.split(separator: "\n").compactMap { line -> (Int, [Int64])? in
            guard let colon = line.firstIndex(of: ":"), let index = Int(line[..<colon].trimmingCharacters(in: .whitespaces)),
                  line.contains("[") else { return nil }
            let fields = line[line.index(after: colon)...].trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
                .split(separator: ",").compactMap { Int64($0) }
            guard fields.count == 7, fields[2] > 0, fields[5] == 0, fields[6] == 0 else { return nil }
            return (index, fields)
        }.first, "an inode-owned record in \(recs)")
        let (index, fields) = record
        try xfsDBWrite(copy, path + ["write -d recs[\(index)].owner \(fields[2] + 1)"])

        let mount = try LoopMount(image: copy)
        defer { try? mount.unmount() }
        let report = try OnlineRmapCheck(mountPoint: mount.mountPoint, options: smallRanges(records)).run()
        let expected = RmapRecord(startBlock: UInt32(fields[0]), blockCount: UInt32(fields[1]), owner: UInt64(fields[2]),
                                  offset: UInt64(fields[3]), isUnwritten: fields[4] == 1)
        var found = expected
        found.owner += 1
        #expect(report.findings.map(\.detail) == ["missing record \(RmapText.describe(expected))",
                                                   "extra record \(RmapText.describe(found))"],
                "\(report.findings.map(\.detail))")
        #expect(report.findings.allSatisfy { $0.agno == 2 })
    }
}
