// `xfs-rmap check --online MOUNTPOINT`: the tool's side of the live check.
//
// Design note. The library's `OnlineRmapCheck` does the work; this file prints its report
// (text or JSON), maps its outcome to the exit codes of `check` (0 consistent, 1 damage,
// 2 could not check) and makes sure the tracing instance goes away on Ctrl-C or SIGTERM:
// the signals are caught by a dispatch source, which removes every instance this process
// made (by name) and exits 2.

import ArgumentParser
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import XFSFormat
import XFSRmap

/// Runs the online check for `check --online`.
enum OnlineCheck {
    /// Signal sources kept alive while the check runs.
    nonisolated(unsafe) static var signalSources: [DispatchSourceSignal] = []
    /// Set when SIGINT or SIGTERM arrived (the check's own errors then say so).
    nonisolated(unsafe) static var interrupted = false
    static let interruptedMessage = "interrupted: the check was stopped, its tracing instance removed"

    /// Checks the XFS mounted at `mountPoint`; prints the report; throws `ExitCode(1)` on
    /// damage, and a `ToolFailure` (exit 2) when no verdict can be given.
    /// The CPU share of `--background` when `--max-cpu` is not given, in percent of one CPU.
    static let backgroundCPUPercent = 10

    static func run(mountPoint: String, json: Bool, maxFindings: Int, progress: Bool, background: Bool = false,
                    cpuShare: Double? = nil) throws {
        installSignalCleanup()
        if background {
            do {
                try OnlineRmapCheck.runInBackground()
            } catch {
                throw ToolFailure(description: "could not check \(mountPoint) online: \(error)")
            }
        }
        let check: OnlineRmapCheck
        let report: OnlineCheckReport
        do {
            var options = OnlineCheckOptions()
            options.cpuShare = cpuShare
            check = try OnlineRmapCheck(mountPoint: mountPoint, options: options)
            if progress {
                check.progress = { line in
                    var stderr = StandardError()
                    stderr.write("xfs-rmap: \(line)\n")
                }
            }
            report = try check.run()
        } catch let error as LiveCheckError {
            if interrupted {
                RmapTraceSession.cancelAll()
                throw ToolFailure(description: interruptedMessage)
            }
            throw ToolFailure(description: "could not check \(mountPoint) online: \(error)")
        }
        var output = StandardOutput()
        if json {
            output.write(document(mountPoint: mountPoint, check: check, report: report) + "\n")
        } else {
            for line in FindingsText.lines(report.findings, limit: maxFindings) { output.write(line + "\n") }
            for agno in 0..<Int(check.geometry.agCount) {
                let findings = report.findings.filter { $0.agno == agno }
                let counts = RmapFinding.Kind.allCases.compactMap { kind -> String? in
                    let n = findings.filter { $0.kind == kind }.count
                    return n > 0 || [.missing, .extra, .wrong].contains(kind) ? "\(n) \(kind.rawValue)" : nil
                }
                output.write("AG \(agno): \(report.recordsCompared[agno]) inode-owned records compared: \(counts.joined(separator: ", "))\n")
            }
            output.write("live: \(report.updatesSeen) rmap updates traced, \(report.updatesApplied) applied, "
                + "\(report.updatesDropped) dropped (inode not yet scanned or being read), "
                + "\(report.updatesNotInodeOwned) of AG metadata, CoW staging or bmbt blocks\n")
            output.write("scan: \(report.inodesScanned) inodes in \(decimal(report.scanSeconds, places: 2)) s, "
                + "\(report.inodesReread) re-read after racing with an update, \(report.inodesExcluded) left out "
                + "(symlinks, special files, inodes being freed, the superblock's metadata inodes: not openable by handle or skipped by bulkstat)"
                + (report.restarts > 0 ? "; started again \(report.restarts) time\(report.restarts == 1 ? "" : "s") after an update did not fit the trees" : "")
                + "\n")
            output.write("compare: GETFSMAP in \(report.fsmapQueries) block ranges, \(report.fsmapRetries) range quer\(report.fsmapRetries == 1 ? "y" : "ies") repeated after a race, "
                + (report.frozenSeconds.map { "frozen for \(decimal($0, places: 3)) s" } ?? "no freeze") + "\n")
            output.write("cpu: \(decimal(report.cpuSeconds, places: 2)) s of CPU time (user and system)"
                + (check.options.cpuShare.map { share in
                    "; the scan and comparison kept to \(Int((share * 100).rounded())) % of one CPU (\(decimal(report.pacedCPUSeconds, places: 2)) s) by pausing \(decimal(report.pausedSeconds, places: 2)) s"
                } ?? "") + "\n")
            output.write("not checked: AG metadata (OWN_FS, OWN_LOG, OWN_AG, OWN_INOBT, OWN_INODES, OWN_REFC), CoW staging "
                + "extents and bmbt blocks, which user space cannot observe\n")
            output.write(report.isConsistent
                ? "rmap (online): consistent in \(check.geometry.agCount) AG\(check.geometry.agCount == 1 ? "" : "s") "
                    + "(\(decimal(report.totalSeconds, places: 2)) s)\n"
                : "rmap (online): \(report.findings.count) problem\(report.findings.count == 1 ? "" : "s") in "
                    + "\(Set(report.findings.map(\.agno)).count) of \(check.geometry.agCount) AGs\n")
        }
        output.flush()
        if !report.isConsistent { throw ExitCode(1) }
    }

