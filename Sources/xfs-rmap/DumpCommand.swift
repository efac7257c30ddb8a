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
        // thread-safe); the text is printed in AG order.
        let texts = try forEachAG(ags) { agno in
            let headers = try image.agHeaders(agno)
            var text = ""
            try image.withCursor(RmapFormat.self, .rmapbt, in: headers) { cursor in
                _ = try cursor.queryAll { record in
                    text += RmapText.line(agno: agno, record)
                    text += "\n"
                    return .proceed
                }
            }
            return text
        }
        var output = StandardOutput()
        output.write(RmapText.header + "\n")
        for text in texts { output.write(text) }
        output.flush()
    }
}
