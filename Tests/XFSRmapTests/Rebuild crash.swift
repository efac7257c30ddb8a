import Foundation
import Testing
import XFSBuffer
import XFSFormat
import XFSRmap
import XFSTestSupport
import XFSUndo

// A rebuild interrupted at every one of its writes: the image is what a crash there would
// leave (the writer stops, nothing after write k reaches the disk). After each, the undo file
// puts the damaged image back byte for byte, and a new rebuild plans exactly the same writes
// and finishes; xfs_repair -n then finds the image clean.

/// Scans and checks the image at `path` and plans the rebuild the tool would make.
private func planRebuild(_ path: String) throws -> RmapRebuild.Plan {
    let image = try XFSImage(path: path)
    let scanner = try RmapScanner(image: image)
    let all = Array(0..<image.geometry.agCount)
    try scanner.scan(ags: all)
    let checker = RmapChecker(scanner: scanner)
    let results = try all.map { try checker.check($0) }
    let report = RmapCheckReport(summaries: results.map(\.0), findings: results.flatMap(\.1))
    if let refusal = RmapRebuild.refusal(for: report) { throw refusal }
    return try RmapRebuild.plan(scanner: scanner, ags: RmapRebuild.agsToRebuild(report, candidates: all, force: false))
}

/// The plan's writes as the undoable writer takes them.
private func writePlan(_ plan: RmapRebuild.Plan) -> ImageWritePlan {
    ImageWritePlan(phases: plan.phases.map { $0.map { ImageWritePlan.Write(offset: Int64($0.byteOffset), bytes: $0.bytes) } })
}

/// The bytes of `path` in every region `plan` writes.
private func regions(of path: String, _ plan: RmapRebuild.Plan) throws -> [[UInt8]] {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    return try plan.phases.joined().map { write in
        try handle.seek(toOffset: write.byteOffset)
        return [UInt8](try handle.read(upToCount: write.bytes.count) ?? Data())
    }
}

@Suite("Rebuild interrupted", .enabled(if: hasXFSTools, "needs xfs_db and xfs_repair"))
struct RebuildCrashTests {
    @Test("a crash after every write k: undo restores the damaged image byte for byte, and a new rebuild succeeds")
    func crashAtEveryWrite() throws {
        try withScratchCopy(of: "mixed-4k") { path in
            let damage = try CorpusDamagePlan(.recOwner, image: XFSImage(path: path))
            try xfsDBWrite(path, damage.commands)
            let damaged = path + ".damaged"
            try Fixtures.runTool("cp", ["--sparse=always", path, damaged])
            defer { unlink(damaged) }
            let plan = try planRebuild(path)
            let writes = writePlan(plan)
            let before = try regions(of: path, plan)
            let undoPath = path + ".undo"
            defer { unlink(undoPath) }
            let total = writes.writeCount
            #expect(total >= 6, "a rebuild of one AG writes its trees, AGFL, AGF and the superblock twice")
            // Each write fails outright, and each write of more than one sector is also torn
            // after its first sector, half its sectors and all but its last (a crash inside
            // a write of several blocks).
            let lengths = writes.phases.joined().map(\.bytes.count)
            var crashes: [(k: Int, torn: Int)] = []
            for k in 1...total {
                crashes.append((k, 0))
                let length = lengths[k - 1]
                if length > 512 {
                    for torn in Set([512, length / 1024 * 512, length - 512]).sorted() { crashes.append((k, torn)) }
                }
            }
            print("[rebuild crash] \(total) writes in \(writes.phases.count) phases, \(crashes.count) crash points")
            for (k, torn) in crashes {
                let failing = UndoSystemCalls.failing(pwriteNumber: k, toPath: path, writingFirst: torn)
                let writer = UndoableWriter(imagePath: path, undoFilePath: undoPath, identityOffset: 32, identityLength: 16,
                                            blob: plan.finalSuperblock, systemCalls: failing)
                #expect(throws: UndoError.self, "k = \(k), torn after \(torn) bytes") { try writer.execute(writes, inUseCheck: { _ in nil }) }
                // Until the last write, the superblock says NEEDSREPAIR: the kernel will not
                // mount the half-written image.
                if k > 1 {
                    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
                    try handle.seek(toOffset: UInt64(Superblock.featuresIncompatOffset))
                    let incompat = try (handle.read(upToCount: 4) ?? Data()).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                    try handle.close()
                    #expect(incompat & Superblock.Incompat.needsRepair != 0, "k = \(k), torn after \(torn) bytes")
                }
                _ = try UndoFile.open(path: undoPath).restore(imagePath: path, inUseCheck: { _ in nil })
                #expect(try regions(of: path, plan) == before, "k = \(k), torn after \(torn) bytes: the undo did not restore every region")
                unlink(undoPath)
                // A new rebuild of the restored image plans the very same writes.
                let again = try planRebuild(path)
                #expect(again.phases.map { $0.map(\.byteOffset) } == plan.phases.map { $0.map(\.byteOffset) }, "k = \(k), torn after \(torn) bytes")
                #expect(again.phases.map { $0.map(\.bytes) } == plan.phases.map { $0.map(\.bytes) }, "k = \(k), torn after \(torn) bytes")
            }
            // The whole file is the damaged image again, then a rebuild finishes and repairs it.
            #expect(try Fixtures.runTool("cmp", [path, damaged]).isEmpty)
            let writer = UndoableWriter(imagePath: path, undoFilePath: undoPath, identityOffset: 32, identityLength: 16,
                                        blob: plan.finalSuperblock)
            try writer.execute(writes, inUseCheck: { _ in nil })
            let repair = try xfsRepairN(path)
            #expect(repair.status == 0, "\(repair.output.suffix(800))")
            // And the finished rebuild's undo gives the damaged image back, whole.
            _ = try UndoFile.open(path: undoPath).restore(imagePath: path, inUseCheck: { _ in nil })
            #expect(try Fixtures.runTool("cmp", [path, damaged]).isEmpty)
        }
    }
}