    /// The JSON document of an online check.
    static func document(mountPoint: String, check: OnlineRmapCheck, report: OnlineCheckReport) -> String {
        let findings = report.findings.map { f in
            "{\"ag\": \(f.agno), \"kind\": \"\(f.kind.rawValue)\", \"block\": \(f.block.map(String.init) ?? "null"), "
                + "\"expected\": \(f.expected.map(CheckJSON.record) ?? "null"), \"found\": \(f.found.map(CheckJSON.record) ?? "null"), "
                + "\"detail\": \(CheckJSON.string(f.detail))}"
        }
        let ags = (0..<Int(check.geometry.agCount)).map { agno in
            let n = { (kind: RmapFinding.Kind) in report.findings.filter { $0.agno == agno && $0.kind == kind }.count }
            return "{\"ag\": \(agno), \"consistent\": \(n(.missing) + n(.extra) + n(.wrong) == 0), "
                + "\"records_compared\": \(report.recordsCompared[agno]), \"missing\": \(n(.missing)), \"extra\": \(n(.extra)), \"wrong\": \(n(.wrong))}"
        }
        return "{\"mount_point\": \(CheckJSON.string(mountPoint)), \"online\": true, \"consistent\": \(report.isConsistent), "
            + "\"live_updates\": {\"traced\": \(report.updatesSeen), \"applied\": \(report.updatesApplied), "
            + "\"dropped\": \(report.updatesDropped), \"not_inode_owned\": \(report.updatesNotInodeOwned)}, "
            + "\"scan\": {\"inodes\": \(report.inodesScanned), \"reread\": \(report.inodesReread), "
            + "\"excluded\": \(report.inodesExcluded), \"restarts\": \(report.restarts), \"seconds\": \(report.scanSeconds)}, "
            + "\"fsmap_queries\": \(report.fsmapQueries), \"fsmap_retries\": \(report.fsmapRetries), \"frozen_seconds\": \(report.frozenSeconds.map { "\($0)" } ?? "null"), "
            + "\"seconds\": \(report.totalSeconds), \"cpu_seconds\": \(report.cpuSeconds), "
            + "\"max_cpu_share\": \(check.options.cpuShare.map { "\($0)" } ?? "null"), \"paused_seconds\": \(report.pausedSeconds), \"paced_cpu_seconds\": \(report.pacedCPUSeconds), "
            + "\"not_checked\": [\"AG metadata\", \"CoW staging extents\", \"bmbt blocks\"], "
            + "\"ags\": [" + ags.joined(separator: ", ") + "], \"findings\": [" + findings.joined(separator: ", ") + "]}"
    }

    /// On SIGINT or SIGTERM: remove this process's tracing instances, exit 2.
    static func installSignalCleanup() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                interrupted = true
                RmapTraceSession.cancelAll()
                let removed = RmapTraceSession.removeInstances(ofProcess: getpid())
                var stderr = StandardError()
                stderr.write("xfs-rmap: \(interruptedMessage)" + (removed.isEmpty ? "" : " (\(removed.joined(separator: ", ")))") + "\n")
                exit(2)
            }
            source.resume()
            signalSources.append(source)
        }
    }
}
