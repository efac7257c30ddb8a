import ArgumentParser
import Glibc
import XFSFormat
import XFSRmap

/// `xfs-rmap check IMAGE [--ag N] [--json]`: compares the reverse mappings the filesystem
/// implies with its rmap btrees, and verifies their structure.
struct CheckCommand: ParsableCommand, JSONOutputCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the reverse-mapping btrees of an XFS image.",
        discussion: """
            Scans the image into in-memory rmap btrees (see scan), verifies each AG's on-disk \
            rmapbt with the btree engine's verifier and the AGF's counters, and compares the \
            record sets exactly. Prints the missing, extra and wrong records and the \
            structural faults with their AG and block (at most --max-findings per AG; --json \
            lists every one), then one summary line per AG. The records of an inode the scan \
            could not read are one finding, not one per record.
            Exit codes as xfs_repair -n: 0 consistent, 1 damage found, 2 could not check \
            (with --json, 2 prints {"error": MESSAGE}).
            """)

    @OptionGroup var target: ImageOptions

    @Flag(help: "Print one JSON document instead of text.")
    var json = false

    @Option(help: "Text output: at most this many findings per AG, then a count of the rest (0: no limit).")
    var maxFindings = 50

    @Flag(help: "Print the peak resident memory on stderr.")
    var verbose = false

    @OptionGroup var scanOptions: ScanOptions

    @OptionGroup var progressOptions: ProgressOptions

    @Flag(help: "Check the filesystem mounted at IMAGE (a mount point) while it is in use: live updates from the kernel's rmap tracepoints, an inode scan, and GETFSMAP (see OnlineCheck).")
    var online = false

    @Flag(help: "With --online: run as background maintenance: at idle CPU and I/O priority (SCHED_IDLE, IOPRIO_CLASS_IDLE), and at most --max-cpu percent of one CPU (10 unless given).")
    var background = false

    @Option(name: .customLong("max-cpu"), help: ArgumentHelp(
        "With --online: use at most this percentage of one CPU (1-100), averaged over the check; it then sleeps between its system calls and takes longer.",
        valueName: "percent"))
    var maxCPU: Int?

    func validate() throws {
        guard maxFindings >= 0 else { throw ValidationError("--max-findings must be 0 (no limit) or more, not \(maxFindings)") }
        guard online || !background else { throw ValidationError("--background needs --online") }
        guard online || maxCPU == nil else { throw ValidationError("--max-cpu needs --online") }
        if let maxCPU, !(1...100).contains(maxCPU) {
            throw ValidationError("--max-cpu must be a percentage of one CPU from 1 to 100, not \(maxCPU)")
        }
    }

    /// The CPU share the online check keeps to: --max-cpu, else 10 % in the background, else none.
    var cpuShare: Double? {
        if let maxCPU { return Double(maxCPU) / 100 }
        return background ? Double(OnlineCheck.backgroundCPUPercent) / 100 : nil
    }

    func run() throws {
        if online {
            try OnlineCheck.run(mountPoint: target.image, json: json, maxFindings: maxFindings,
                                progress: progressOptions.progress, background: background, cpuShare: cpuShare)
            return
        }
        let opened = try target.openImage()
        let (image, ags) = (opened.image, opened.ags)
        let log = LogReport(image)
        let scanner = try scanOptions.scanner(for: image)
        try ProgressReporter.run(enabled: progressOptions.progress, scanner: scanner) {
            try scanner.scan(ags: Array(0..<image.geometry.agCount))
        }
        let checker = RmapChecker(scanner: scanner)
        let results = try forEachAG(ags, threads: scanOptions.threads) { agno in try checker.check(agno) }
        let report = RmapCheckReport(summaries: results.map(\.0), findings: results.flatMap(\.1))
        var output = StandardOutput()
        if json {
            output.write(CheckJSON.document(image: target.image, report: report, peakRSS: peakResidentBytes(),
                                            state: [opened.mountJSONField, log.jsonField]) + "\n")
        } else {
            for warning in opened.mountWarnings + log.warnings { output.write("warning: \(warning)\n") }
            for line in FindingsText.lines(report.findings, limit: maxFindings) { output.write(line + "\n") }
            for summary in report.summaries { output.write(summary.line + "\n") }
            output.write(report.isConsistent
                ? "rmap: consistent in \(ags.count) AG\(ags.count == 1 ? "" : "s")\n"
                : "rmap: \(report.findings.count) problem\(report.findings.count == 1 ? "" : "s") in \(report.summaries.filter { !$0.isConsistent }.count) of \(ags.count) AG\(ags.count == 1 ? "" : "s")\n")
        }
        output.flush()
        if verbose && !json {
            var stderr = StandardError()
            stderr.write("peak RSS \(peakResidentBytes() / 1024) KiB\n")
        }
        if !report.isConsistent { throw ExitCode(1) }
    }
}

