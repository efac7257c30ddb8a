import ArgumentParser
import Glibc

/// `xfs-rmap`: check, scan and dump the reverse-mapping btrees of XFS images,
/// built on in-memory btrees as Linux 6.9's online repair is.
@main
struct XFSRmapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xfs-rmap",
        abstract: "Reverse-mapping btrees of XFS filesystems, built in memory.",
        discussion: """
            Exit codes follow xfs_repair -n: 0 consistent, 1 damage found, 2 could not check \
            (a usage error exits 2 too, with the usage on stderr).
            """,
        version: XFSRmapVersion.string,
        subcommands: [CheckCommand.self, ScanCommand.self, DumpCommand.self, RebuildCommand.self, UndoCommand.self, BenchCommand.self])

    /// Parses the arguments, then runs the chosen subcommand. Help and `--version` exit 0
    /// as ArgumentParser prints them; a usage error (an unknown option, a missing or bad
    /// argument) exits 2 with the message and the usage on stderr, and so does any other
    /// error, in one line: 2 is `xfs_repair -n`'s "could not check". With `--json`, `check`
    /// and `rebuild` also print `{"error": MESSAGE}` on stdout then.
    static func main() {
        var command: any ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exitOnUsageError(error, wantsJSON: ToolArguments.wantsJSONError(CommandLine.arguments.dropFirst()))
        }
        do {
            try command.run()
        } catch {
            let wantsJSON = (command as? any JSONOutputCommand)?.json ?? false
            // ArgumentParser's own outcomes (help, exit codes) go back to it.
            if error is ExitCode || error is CleanExit || exitCode(for: error) == .success {
                exit(withError: error)
            }
            // A ValidationError thrown from run() says what was wrong with the values given.
            if String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") {
                exitCouldNotCheck(message(for: error), json: wantsJSON)
            }
            exitCouldNotCheck("\(error)", json: wantsJSON)
        }
    }

    /// Ends the tool for a parse or validation error: exit 0 for help and the version (as
    /// ArgumentParser does), else exit 2 with the message and the usage on stderr, and the
    /// message as a JSON document on stdout when `wantsJSON`.
    static func exitOnUsageError(_ error: any Error, wantsJSON: Bool) -> Never {
        guard exitCode(for: error) != .success else { exit(withError: error) }
        if wantsJSON { printJSONError(message(for: error)) }
        var stderr = StandardError()
        stderr.write(fullMessage(for: error) + "\n")
        Glibc.exit(2)
    }
}

/// `xfs-rmap bench`: measurements of each layer, in release builds.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the layers (build with -c release).",
        subcommands: [BenchBuffers.self, BenchBTree.self, BenchLarge.self])
}

/// The tool's version, printed by `--version`.
enum XFSRmapVersion {
    static let string = "0.1.0"
}
