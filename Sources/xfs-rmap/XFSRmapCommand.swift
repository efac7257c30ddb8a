import ArgumentParser

/// `xfs-rmap`: check, scan and dump the reverse-mapping btrees of XFS images,
/// built on in-memory btrees as Linux 6.9's online repair is.
@main
struct XFSRmapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xfs-rmap",
        abstract: "Reverse-mapping btrees of XFS filesystems, built in memory.",
        discussion: """
            Exit codes follow xfs_repair -n: 0 consistent, 1 damage found, 2 could not check.
            """,
        version: XFSRmapVersion.string,
        subcommands: [CheckCommand.self, ScanCommand.self, DumpCommand.self, RebuildCommand.self, UndoCommand.self, BenchCommand.self])

    /// Parses the arguments (a usage error exits as ArgumentParser does), then runs the
    /// chosen subcommand. Any other error ends the tool with one line on stderr and exit
    /// code 2, which `xfs_repair -n` uses for "could not check".
    static func main() {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        do {
            try command.run()
        } catch {
            // ArgumentParser's own outcomes (help, version, exit codes) go back to it.
            if error is ExitCode || error is CleanExit || String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
                exit(withError: error)
            }
            exitCouldNotCheck("\(error)")
        }
    }
}

/// `xfs-rmap bench`: measurements of each layer, in release builds.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the layers (build with -c release).",
        subcommands: [BenchBuffers.self, BenchBTree.self])
}

/// The tool's version, printed by `--version`.
enum XFSRmapVersion {
    static let string = "0.1.0"
}
