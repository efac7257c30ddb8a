import Foundation
import Testing
import XFSBuffer
import XFSTestSupport
@testable import XFSUndo

@Suite("Undoable writes on a real image")
struct RoundTripTests {
    @Test("a four-phase plan leaves its final contents, and restore gives the original byte for byte")
    func roundTrip() throws {
        let scratch = try Scratch("mixed-4k")
        let sample = try SamplePlan(image: scratch.image)
        let summary = try scratch.writer(blob: sample.finalSuperblock).execute(sample.plan, inUseCheck: notInUse)
        #expect(summary.regionCount == 8 && summary.imageWrites == 8)
        try sample.expectFinal(in: scratch.image)
        #expect(try !scratch.isOriginal())

        let undo = try UndoFile.open(path: scratch.path("rebuild.undo"))
        #expect(undo.state == .finished)
        let outcome = try undo.restore(imagePath: scratch.image, inUseCheck: notInUse)
        #expect(outcome == .restored(regionsRestored: 8, regionsAlreadyOld: 0))
        #expect(try scratch.isOriginal())
    }

    @Test("restoring twice is harmless: the second time every region already holds its old contents")
    func restoreTwice() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        try scratch.writer().execute(sample.plan, inUseCheck: notInUse)
        let undo = try UndoFile.open(path: scratch.path("rebuild.undo"))
        #expect(try undo.restore(imagePath: scratch.image, inUseCheck: notInUse)
            == .restored(regionsRestored: 8, regionsAlreadyOld: 0))
        let recorder = CallRecorder()
        let again = try UndoFile.open(path: scratch.path("rebuild.undo"), systemCalls: recorder.systemCalls)
        #expect(try again.restore(imagePath: scratch.image, inUseCheck: notInUse)
            == .restored(regionsRestored: 0, regionsAlreadyOld: 8))
        #expect(!recorder.calls.contains { $0.hasPrefix("pwrite") })
        #expect(try scratch.isOriginal())
    }

    @Test("the regions: overlapping writes of different phases are cut into pieces, each with its possible contents")
    func regionsOfTheSamplePlan() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        try scratch.writer().execute(sample.plan, inUseCheck: notInUse)
        let undo = try UndoFile.open(path: scratch.path("rebuild.undo"))
        let size = try fileSize(scratch.image)
        let regions = try #require(undo.regions)
        let expected = (SamplePlan.regions + [(SamplePlan.middle(size), 8192)]).sorted { $0.offset < $1.offset }
        #expect(regions.map(\.offset) == expected.map(\.offset))
        #expect(regions.map(\.length) == expected.map(\.length))
        // Sector 0 and block 6 are written twice: old, first write, second write.
        #expect(regions.map(\.contentCount) == [3, 2, 2, 2, 3, 2, 2, 2])
        #expect(undo.imageSize == size)
    }

    @Test("the undo file is mode 0600, finished, keeps the identity and the blob, and holds no XFS magic")
    func undoFileContents() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        let summary = try scratch.writer(blob: sample.finalSuperblock).execute(sample.plan, inUseCheck: notInUse)
        let path = scratch.path("rebuild.undo")
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect((attributes[.size] as? NSNumber)?.intValue == summary.undoFileSize)
        let undo = try UndoFile.open(path: path)
        #expect(undo.identityOffset == 32)
        #expect(undo.identity == (try readBytes(scratch.original, at: 32, count: 16)))
        #expect(undo.blob == sample.finalSuperblock)
        // The image's superblock begins with "XFSB", and both the blob and the saved
        // sector 0 are superblocks; stored complemented, neither shows the magic.
        let bytes = try fileBytes(path)
        let magic = Array("XFSB".utf8)
        #expect(!bytes.indices.dropLast(3).contains { Array(bytes[$0 ..< $0 + 4]) == magic })
        #expect(Array(bytes[0 ..< 8]) == Array("XFS-UNDO".utf8))
    }

    @Test("the undo file is complete and durable before the first image write; the image is flushed after each phase")
    func ordering() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        let recorder = CallRecorder()
        try scratch.writer(blob: sample.finalSuperblock, systemCalls: recorder.systemCalls)
            .execute(sample.plan, inUseCheck: notInUse)
        let undo = scratch.path("rebuild.undo"), image = scratch.image
        let calls = recorder.calls
        let firstImageWrite = try #require(calls.firstIndex { $0.hasPrefix("pwrite \(image) ") })
        let beforeImage = Array(calls[..<firstImageWrite])
        // Header, fsync, directory fsync, then blob, table, data, fsync, the PREPARED word, fsync.
        let headerWrite = try #require(beforeImage.firstIndex(of: "pwrite \(undo) 0"))
        #expect(beforeImage[headerWrite + 1] == "fsync \(undo)")
        #expect(beforeImage[headerWrite + 3] == "fsync \(scratch.directory)")
        #expect(Array(beforeImage.suffix(3)) == ["fsync \(undo)", "pwrite \(undo) 16", "fsync \(undo)"])
        // Header, blob, table, eight regions' old contents, the state word.
        #expect(beforeImage.filter { $0.hasPrefix("pwrite \(undo)") }.count == 1 + 1 + 1 + 8 + 1)
        // After the first image write: image writes, one fsync per phase, then FINISHED.
        let afterwards = Array(calls[firstImageWrite...])
        let phases = afterwards.split(separator: "fsync \(image)", omittingEmptySubsequences: false)
        #expect(phases.map { $0.count } == [1, 3, 3, 1, 2])
        #expect(Array(afterwards.suffix(2)) == ["pwrite \(undo) 16", "fsync \(undo)"])
        #expect(!afterwards.contains { $0.hasPrefix("pwrite \(undo)") && $0 != "pwrite \(undo) 16" })
    }

    @Test("short and interrupted writes and reads are continued")
    func shortAndInterrupted() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        let counter = Counter()
        var calls = UndoSystemCalls.live
        calls.pwrite = { descriptor, bytes, offset in
            if counter.next() % 2 == 1 { return .failure(.interrupted) }
            return UndoSystemCalls.live.pwrite(descriptor, bytes.prefix(700), offset)
        }
        calls.pread = { descriptor, count, offset in
            if counter.next() % 2 == 1 { return .failure(.interrupted) }
            return UndoSystemCalls.live.pread(descriptor, min(count, 300), offset)
        }
        try scratch.writer(systemCalls: calls).execute(sample.plan, inUseCheck: notInUse)
        try sample.expectFinal(in: scratch.image)
        let undo = try UndoFile.open(path: scratch.path("rebuild.undo"), systemCalls: calls)
        #expect(try undo.restore(imagePath: scratch.image, inUseCheck: notInUse)
            == .restored(regionsRestored: 8, regionsAlreadyOld: 0))
        #expect(try scratch.isOriginal())
    }
}
