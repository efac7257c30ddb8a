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

    /// At most this many of an AG's faults are printed on stderr.
    static let faultsShown = 10

    func run() throws {
        // Every block is read once, in tree order, so a small cache loses nothing; the
        // records are formatted straight into the output as they are read, AG after AG,
        // so nothing of an AG is held: memory stays flat whatever the tree's size.
        let (image, ags) = try target.open(cacheCapacity: 1 << 20)
        var output = StandardOutput()
        output.write(RmapText.header + "\n")
        var problems: [String] = []
        for agno in ags { problems += Self.dump(image, agno, into: &output) }
        output.flush()
        guard problems.isEmpty else {
            var stderr = StandardError()
            for problem in problems { stderr.write("xfs-rmap: \(problem)\n") }
            throw ExitCode(1)
        }
    }

    /// Writes AG `agno`'s records to `output` as the verifier's walk reads them: of a sound
    /// tree every record in key order; of a damaged one the records of every leaf the walk
    /// can read, in tree order, each leaf once. Returns what could not be read: the first
    /// faults and a summary line, or nothing.
    static func dump(_ image: XFSImage, _ agno: UInt32, into output: inout StandardOutput) -> [String] {
        let agf: AGF
        do {
            agf = try image.agf(agno)
        } catch {
            return ["\(error): no records of AG \(agno) printed"]
        }
        let store = AGBTreeStore<RmapFormat>(image: image, agno: agno, root: agf.rmapRoot, height: Int(agf.rmapLevel),
                                             maxHeight: image.geometry.maxRmapBTreeLevels)
        var count = 0
        let report = BTreeVerifier<RmapFormat, AGBTreeStore<RmapFormat>>.verify(store) { record in
            output.writeRecord(agno: agno, record)
            count += 1
        }
        guard !report.faults.isEmpty else { return [] }
        var problems = report.faults.prefix(faultsShown).map { RmapFinding.structure(agno: agno, fault: $0).description }
        if report.faults.count > faultsShown {
            problems.append("... and \(report.faults.count - faultsShown) more faults in AG \(agno) (xfs-rmap check lists them)")
        }
        problems.append("AG \(agno): printed the \(count) record\(count == 1 ? "" : "s") that could be read, in tree order")
        return problems
    }
}
