import Foundation
import Testing
import XFSBuffer
import XFSTestSupport
@testable import XFSUndo

/// A finished run of the sample plan on a scratch copy of empty-4k, with the final
/// superblock as the blob. Holds the scratch copy (and so its files) alive.
struct FinishedRun {
    /// The image copy and undo directory.
    let scratch: Scratch
    /// The plan that ran.
    let sample: SamplePlan
    /// The undo file's path.
    var undo: String { scratch.path("rebuild.undo") }

    /// Runs the sample plan on a copy of fixture empty-4k.
    init() throws {
        scratch = try Scratch()
        sample = try SamplePlan(image: scratch.image)
        try scratch.writer(blob: sample.finalSuperblock).execute(sample.plan, inUseCheck: notInUse)
    }
}

/// The check an `.invalidUndoFile` error names (nil for any other error).
func failedCheck(_ error: UndoError?) -> UndoFileCheck? {
    if case let .invalidUndoFile(_, check, _)? = error { return check }
    return nil
}

/// Opening `path` fails with `.invalidUndoFile` naming `check`, and says so in its description.
func expectRefused(_ path: String, _ check: UndoFileCheck,
                   sourceLocation: SourceLocation = #_sourceLocation) {
    let error = #expect(throws: UndoError.self, sourceLocation: sourceLocation) { _ = try UndoFile.open(path: path) }
    #expect(failedCheck(error) == check, "\(String(describing: error))", sourceLocation: sourceLocation)
    #expect(error?.description.contains("check '\(check)' failed") == true, sourceLocation: sourceLocation)
}

/// Rewrites a little-endian header field and the header CRC, so that the field itself is
/// what a reader must catch.
func rewriteHeaderField<T: FixedWidthInteger>(_ path: String, at offset: Int, to value: T) throws {
    var header = try readBytes(path, at: 0, count: 512)
    header.storeLittleEndian(value, at: offset)
    header.storeLittleEndian(UndoHeader.checksum(header), at: UndoFormat.Field.headerCRC)
    try writeBytes(path, at: 0, header)
}

