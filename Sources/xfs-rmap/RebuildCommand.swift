import ArgumentParser
import Glibc
import XFSBuffer
import XFSFormat
import XFSRmap
import XFSUndo

/// `xfs-rmap rebuild IMAGE`: writes new rmap btrees (with new free-space btrees and free
/// lists) into the AGs whose rmapbt is damaged, crash-safe and undoable.
struct RebuildCommand: ParsableCommand, JSONOutputCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Rebuild the damaged reverse-mapping btrees of an unmounted XFS image.",
        discussion: """
            Scans and checks the image as check does. When every finding is damage a new rmap \
            btree repairs, plans each damaged AG in memory (new rmapbt, bnobt, cntbt and free \
            list, bulk-loaded from the observations), saves every block it will overwrite in an \
            undo file (fsynced before the first write), then writes with NEEDSREPAIR set until \
            the last write. `xfs-rmap undo UNDO-FILE IMAGE` puts the image back byte for byte.
            Refuses (exit 2, nothing written): a mounted image, a dirty log, NEEDSREPAIR or \
            inprogress already set, damage outside the rmap btree (run xfs_repair), a read-only \
            image.
            Exit codes as xfs_repair: 0 nothing needed rebuilding, 1 rebuilt (or, with \
            --dry-run, would rebuild), 2 refused or failed (with --json, 2 prints \
            {"error": MESSAGE}).
            """)

    @OptionGroup var target: ImageOptions

    @Option(help: ArgumentHelp("Where to keep the undo file (default IMAGE.xfs-rmap-undo; required for a block device).",
                               valueName: "path"))
    var undoFile: String?

    @Flag(help: "Plan and print the rebuild, writing nothing.")
    var dryRun = false

    @Flag(help: "Rebuild the chosen AGs even when they are consistent.")
    var force = false

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    @OptionGroup var scanOptions: ScanOptions

    @OptionGroup var progressOptions: ProgressOptions

    func run() throws {
        guard !target.forceMounted else {
            throw ToolFailure(description: "--force-mounted is not accepted by rebuild: a mounted filesystem is never written")
        }
        let path = target.image
        var status = stat()
        let isBlockDevice = stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFBLK
        if !dryRun && access(path, W_OK) != 0 {
            let code = errno
            // A missing image is left to the open below, which says so.
            if code != ENOENT {
                throw ToolFailure(description: "\(path): cannot rebuild a read-only image (\(Errno(code))); --dry-run shows the plan")
            }
        }
        let undoPath = undoFile ?? (isBlockDevice ? nil : path + ".xfs-rmap-undo")
        guard dryRun || undoPath != nil else {
            throw ToolFailure(description: "\(path) is a block device: name the undo file with --undo-file")
        }
        if !dryRun, let undoPath, access(undoPath, F_OK) == 0 {
            throw ToolFailure(description: "\(undoPath): an undo file is already there (from an earlier rebuild?); "
                + "restore it with xfs-rmap undo, move it away, or name another with --undo-file")
        }

        let (image, ags) = try target.open()
        if let refusal = RmapRebuild.refusal(for: image) { throw ToolFailure(description: "\(path): \(refusal)") }
        let log = try image.readLogState()
        guard log.isClean else {
            throw ToolFailure(description: "\(path): the log is dirty (\(log)): mount and unmount the filesystem to replay it, "
                + "or run xfs_repair -L (which discards it), before a rebuild")
        }

        var output = StandardOutput()
        guard let planned = try scanCheckAndPlan(image, candidates: ags, path: path) else {
            output.write(json ? RebuildJSON.document(image: path, plan: nil, outcome: "nothing to rebuild") + "\n"
                              : "rmap: consistent in \(ags.count) AG\(ags.count == 1 ? "" : "s"): nothing to rebuild\n")
            output.flush()
            return
        }
        let (plan, report) = planned
        if !json {
            for agPlan in plan.ags { output.write(RebuildText.describe(agPlan, report: report) + "\n") }
            output.write("superblock: fdblocks \(plan.oldFreeDataBlocks) -> \(plan.newFreeDataBlocks)\n")
        }
        if dryRun {
            let outcome = "dry run: would write \(plan.phases.reduce(0) { $0 + $1.count }) blocks and sectors "
                + "(\(plan.bytesWritten) bytes); nothing written"
            output.write(json ? RebuildJSON.document(image: path, plan: plan, outcome: outcome) + "\n" : outcome + "\n")
            output.flush()
            throw ExitCode(1)
        }
        output.flush()

        let writer = UndoableWriter(imagePath: path, undoFilePath: undoPath!, identityOffset: 32, identityLength: 16,
                                    blob: plan.finalSuperblock)
        let writes = ImageWritePlan(phases: plan.phases.map { $0.map { ImageWritePlan.Write(offset: Int64($0.byteOffset), bytes: $0.bytes) } })
        do {
            let summary = try writer.execute(writes, inUseCheck: MountCheck.reasonInUse)
            let outcome = "rebuilt \(plan.ags.count) AG\(plan.ags.count == 1 ? "" : "s"): \(summary.imageWrites) writes; "
                + "undo file \(undoPath!) (\(summary.undoFileSize) bytes): xfs-rmap undo \(undoPath!) \(path) puts the image back"
            output.write(json ? RebuildJSON.document(image: path, plan: plan, outcome: outcome) + "\n" : outcome + "\n")
            output.flush()
            throw ExitCode(1)
        } catch let error as UndoError {
            throw ToolFailure(description: RebuildFailure.handle(error, imagePath: path, undoPath: undoPath!))
        }
    }
}

