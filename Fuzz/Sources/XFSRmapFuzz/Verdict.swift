import XFSBTree
import XFSFormat
import XFSRmap

/// What `xfs-rmap check` and `xfs-rmap dump` would say about one image, computed in
/// process with the same library calls.
struct Verdict {
    /// `check`'s exit code: 0 consistent, 1 findings, 2 could not check.
    var check: Int32
    /// `dump`'s exit code: 0 every AG's records walked in key order, 2 an error.
    var dump: Int32
    /// The error that ended the check, or its first finding; nil when consistent.
    var checkMessage: String?
    /// The first error of the dump walk.
    var dumpMessage: String?
    /// Every message the run produced (errors and findings), for the one-line rule.
    var messages: [String]
}

enum VerdictRunner {
    /// Runs the check (open, scan of every AG, check of every AG) and the dump walk (the
    /// rmapbt records of every AG, through a cursor, in key order) on the image at `path`.
    static func run(path: String) -> Verdict {
        var verdict = Verdict(check: 0, dump: 0, checkMessage: nil, dumpMessage: nil, messages: [])
        let image: XFSImage
        do {
            image = try XFSImage(path: path)
        } catch {
            let text = "\(error)"
            return Verdict(check: 2, dump: 2, checkMessage: text, dumpMessage: text, messages: [text])
        }
        let ags = Array(0 ..< image.geometry.agCount)

        // check
        do {
            let scanner = try RmapScanner(image: image)
            try scanner.scan(ags: ags)
            let checker = RmapChecker(scanner: scanner)
            var findings: [RmapFinding] = []
            for result in ParallelAGs.results(ags, { agno in try checker.check(agno) }) {
                findings += try result.get().1
            }
            verdict.messages += findings.map(\.description)
            if let first = findings.first {
                verdict.check = 1
                verdict.checkMessage = first.description
            }
        } catch {
            verdict.check = 2
            verdict.checkMessage = "\(error)"
            verdict.messages.append("\(error)")
        }

        // dump: the record walk of `xfs-rmap dump`, which refuses records out of key order.
        for result in ParallelAGs.results(ags, { agno in try dumpWalk(image, agno) }) {
            if case .failure(let error) = result {
                verdict.messages.append("\(error)")
                if verdict.dump == 0 {
                    verdict.dump = 2
                    verdict.dumpMessage = "\(error)"
                }
            }
        }
        return verdict
    }

    /// Walks AG `agno`'s rmapbt records in key order; returns how many there are.
    private static func dumpWalk(_ image: XFSImage, _ agno: UInt32) throws -> Int {
        let headers = try image.agHeaders(agno)
        var previous: RmapRecord?
        var count = 0
        try image.withCursor(RmapFormat.self, .rmapbt, in: headers) { cursor in
            _ = try cursor.queryAll { record in
                if let previous, !(RmapFormat.lowKey(of: previous) < RmapFormat.lowKey(of: record)) {
                    throw FuzzError("AG \(agno) rmapbt: record \(count) does not sort after record \(count - 1)")
                }
                previous = record
                count += 1
                return .proceed
            }
        }
        return count
    }
}
