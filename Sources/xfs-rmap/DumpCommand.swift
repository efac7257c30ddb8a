import ArgumentParser
import XFSBTree
import XFSFormat
import XFSRmap

/// `xfs-rmap dump IMAGE [--ag N]`: the on-disk rmap records, as `xfs_db btdump` shows them,
/// in the record text format; of a damaged tree, the records that can be read.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the on-disk reverse-mapping records of an XFS image.",
        discussion: """
            Output: one header line, then agno, startblock, blockcount, owner, offset, \
            unwritten, attrfork, bmbtblock per record, tab-separated. Of an AG whose rmapbt is \
            damaged (or whose AGF cannot be read) it prints the records that can be read, in \
            tree order, each leaf once, and says on stderr what it could not read.
            Exit 0 when everything was printed, 1 when something could not be read, 2 when the \
            image cannot be read at all.
            """)

    @OptionGroup var target: ImageOptions

    @OptionGroup var threadOptions: ThreadOptions

    /// At most this many of an AG's faults are printed on stderr.
    static let faultsShown = 10

    func run() throws {
        let (image, ags) = try target.open()
        // Each AG's tree is read on its own thread (the file target's cache is shared and
        // thread-safe) and formatted straight into bytes; the text is printed in AG order.
        let dumps = try forEachAG(ags, threads: threadOptions.threads) { agno -> AGDump in
            do {
                return AGDump(text: try Self.dumpInOrder(image, agno), problems: [])
            } catch {
                return Self.salvage(image, agno, error)
            }
        }
        var output = StandardOutput()
        output.write(RmapText.header + "\n")
        for dump in dumps { output.write(bytes: dump.text) }
        output.flush()
        let problems = dumps.flatMap(\.problems)
        guard problems.isEmpty else {
            var stderr = StandardError()
            for problem in problems { stderr.write("xfs-rmap: \(problem)\n") }
            throw ExitCode(1)
        }
    }

    /// One AG's record lines, and what could not be read (one line each).
    struct AGDump: Sendable {
        var text: [UInt8]
        var problems: [String]
    }

    /// AG `agno`'s records through the cursor, in key order: the usual case, fast. Throws
    /// at the first fault, or when a record does not sort after the one before it (keys out
    /// of order, a leaf reached through two pointers): not what a well-formed tree holds.
    static func dumpInOrder(_ image: XFSImage, _ agno: UInt32) throws -> [UInt8] {
        let agf = try image.agf(agno)
        var text: [UInt8] = []
        var previous: RmapRecord?
        var index = 0
        try image.withCursor(RmapFormat.self, AGBTreeRoot(.rmapbt, agno: agno, agf: agf)) { cursor in
            _ = try cursor.queryAll { record in
                if let previous, !(RmapFormat.lowKey(of: previous) < RmapFormat.lowKey(of: record)) {
                    throw ToolFailure(description: "AG \(agno) rmapbt: record \(index) \(RmapText.describe(record)) "
                        + "does not sort after record \(index - 1) \(RmapText.describe(previous)): "
                        + "keys out of order or a leaf reached twice")
                }
                previous = record
                index += 1
                RmapText.appendLine(agno: agno, record, to: &text)
                return .proceed
            }
        }
        return text
    }

    /// What can be read of AG `agno`'s damaged rmapbt (`failure` stopped the in-order dump):
    /// the records of every leaf the verifier's walk reads, in tree order, each leaf once;
    /// its faults (the first few) and a summary line are the problems.
    static func salvage(_ image: XFSImage, _ agno: UInt32, _ failure: any Error) -> AGDump {
        let agf: AGF
        do {
            agf = try image.agf(agno)
        } catch {
            return AGDump(text: [], problems: ["\(error): no records of AG \(agno) printed"])
        }
        let store = AGBTreeStore<RmapFormat>(image: image, agno: agno, root: agf.rmapRoot, height: Int(agf.rmapLevel),
                                             maxHeight: image.geometry.maxRmapBTreeLevels)
        var text: [UInt8] = []
        var count = 0
        let report = BTreeVerifier<RmapFormat, AGBTreeStore<RmapFormat>>.verify(store) { record in
            RmapText.appendLine(agno: agno, record, to: &text)
            count += 1
        }
        var problems = report.faults.prefix(faultsShown).map { RmapFinding.structure(agno: agno, fault: $0).description }
        if report.faults.count > faultsShown {
            problems.append("... and \(report.faults.count - faultsShown) more faults in AG \(agno) (xfs-rmap check lists them)")
        }
        if report.faults.isEmpty { problems.append("\(failure)") }
        problems.append("AG \(agno): printed the \(count) record\(count == 1 ? "" : "s") that could be read, in tree order")
        return AGDump(text: text, problems: problems)
    }
}