/// The process's peak resident set, in bytes.
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

/// The text lines of findings, at most `limit` per AG (0: all), each AG's rest counted in
/// one line: "... and 1863 more findings in AG 1".
enum FindingsText {
    static func lines(_ findings: [RmapFinding], limit: Int) -> [String] {
        var lines: [String] = []
        var index = findings.startIndex
        while index < findings.endIndex {
            let agno = findings[index].agno
            let end = findings[index...].firstIndex { $0.agno != agno } ?? findings.endIndex
            let shown = limit == 0 ? end - index : min(limit, end - index)
            lines += findings[index..<(index + shown)].map(\.description)
            let rest = end - index - shown
            if rest > 0 {
                lines.append("... and \(rest) more finding\(rest == 1 ? "" : "s") in AG \(agno) (--max-findings 0 or --json lists every one)")
            }
            index = end
        }
        return lines
    }
}

/// The JSON form of a check report.
enum CheckJSON {
    /// The document; `state` holds more top-level fields (the mount and log states).
    static func document(image: String, report: RmapCheckReport, peakRSS: Int, state: [String] = []) -> String {
        let ags = report.summaries.map { s in
            var fields = [
                "\"ag\": \(s.agno)", "\"consistent\": \(s.isConsistent)",
                "\"expected_records\": \(s.expectedRecords)",
                "\"on_disk_records\": \(s.onDiskRecords.map(String.init) ?? "null")",
                "\"on_disk_blocks\": \(s.onDiskBlocks)", "\"height\": \(s.height)",
            ]
            fields += RmapFinding.Kind.allCases.map { "\"\($0.rawValue)\": \(s.counts[$0] ?? 0)" }
            fields.append("\"unchecked_records\": \(s.uncheckedRecords)")
            return "{" + fields.joined(separator: ", ") + "}"
        }
        let findings = report.findings.map { f in
            var fields = ["\"ag\": \(f.agno)", "\"kind\": \"\(f.kind.rawValue)\"", "\"block\": \(f.block.map(String.init) ?? "null")",
                          "\"block_kind\": \(f.blockKind.map { "\"\($0.rawValue)\"" } ?? "null")"]
            fields.append("\"expected\": \(f.expected.map(record) ?? "null")")
            fields.append("\"found\": \(f.found.map(record) ?? "null")")
            fields.append("\"detail\": \(string(f.detail))")
            let unchecked = f.unchecked.map {
                "{\"ag\": \($0.agno), \"records\": \($0.records), \"first_block\": \($0.firstBlock), \"last_block\": \($0.lastBlock)}"
            }
            fields.append("\"unchecked\": [" + unchecked.joined(separator: ", ") + "]")
            return "{" + fields.joined(separator: ", ") + "}"
        }
        return "{\"image\": \(string(image)), \"consistent\": \(report.isConsistent), \"peak_rss_bytes\": \(peakRSS), "
            + state.map { $0 + ", " }.joined() + "\"ags\": [" + ags.joined(separator: ", ") + "], \"findings\": [" + findings.joined(separator: ", ") + "]}"
    }

    static func record(_ r: RmapRecord) -> String {
        "{\"startblock\": \(r.startBlock), \"blockcount\": \(r.blockCount), \"owner\": \(RmapOwner.signedValue(r.owner)), "
            + "\"offset\": \(r.offset), \"unwritten\": \(r.isUnwritten), \"attrfork\": \(r.isAttrFork), \"bmbtblock\": \(r.isBmbtBlock)}"
    }

    /// A JSON string literal.
    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
