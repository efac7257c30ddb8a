import ArgumentParser
import XFSUndo

/// `xfs-rmap undo UNDO-FILE IMAGE`: puts an image back as it was before a rebuild.
struct UndoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undo",
        abstract: "Put an image back as it was before a rebuild, from the rebuild's undo file.",
        discussion: """
            Checks everything before writing anything: the undo file's CRCs, that it belongs to \
            this filesystem (uuid) and the image's size, and that every block it saved still \
            holds what the rebuild left there (an image changed since is refused). Then writes \
            the old blocks back and flushes. Undoing twice is harmless.
            Refuses (exit 2, nothing written) a mounted image. Exit 0 when the image is back.
            """)

    @Argument(help: "The undo file a rebuild wrote.")
    var undoFile: String

    @Argument(help: "The image the rebuild wrote.")
    var image: String

    func run() throws {
        do {
            let undo = try UndoFile.open(path: undoFile)
            let outcome = try undo.restore(imagePath: image, inUseCheck: MountCheck.reasonInUse)
            var output = StandardOutput()
            output.write("\(image): \(outcome)\n")
            output.flush()
        } catch {
            // Every check comes before the first write; only a failing write or flush
            // can leave the image partly restored.
            if case let .systemCallFailed(call, _, _, _) = error, call == "pwrite" || call.hasPrefix("fsync") {
                throw ToolFailure(description: "\(error): the image may be partly restored; run undo again once the cause is fixed")
            }
            throw ToolFailure(description: "\(error); nothing was written")
        }
    }
}
