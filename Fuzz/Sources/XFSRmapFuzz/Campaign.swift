import Glibc
import XFSBuffer
import XFSFormat

/// Writes `text` to standard error.
func warn(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Environment variables, read with getenv.
struct ProcessInfoLite {
    subscript(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}

/// One fuzzing process: the base image's layout, the working copy each case is written to,
/// the mutator, the verdict oracle, and the tallies the report gives.
final class Campaign {
    let layout: Layout
    let mutator: Mutator
    let workPath: String
    let workdir: String
    let reportPath: String
    let explain: Bool
    let abortOnMiss: Bool
    private let fd: Int32
    /// The input bytes the working copy holds now.
    private var current: [UInt8]

    // Tallies.
    private var cases = 0
    private var verdicts = [0, 0, 0]
    private var unchanged = 0
    private var badCRC = 0
    private var misses = 0
    private var missNotes: [String] = []
    /// Missed verdicts by what the input changed (the first reasons, field names only).
    private var missReasons: [String: Int] = [:]
    private var perField: [Int32: (changed: Int, passed: Int)] = [:]
    private var errorPlaces: [String: Int] = [:]
    private var slowest: (seconds: Double, what: String) = (0, "")
    private var started = Campaign.now()

    init(base: String, workdir: String, report: String?, explain: Bool, abortOnMiss: Bool) throws {
        layout = try Layout(path: base)
        mutator = Mutator(layout: layout)
        self.workdir = workdir
        self.explain = explain
        self.abortOnMiss = abortOnMiss
        reportPath = report ?? workdir + "/report.txt"
        workPath = workdir + "/xfs-rmap-fuzz-\(getpid()).img"
        current = layout.clean
        fd = try Campaign.sparseCopy(base, to: workPath, size: layout.imageSize)
        // The clean image must pass, or the oracle means nothing.
        let verdict = VerdictRunner.run(path: workPath)
        guard verdict.check == 0, verdict.dump == 0 else {
            throw FuzzError("the base image does not check clean: \(verdict.checkMessage ?? verdict.dumpMessage ?? "?")")
        }
    }

    /// Copies the image at `source` to `path`, leaving holes where the source reads zero.
    private static func sparseCopy(_ source: String, to path: String, size: Int) throws -> Int32 {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw FuzzError("cannot open \(source): errno \(errno)") }
        defer { close(input) }
        let output = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0, ftruncate(output, off_t(size)) == 0 else { throw FuzzError("cannot create \(path): errno \(errno)") }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        while offset < size {
            let n = chunk.withUnsafeMutableBytes { pread(input, $0.baseAddress, $0.count, off_t(offset)) }
            guard n > 0 else { throw FuzzError("cannot read \(source) at \(offset)") }
            if chunk[..<n].contains(where: { $0 != 0 }) {
                guard chunk.withUnsafeBytes({ pwrite(output, $0.baseAddress, n, off_t(offset)) }) == n else {
                    throw FuzzError("cannot write \(path)")
                }
            }
            offset += n
        }
        return output
    }

    func writeSeed(to path: String) throws {
        let out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard out >= 0 else { throw FuzzError("cannot create \(path): errno \(errno)") }
        defer { close(out) }
        guard layout.clean.withUnsafeBytes({ write(out, $0.baseAddress, $0.count) }) == layout.clean.count else {
            throw FuzzError("cannot write \(path)")
        }
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// What an input changes against the clean one.
    struct Difference {
        /// Changed fields (indices into `layout.fieldNames`).
        var fields: Set<Int32> = []
        /// Changed regions that the check reads and whose CRC no longer matches.
        var badCRC: [Int] = []
        /// Changed regions.
        var regions: [Int] = []
        /// Why the check must not pass: `.rmap` fields and bad CRCs, as text.
        var mustDetect: [String] = []
    }

    func difference(_ input: [UInt8]) -> Difference {
        var d = Difference()
        for (index, region) in layout.regions.enumerated() {
            let range = region.inputRange
            guard !input[range].elementsEqual(layout.clean[range]) else { continue }
            d.regions.append(index)
            for i in range where input[i] != layout.clean[i] { d.fields.insert(layout.fieldOfByte[i]) }
            let crcOK = input.withUnsafeBytes {
                CRC32C.verify(UnsafeRawBufferPointer(rebasing: $0[range]), crcFieldAt: region.crcOffset)
            }
            if !crcOK && region.isRead {
                d.badCRC.append(index)
                d.mustDetect.append("bad CRC in \(region.label)")
            }
        }
        for f in d.fields where layout.fieldNames[Int(f)].dependence == .rmap {
            d.mustDetect.append(layout.fieldNames[Int(f)].name)
        }
        return d
    }

    /// Describes a difference: each changed region and its changed fields with old and new
    /// bytes.
    func describe(_ input: [UInt8], _ d: Difference) -> String {
        var lines: [String] = []
        for index in d.regions {
            let region = layout.regions[index]
            var fieldsHere: [String] = []
            var i = region.inputOffset
            while i < region.inputOffset + region.length {
                guard input[i] != layout.clean[i] else { i += 1; continue }
                let f = layout.fieldOfByte[i]
                var j = i
                while j < region.inputOffset + region.length && layout.fieldOfByte[j] == f { j += 1 }
                let old = layout.clean[i ..< j].map { String($0, radix: 16) }.joined(separator: " ")
                let new = input[i ..< j].map { String($0, radix: 16) }.joined(separator: " ")
                fieldsHere.append("\(layout.fieldNames[Int(f)].name) @\(i - region.inputOffset): \(old) -> \(new)")
                i = j
            }
            lines.append("\(region.label) @byte \(region.imageOffset): " + fieldsHere.joined(separator: "; "))
        }
        return lines.joined(separator: "\n")
    }

    /// Writes the input over the working copy (only the regions that differ from what it
    /// holds).
    private func apply(_ input: [UInt8]) {
        for region in layout.regions {
            let range = region.inputRange
            guard !input[range].elementsEqual(current[range]) else { continue }
            let n = input.withUnsafeBytes { pwrite(fd, $0.baseAddress! + range.lowerBound, range.count, off_t(region.imageOffset)) }
            precondition(n == range.count, "pwrite of \(region.label) to the working copy failed: errno \(errno)")
        }
        current = input
    }

    /// One case.
    func run(_ data: UnsafeBufferPointer<UInt8>) -> Int32 {
        var input = layout.clean
        for i in 0 ..< min(data.count, input.count) { input[i] = data[i] }
        let d = difference(input)
        if explain { warn("== input changes:\n\(d.regions.isEmpty ? "nothing" : describe(input, d))\n") }
        apply(input)
        let start = Campaign.now()
        let verdict = VerdictRunner.run(path: workPath)
        let seconds = Campaign.now() - start

        cases += 1
        verdicts[Int(verdict.check)] += 1
        if d.regions.isEmpty { unchanged += 1 }
        if !d.badCRC.isEmpty { badCRC += 1 }
        for f in d.fields {
            perField[f, default: (0, 0)].changed += 1
            if verdict.check == 0 { perField[f, default: (0, 0)].passed += 1 }
        }
        if let message = verdict.checkMessage {
            errorPlaces[Campaign.place(of: message, verdict.check), default: 0] += 1
        }
        if seconds > slowest.seconds { slowest = (seconds, d.regions.map { layout.regions[$0].label }.joined(separator: ", ")) }
        if explain {
            warn("== check exit \(verdict.check): \(verdict.checkMessage ?? "consistent")\n")
            warn("== dump exit \(verdict.dump): \(verdict.dumpMessage ?? "records in key order")\n")
            warn("== \(verdict.messages.count) messages; the first ones:\n")
            for m in verdict.messages.prefix(8) { warn("   \(m)\n") }
        }

        var problems: [String] = []
        if verdict.check == 0 && !d.mustDetect.isEmpty {
            problems.append("check says consistent, but the input changes: " + d.mustDetect.prefix(6).joined(separator: ", "))
        }
        if verdict.check == 0 && verdict.dump != 0 {
            problems.append("check says consistent, but dump fails: \(verdict.dumpMessage ?? "")")
        }
        for m in verdict.messages where m.isEmpty || m.contains("\n") {
            problems.append("a message that is not one line: \(m.debugDescription)")
            break
        }
        if !problems.isEmpty { record(problems, input, d) }
        if cases % 2000 == 0 { writeReport() }
        return 0
    }

    /// What a message is about: its text up to the last colon (where the details start,
    /// at most 80 characters), numbers blanked: "AG N: inobt blocks: AG N inobt block N".
    static func place(of message: String, _ code: Int32) -> String {
        var head = Substring(message.prefix(80))
        if let colon = head.lastIndex(of: ":") { head = head[..<colon] }
        var out = ""
        var lastDigit = false
        for c in head {
            if c.isNumber {
                if !lastDigit { out += "N" }
                lastDigit = true
            } else {
                out.append(c)
                lastDigit = false
            }
        }
        return "exit \(code): \(out)"
    }

    /// Keeps a missed verdict: the input (a libFuzzer input, replayable) and what it changes.
    private func record(_ problems: [String], _ input: [UInt8], _ d: Difference) {
        misses += 1
        missReasons[problems[0].split(separator: ":", maxSplits: 1).last.map(String.init) ?? problems[0], default: 0] += 1
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in input { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        let name = workdir + "/misses/miss-\(String(hash, radix: 16))"
        mkdir(workdir + "/misses", 0o755)
        let text = problems.joined(separator: "\n") + "\n" + describe(input, d) + "\n"
        if missNotes.count < 40 { missNotes.append(problems[0] + "\n    " + describe(input, d).replacing("\n", with: "\n    ")) }
        for (path, bytes) in [(name + ".input", input), (name + ".txt", Array(text.utf8))] {
            let out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            if out >= 0 {
                _ = bytes.withUnsafeBytes { write(out, $0.baseAddress, $0.count) }
                close(out)
            }
        }
        if abortOnMiss {
            warn("xfs-rmap-fuzz: missed verdict:\n\(text)")
            abort()
        }
    }

    /// The report: cases, verdicts, misses, and per field how often a change to it passed.
    func writeReport() {
        var text = "xfs-rmap fuzz report\n"
        text += "base image: \(layout.path) (\(layout.regions.count) structures, \(layout.inputSize) bytes of metadata)\n"
        text += "cases: \(cases) in \(Int(Campaign.now() - started)) s; unchanged inputs: \(unchanged); with a bad CRC in a structure the check reads: \(badCRC)\n"
        text += "check verdicts: \(verdicts[0]) consistent (exit 0), \(verdicts[1]) findings (exit 1), \(verdicts[2]) errors (exit 2)\n"
        text += "slowest case: \(Double(Int(slowest.seconds * 1000)) / 1000) s (\(slowest.what))\n"
        text += "missed verdicts: \(misses)\n"
        for (reason, count) in missReasons.sorted(by: { $0.value > $1.value }) { text += "  \(count)\t\(reason)\n" }
        if !missNotes.isEmpty { text += "the first ones:\n" }
        for note in missNotes { text += "  " + note + "\n" }
        text += "\nwhat the verdicts name (first finding or error, numbers blanked):\n"
        for (place, count) in errorPlaces.sorted(by: { $0.value > $1.value }) { text += "  \(count)\t\(place)\n" }
        text += "\nfields changed (cases that changed the field, of them passing with exit 0), by dependence:\n"
        for dependence in [Dependence.rmap, .maybe, .unread, .crc] {
            text += "[\(dependence.rawValue)]\n"
            let rows = perField.filter { layout.fieldNames[Int($0.key)].dependence == dependence }
                .sorted { layout.fieldNames[Int($0.key)].name < layout.fieldNames[Int($1.key)].name }
            for (f, t) in rows { text += "  \(t.changed)\t\(t.passed)\t\(layout.fieldNames[Int(f)].name)\n" }
        }
        let out = open(reportPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard out >= 0 else { return }
        _ = Array(text.utf8).withUnsafeBytes { write(out, $0.baseAddress, $0.count) }
        close(out)
    }

    /// At exit: the report, and the working copy removed.
    func finish() {
        writeReport()
        removeWorkingCopy()
    }

    func removeWorkingCopy() {
        close(fd)
        unlink(workPath)
    }
}
