import ArgumentParser
import XFSFormat
import XFSRmap

/// `xfs-rmap dump IMAGE [--ag N]`: the on-disk rmap records, as `xfs_db btdump` shows them,
/// in the record text format.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the on-disk reverse-mapping records of an XFS image.",
        discussion: "Output: one header line, then agno, startblock, blockcount, owner, offset, unwritten, attrfork, bmbtblock per record, tab-separated. Exit 2 when the image cannot be read.")

    @OptionGroup var target: ImageOptions

    func run() throws {
        let (image, ags) = try target.open()
        // Each AG's tree is read on its own thread (the file target's cache is shared and
        // thread-safe) and formatted straight into bytes; the text is printed in AG order.
        let texts = try forEachAG(ags) { agno -> [UInt8] in
            let headers = try image.agHeaders(agno)
            var text: [UInt8] = []
            var previous: RmapRecord?
            var index = 0
            try image.withCursor(RmapFormat.self, .rmapbt, in: headers) { cursor in
                _ = try cursor.queryAll { record in
                    // A well-formed rmapbt holds strictly increasing keys; anything else (keys
                    // out of order, a leaf reached through two pointers) is not what the tree
                    // means.
                    if let previous, !(RmapFormat.lowKey(of: previous) < RmapFormat.lowKey(of: record)) {
                        throw ToolFailure(description: "AG \(agno) rmapbt: record \(index) (\(RmapText.describe(record))) "
                            + "does not sort after record \(index - 1) (\(RmapText.describe(previous))): "
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
        var output = StandardOutput()
        output.write(RmapText.header + "\n")
        for text in texts { output.write(bytes: text) }
        output.flush()
    }
}