@Suite("Refusals")
struct RefusalTests {
    @Test("restore refuses an undo file of another filesystem, writing nothing")
    func anotherFilesystem() throws {
        let run = try FinishedRun()
        let undoPath = run.undo
        let other = try Scratch("geo-4k-nrext64")
        let error = #expect(throws: UndoError.self) {
            _ = try UndoFile.open(path: undoPath).restore(imagePath: other.image, inUseCheck: notInUse)
        }
        guard case let .wrongFilesystem(offset, recorded, found)? = error else {
            Issue.record("\(String(describing: error))")
            return
        }
        #expect(offset == 32 && recorded != found)
        #expect(found == (try readBytes(other.original, at: 32, count: 16)))
        #expect(error?.description.contains("another filesystem") == true)
        #expect(try other.isOriginal())
    }

    @Test("a damaged undo file is refused, naming the failed check",
          arguments: [
              ("magic", 0, UndoFileCheck.magic),
              ("version", 8, .version),
              ("image size field", 25, .headerCRC),
              ("identity bytes", 120, .headerCRC),
              ("header padding", 400, .headerCRC),
              ("state word", 17, .state),
              ("blob", 512 + 9, .blobCRC),
          ])
    func damagedHeaderOrBlob(place: String, offset: Int, check: UndoFileCheck) throws {
        let run = try FinishedRun()
        let (scratch, sample, undoPath) = (run.scratch, run.sample, run.undo)
        var byte = try readBytes(undoPath, at: Int64(offset), count: 1)
        byte[0] ^= 0x20
        try writeBytes(undoPath, at: Int64(offset), byte)
        expectRefused(undoPath, check)
        try sample.expectFinal(in: scratch.image)
    }

    @Test("a flipped byte in the region table or the saved data is refused, naming the failed check",
          arguments: [(false, UndoFileCheck.tableCRC), (true, .dataCRC)])
    func damagedTableOrData(inData: Bool, check: UndoFileCheck) throws {
        let run = try FinishedRun()
        let (scratch, sample, undoPath) = (run.scratch, run.sample, run.undo)
        let regions = try #require(try UndoFile.open(path: undoPath).regions)
        let offset = inData ? Int64(regions[3].dataOffset + 700) : Int64(1024 + 30)
        var byte = try readBytes(undoPath, at: offset, count: 1)
        byte[0] ^= 0x01
        try writeBytes(undoPath, at: offset, byte)
        expectRefused(undoPath, check)
        if inData {
            let error = #expect(throws: UndoError.self) { _ = try UndoFile.open(path: undoPath) }
            #expect(error?.description.contains("region 3 (4096 bytes at image byte 20480)") == true)
        }
        try sample.expectFinal(in: scratch.image)
    }

    @Test("restore refuses an image changed after the run, before writing anything")
    func imageChangedAfterRun() throws {
        let run = try FinishedRun()
        let (scratch, sample, undoPath) = (run.scratch, run.sample, run.undo)
        let changedAt = Int64(12 * 4096 + 1024 + 5)
        var byte = try readBytes(scratch.image, at: changedAt, count: 1)
        byte[0] ^= 0xFF
        try writeBytes(scratch.image, at: changedAt, byte)
        let recorder = CallRecorder()
        let error = #expect(throws: UndoError.self) {
            _ = try UndoFile.open(path: undoPath, systemCalls: recorder.systemCalls)
                .restore(imagePath: scratch.image, inUseCheck: notInUse)
        }
        #expect(error == .imageChanged(sectorOffset: 12 * 4096 + 1024, undoFileState: .finished))
        #expect(error?.description.contains("changed since the run") == true)
        #expect(!recorder.calls.contains { $0.hasPrefix("pwrite") })
        #expect(try readBytes(scratch.image, at: 0, count: 512) == sample.finalSuperblock)
    }

    @Test("restore refuses an image that changed although the run stopped before writing it")
    func imageChangedBeforeRun() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        let undoPath = scratch.path("rebuild.undo")
        #expect(throws: UndoError.self) {
            try scratch.writer(systemCalls: .failing(pwriteNumber: 5, toPath: undoPath))
                .execute(sample.plan, inUseCheck: notInUse)
        }
        try writeBytes(scratch.image, at: 512 + 4, [0xAB])
        let error = #expect(throws: UndoError.self) {
            _ = try UndoFile.open(path: undoPath).restore(imagePath: scratch.image, inUseCheck: notInUse)
        }
        #expect(error == .imageChanged(sectorOffset: 512, undoFileState: .writing))
    }

    @Test("restore refuses an image whose size changed")
    func imageSizeChanged() throws {
        let run = try FinishedRun()
        let (scratch, undoPath) = (run.scratch, run.undo)
        let size = try fileSize(scratch.image)
        try truncateFile(scratch.image, to: size + 4096)
        let error = #expect(throws: UndoError.self) {
            _ = try UndoFile.open(path: undoPath).restore(imagePath: scratch.image, inUseCheck: notInUse)
        }
        #expect(error == .imageSizeChanged(recorded: size, current: size + 4096))
    }

    @Test("the writer refuses an existing undo file, creating and writing nothing")
    func existingUndoFile() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        let undoPath = scratch.path("rebuild.undo")
        let kept = Array("an older undo file".utf8)
        #expect(FileManager.default.createFile(atPath: undoPath, contents: Data(kept)))
        let error = #expect(throws: UndoError.self) {
            try scratch.writer().execute(sample.plan, inUseCheck: notInUse)
        }
        #expect(error == .undoFileExists(path: undoPath))
        #expect(error?.description == "undo file \(undoPath) already exists; refusing to overwrite it")
        #expect(try fileBytes(undoPath) == kept)
        #expect(try scratch.isOriginal())
    }

    @Test("the caller's in-use check refuses a run and a restore before anything is opened")
    func inUse() throws {
        let run = try FinishedRun()
        let (scratch, sample, undoPath) = (run.scratch, run.sample, run.undo)
        let mounted: (String) -> String? = { _ in "mounted on /mnt/scratch" }
        let recorder = CallRecorder()
        let second = scratch.writer(undo: "second.undo", systemCalls: recorder.systemCalls)
        #expect(throws: UndoError.imageInUse(path: scratch.image, reason: "mounted on /mnt/scratch")) {
            try second.execute(sample.plan, inUseCheck: mounted)
        }
        #expect(recorder.calls.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: scratch.path("second.undo")))
        #expect(throws: UndoError.imageInUse(path: scratch.image, reason: "mounted on /mnt/scratch")) {
            _ = try UndoFile.open(path: undoPath).restore(imagePath: scratch.image, inUseCheck: mounted)
        }
        try sample.expectFinal(in: scratch.image)
    }

    @Test("a plan that would change the identity bytes or write past the image is refused before the undo file exists")
    func badPlans() throws {
        let scratch = try Scratch()
        let size = try fileSize(scratch.image)
        var sector0 = try readBytes(scratch.image, at: 0, count: 512)
        sector0[40] ^= 1 // inside the UUID (32..<48)
        let changesUUID = ImageWritePlan(phases: [[.init(offset: 0, bytes: sector0)]])
        #expect(throws: UndoError.planChangesIdentity(writeOffset: 0)) {
            try scratch.writer().execute(changesUUID, inUseCheck: notInUse)
        }
        let pastEnd = ImageWritePlan(phases: [[.init(offset: size - 512, bytes: [UInt8](repeating: 1, count: 1024))]])
        #expect(throws: UndoError.writeOutsideImage(offset: size - 512, length: 1024, imageSize: size)) {
            try scratch.writer().execute(pastEnd, inUseCheck: notInUse)
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.path("rebuild.undo")))
        #expect(try scratch.isOriginal())
    }

    @Test("a truncated undo file is refused", arguments: [0, 100, 511, 700, 1024 + 40, -1])
    func truncated(length: Int) throws {
        let run = try FinishedRun()
        let undoPath = run.undo
        let size = try fileSize(undoPath)
        try truncateFile(undoPath, to: length >= 0 ? Int64(length) : size + Int64(length))
        expectRefused(undoPath, .truncated)
    }

    @Test("an undo file with bytes after its data is refused")
    func trailingBytes() throws {
        let run = try FinishedRun()
        let undoPath = run.undo
        let size = try fileSize(undoPath)
        try truncateFile(undoPath, to: size + 512)
        expectRefused(undoPath, .trailingBytes)
    }

    @Test("a huge count is refused before anything is allocated",
          arguments: [
              // Counts whose sections fit in an Int describe a file longer than this one;
              // larger ones overflow.
              (UndoFormat.Field.regionCount, UInt64(1) << 40, UndoFileCheck.truncated),
              (UndoFormat.Field.regionCount, UInt64(1) << 62, .headerFields),
              (UndoFormat.Field.regionCount, UInt64.max, .headerFields),
              (UndoFormat.Field.sectorCRCCount, UInt64(1) << 61, .headerFields),
              (UndoFormat.Field.sectorCRCCount, UInt64(1) << 40, .truncated),
              (UndoFormat.Field.dataLength, UInt64(1) << 50, .truncated),
              (UndoFormat.Field.blobLength, UInt64(UInt32.max), .truncated),
          ])
    func hugeCounts(field: Int, value: UInt64, check: UndoFileCheck) throws {
        let run = try FinishedRun()
        let undoPath = run.undo
        if field == UndoFormat.Field.blobLength {
            try rewriteHeaderField(undoPath, at: field, to: UInt32(value))
        } else {
            try rewriteHeaderField(undoPath, at: field, to: value)
        }
        expectRefused(undoPath, check)
    }

    @Test("an undo file still being written reads only the sections inside it, whatever its counts say")
    func hugeCountsWhileWriting() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        let undoPath = scratch.path("rebuild.undo")
        // Undo-file writes: header, table, 8 regions, then the PREPARED word, which fails.
        #expect(throws: UndoError.self) {
            try scratch.writer(systemCalls: .failing(pwriteNumber: 11, toPath: undoPath))
                .execute(sample.plan, inUseCheck: notInUse)
        }
        #expect(try UndoFile.open(path: undoPath).regions?.count == 8)
        try rewriteHeaderField(undoPath, at: UndoFormat.Field.regionCount, to: UInt64(1) << 40)
        let undo = try UndoFile.open(path: undoPath)
        #expect(undo.state == .writing && undo.regions == nil)
        #expect(try undo.restore(imagePath: scratch.image, inUseCheck: notInUse) == .nothingToUndo(regionsVerified: nil))
        try rewriteHeaderField(undoPath, at: UndoFormat.Field.regionCount, to: UInt64(1) << 62)
        expectRefused(undoPath, .headerFields)
        #expect(try scratch.isOriginal())
    }

    @Test("counts that each fit the file but together do not are refused")
    func countsTogetherTooLarge() throws {
        let run = try FinishedRun()
        let undoPath = run.undo
        let size = UInt64(try fileSize(undoPath))
        try rewriteHeaderField(undoPath, at: UndoFormat.Field.regionCount, to: size / 24)
        expectRefused(undoPath, .truncated)
    }

    @Test("a region table that lies is refused even when its CRC is right",
          arguments: [("overlapping regions", 24, UInt64(0)), ("one content per sector", 16, UInt64(1)),
                      ("misaligned region", 0, UInt64(100)), ("region past the image", 0, UInt64(1) << 40)])
    func lyingTable(lie: String, entryField: Int, value: UInt64) throws {
        let run = try FinishedRun()
        let undoPath = run.undo
        var table = try readBytes(undoPath, at: 1024, count: 8 * 24)
        if entryField == 16 {
            table.storeLittleEndian(UInt32(value), at: entryField)
        } else {
            table.storeLittleEndian(value, at: entryField)
        }
        try writeBytes(undoPath, at: 1024, table)
        let header = try readBytes(undoPath, at: 0, count: 512)
        let sectorCRCs: UInt64 = header.loadLittleEndian(at: UndoFormat.Field.sectorCRCCount)
        let whole = try readBytes(undoPath, at: 1024, count: 8 * 24 + Int(sectorCRCs) * 4)
        try rewriteHeaderField(undoPath, at: UndoFormat.Field.tableCRC, to: RawBytes.crc32c(whole[...]))
        expectRefused(undoPath, .regionTable)
    }

    @Test("a file that is not an undo file is refused by its magic")
    func notAnUndoFile() throws {
        let scratch = try Scratch()
        expectRefused(scratch.original, .magic) // an XFS image: "XFSB", not "XFS-UNDO"
    }
}