extension RebuildCommand {
    /// Scans and checks every AG of `image`, refuses what a rebuild cannot fix, and plans
    /// the rebuild of the AGs among `candidates` that need one (all of them with
    /// `--force`); nil when none does. The scanner and its in-memory trees are gone when
    /// this returns, before the writer reads the old blocks.
    func scanCheckAndPlan(_ image: XFSImage, candidates: [UInt32],
                          path: String) throws -> (RmapRebuild.Plan, RmapCheckReport)? {
        let scanner = try scanOptions.scanner(for: image)
        try ProgressReporter.run(enabled: progressOptions.progress, scanner: scanner) {
            try scanner.scan(ags: Array(0..<image.geometry.agCount))
        }
        let checker = RmapChecker(scanner: scanner)
        let all = Array(0..<image.geometry.agCount)
        let results = try forEachAG(all, threads: scanOptions.threads) { agno in try checker.check(agno) }
        let report = RmapCheckReport(summaries: results.map(\.0), findings: results.flatMap(\.1))
        if let refusal = RmapRebuild.refusal(for: report) { throw ToolFailure(description: "\(path): \(refusal)") }
        let chosen = RmapRebuild.agsToRebuild(report, candidates: candidates, force: force)
        guard !chosen.isEmpty else { return nil }
        return (try RmapRebuild.plan(scanner: scanner, ags: chosen), report)
    }
}

/// What to say, and do, when the writer stopped: undo automatically whatever reached the
/// image.
enum RebuildFailure {
    static func handle(_ error: UndoError, imagePath: String, undoPath: String) -> String {
        guard case .runStopped = error else { return "\(imagePath): \(error); nothing was written" }
        do {
            let outcome = try UndoFile.open(path: undoPath).restore(imagePath: imagePath, inUseCheck: MountCheck.reasonInUse)
            return "\(imagePath): the rebuild failed (\(error)); undone automatically: \(outcome)"
        } catch {
            return "\(imagePath): the rebuild failed and the automatic undo failed too (\(error)); "
                + "the image has NEEDSREPAIR set: run xfs-rmap undo \(undoPath) \(imagePath) once the cause is fixed"
        }
    }
}

/// The text a rebuild prints per AG.
enum RebuildText {
    static func describe(_ plan: AGRebuildPlan, report: RmapCheckReport) -> String {
        let old = plan.oldAGF, new = plan.fields
        let findings = report.findings.filter { $0.agno == plan.agno }.count
        return "AG \(plan.agno): \(findings) finding\(findings == 1 ? "" : "s"); new rmapbt \(plan.rmapRecords) records in "
            + "\(plan.rmapBlocks.count) blocks, height \(new.rmapLevel), root \(old.rmapRoot) -> \(new.rmapRoot) "
            + "(was \(old.rmapBlocks) blocks, height \(old.rmapLevel)); bnobt/cntbt \(plan.freeExtents) extents, "
            + "\(plan.bnoBlocks.count)+\(plan.cntBlocks.count) blocks; free list \(old.flCount) -> \(new.flCount); "
            + "freeblks \(old.freeBlocks) -> \(new.freeBlocks)"
    }
}

/// The JSON form of a rebuild.
enum RebuildJSON {
    static func document(image: String, plan: RmapRebuild.Plan?, outcome: String) -> String {
        let ags = (plan?.ags ?? []).map { p in
            let f = p.fields, o = p.oldAGF
            return "{\"ag\": \(p.agno), \"rmap_records\": \(p.rmapRecords), \"free_extents\": \(p.freeExtents), "
                + "\"old\": {\"rmap_root\": \(o.rmapRoot), \"rmap_level\": \(o.rmapLevel), \"rmap_blocks\": \(o.rmapBlocks), "
                + "\"bno_root\": \(o.bnoRoot), \"cnt_root\": \(o.cntRoot), \"freeblks\": \(o.freeBlocks), \"flcount\": \(o.flCount)}, "
                + "\"new\": {\"rmap_root\": \(f.rmapRoot), \"rmap_level\": \(f.rmapLevel), \"rmap_blocks\": \(f.rmapBlocks), "
                + "\"bno_root\": \(f.bnoRoot), \"bno_level\": \(f.bnoLevel), \"cnt_root\": \(f.cntRoot), \"cnt_level\": \(f.cntLevel), "
                + "\"freeblks\": \(f.freeBlocks), \"longest\": \(f.longest), \"btreeblks\": \(f.btreeBlocks), "
                + "\"flfirst\": \(f.flFirst), \"fllast\": \(f.flLast), \"flcount\": \(f.flCount)}}"
        }
        var fields = ["\"image\": \(CheckJSON.string(image))", "\"ags\": [" + ags.joined(separator: ", ") + "]"]
        if let plan {
            fields.append("\"fdblocks\": {\"old\": \(plan.oldFreeDataBlocks), \"new\": \(plan.newFreeDataBlocks)}")
            fields.append("\"bytes_written\": \(plan.bytesWritten)")
        }
        fields.append("\"outcome\": \(CheckJSON.string(outcome))")
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

