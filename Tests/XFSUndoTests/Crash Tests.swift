import Foundation
import Testing
import XFSBuffer
import XFSTestSupport
@testable import XFSUndo

@Suite("Crashes during a run")
struct CrashTests {
    @Test("a crash at every image write k = 1…N: restore gives the original, and the plan then runs again")
    func crashAtEveryImageWrite() throws {
        let scratch = try Scratch("mixed-4k")
        let sample = try SamplePlan(image: scratch.image)
        let writes = sample.plan.writeCount
        #expect(writes == 8)
        let undoPath = scratch.path("rebuild.undo")
        for k in 1 ... writes {
            let failing = UndoSystemCalls.failing(pwriteNumber: k, toPath: scratch.image)
            let error = #expect(throws: UndoError.self, "k = \(k)") {
                try scratch.writer(systemCalls: failing).execute(sample.plan, inUseCheck: notInUse)
            }
            guard case let .runStopped(cause, state, done)? = error else {
                Issue.record("k = \(k): \(String(describing: error))")
                continue
            }
            #expect(state == .prepared && done == k - 1, "k = \(k)")
            guard case .systemCallFailed("pwrite", scratch.image, _, .ioError) = cause else {
                Issue.record("k = \(k): cause \(cause)")
                continue
            }
            let undo = try UndoFile.open(path: undoPath)
            #expect(undo.state == .prepared)
            guard case let .restored(restored, alreadyOld) = try undo.restore(imagePath: scratch.image,
                                                                              inUseCheck: notInUse) else {
                Issue.record("k = \(k): nothing restored")
                continue
            }
            #expect(restored + alreadyOld == 8 && (k == 1) == (restored == 0), "k = \(k)")
            #expect(try scratch.isOriginal(), "k = \(k): restore did not give the original")

            // The user runs the rebuild again after removing the old undo file.
            try FileManager.default.removeItem(atPath: undoPath)
            try scratch.writer().execute(sample.plan, inUseCheck: notInUse)
            try sample.expectFinal(in: scratch.image)
            // Back to the original for the next k.
            #expect(try UndoFile.open(path: undoPath).restore(imagePath: scratch.image, inUseCheck: notInUse)
                == .restored(regionsRestored: 8, regionsAlreadyOld: 0), "k = \(k)")
            try FileManager.default.removeItem(atPath: undoPath)
        }
        #expect(try scratch.isOriginal())
    }

    @Test("a torn write (part of a region written, then a crash) restores: CRCs are per sector")
    func tornWrite() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        // Write 2 is phase 2's 16 KiB run: its first 3 sectors reach the image (a disk
        // writes a sector whole or not at all).
        let failing = UndoSystemCalls.failing(pwriteNumber: 2, toPath: scratch.image, writingFirst: 1536)
        #expect(throws: UndoError.self) {
            try scratch.writer(systemCalls: failing).execute(sample.plan, inUseCheck: notInUse)
        }
        let newRun = sample.plan.phases[1][0].bytes
        #expect(try readBytes(scratch.image, at: 5 * 4096, count: 1536) == Array(newRun[..<1536]))
        let undo = try UndoFile.open(path: scratch.path("rebuild.undo"))
        #expect(try undo.restore(imagePath: scratch.image, inUseCheck: notInUse)
            == .restored(regionsRestored: 2, regionsAlreadyOld: 6)) // sector 0 and block 5
        #expect(try scratch.isOriginal())
    }

    @Test("a crash while writing the undo file leaves the image untouched; restore says there is nothing to undo",
          arguments: [
              // (failing pwrite to the undo file, regions restore can verify)
              (2, nil), // the blob: the table is missing
              (3, nil), // the table
              (4, 8), // the first region's old contents: the table is there
              (11, 8), // the last region's old contents
              (12, 8), // the PREPARED word
          ] as [(Int, Int?)])
    func crashWritingTheUndoFile(failingWrite: Int, verified: Int?) throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        let undoPath = scratch.path("rebuild.undo")
        let failing = UndoSystemCalls.failing(pwriteNumber: failingWrite, toPath: undoPath)
        let error = #expect(throws: UndoError.self) {
            try scratch.writer(blob: sample.finalSuperblock, systemCalls: failing)
                .execute(sample.plan, inUseCheck: notInUse)
        }
        guard case let .runStopped(_, state, done)? = error else {
            Issue.record("\(String(describing: error))")
            return
        }
        #expect(state == .writing && done == 0)
        #expect(try scratch.isOriginal())

        let recorder = CallRecorder()
        let undo = try UndoFile.open(path: undoPath, systemCalls: recorder.systemCalls)
        #expect(undo.state == .writing)
        #expect((undo.regions == nil) == (verified == nil))
        #expect(try undo.restore(imagePath: scratch.image, inUseCheck: notInUse)
            == .nothingToUndo(regionsVerified: verified))
        #expect(!recorder.calls.contains { $0.hasPrefix("pwrite") })
        #expect(try scratch.isOriginal())
    }

    @Test("a crash at the undo file's first write leaves an empty file that restore refuses, the image untouched")
    func crashWritingTheHeader() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        let undoPath = scratch.path("rebuild.undo")
        let failing = UndoSystemCalls.failing(pwriteNumber: 1, toPath: undoPath)
        #expect(throws: UndoError.self) {
            try scratch.writer(systemCalls: failing).execute(sample.plan, inUseCheck: notInUse)
        }
        #expect(try scratch.isOriginal())
        let error = #expect(throws: UndoError.self) { _ = try UndoFile.open(path: undoPath) }
        guard case .invalidUndoFile(_, .truncated, _)? = error else {
            Issue.record("\(String(describing: error))")
            return
        }
    }

    @Test("a crash after the last image write, before FINISHED is marked, restores as well")
    func crashBeforeFinished() throws {
        let scratch = try Scratch()
        let sample = try SamplePlan(image: scratch.image)
        let undoPath = scratch.path("rebuild.undo")
        // Undo-file writes: header, table, 8 regions, PREPARED (no blob), then FINISHED.
        let failing = UndoSystemCalls.failing(pwriteNumber: 12, toPath: undoPath)
        let error = #expect(throws: UndoError.self) {
            try scratch.writer(systemCalls: failing).execute(sample.plan, inUseCheck: notInUse)
        }
        #expect(error.map { if case .runStopped(_, .prepared, 8) = $0 { true } else { false } } == true)
        try sample.expectFinal(in: scratch.image)
        let undo = try UndoFile.open(path: undoPath)
        #expect(undo.state == .prepared)
        #expect(try undo.restore(imagePath: scratch.image, inUseCheck: notInUse)
            == .restored(regionsRestored: 8, regionsAlreadyOld: 0))
        #expect(try scratch.isOriginal())
    }
}
