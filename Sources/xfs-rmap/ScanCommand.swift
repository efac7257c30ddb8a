import ArgumentParser
import XFSFormat
import XFSRmap

/// `xfs-rmap scan IMAGE [--ag N]`: the rmap records the filesystem implies, gathered into
/// in-memory rmap btrees, in the record text format.
struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Compute the reverse-mapping records an XFS image should hold.",
        discussion: """
            Walks the AG headers, every AG btree and every allocated inode, stashing each \
            observation into an in-memory rmap btree per AG (merging as the kernel does), then \
            prints the records in the same text format as dump. On a consistent filesystem the \
            two are equal.
            Exit 0 when every observation was read; 1 when some could not be (each problem, \
            then a summary line, on stderr: the records printed leave out what they would have \
            added); 2 when the image cannot be read.
            """)

    @OptionGroup var target: ImageOptions

    @OptionGroup var scanOptions: ScanOptions

    @OptionGroup var progressOptions: ProgressOptions

    func run() throws {
        let (image, ags) = try target.open()
        let scanner = try scanOptions.scanner(for: image)
        // Records of the chosen AG may come from inodes anywhere: scan every AG's inodes.
        try ProgressReporter.run(enabled: progressOptions.progress, scanner: scanner) {
            try scanner.scan(ags: Array(0..<image.geometry.agCount))
        }
        var output = StandardOutput()
        output.write(RmapText.header + "\n")
        for agno in ags {
            try scanner.tree(agno).forEach { record in
                output.writeRecord(agno: agno, record)
                return .proceed
            }
        }
        output.flush()
        var stderr = StandardError()
        let problems = scanner.problems
        for problem in problems { stderr.write("xfs-rmap: warning: \(problem)\n") }
        guard problems.isEmpty else {
            stderr.write("xfs-rmap: \(problems.count) problem\(problems.count == 1 ? "" : "s") in the scan: "
                + "the records printed leave out what could not be read\n")
            throw ExitCode(1)
        }
    }
}
