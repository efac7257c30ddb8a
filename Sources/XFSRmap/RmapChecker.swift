import XFSBTree
import XFSFormat

/// One thing wrong with an AG's reverse mappings.
public struct RmapFinding: Sendable, Equatable, CustomStringConvertible {
    /// What kind of damage.
    public enum Kind: String, Sendable, CaseIterable {
        /// A record the filesystem implies is not in the rmapbt.
        case missing
        /// The rmapbt holds a record nothing implies (a free block, a spurious owner, ...).
        case extra
        /// A record with the right key has the wrong length or unwritten flag.
        case wrong
        /// The rmapbt's structure is broken (keys, high keys, siblings, levels, counts, CRC).
        case structure
        /// An AG header disagrees with the rmapbt (height, block count) or cannot be read.
        case header
        /// Metadata the scan needed could not be read (an inode, another AG btree), or two
        /// observations collide; the expected record set may be incomplete.
        case observation
        /// The free-space btrees disagree with the observations (a block both free and in
        /// use, or neither) or with each other.
        case freeSpace = "free-space"
    }

    /// The AG.
    public var agno: UInt32
    /// The kind of damage.
    public var kind: Kind
    /// The AG block concerned: the rmapbt block holding an extra or wrong record or a
    /// structural fault, or the start of a missing record; nil when none applies.
    public var block: UInt64?
    /// The record the filesystem implies (missing, wrong).
    public var expected: RmapRecord?
    /// The record found on disk (extra, wrong).
    public var found: RmapRecord?
    /// A sentence saying what is wrong.
    public var detail: String

    /// "AG 1 block 12: extra record [...]".
    public var description: String {
        "AG \(agno)" + (block.map { " block \($0)" } ?? "") + ": " + detail
    }
}

/// One AG's verdict.
public struct RmapAGSummary: Sendable, Equatable {
    /// The AG.
    public var agno: UInt32
    /// Records the filesystem implies (the in-memory tree).
    public var expectedRecords: Int
    /// Records read from the rmapbt (nil when it could not be read).
    public var onDiskRecords: Int?
    /// The rmapbt's blocks as walked, and its height per the AGF.
    public var onDiskBlocks: Int
    /// The AGF's rmap height.
    public var height: Int
    /// Findings by kind.
    public var counts: [RmapFinding.Kind: Int]

    /// Whether nothing is wrong in this AG.
    public var isConsistent: Bool { counts.values.allSatisfy { $0 == 0 } }

    /// "AG 1: 3771 expected, 3770 on disk (9 blocks, height 2): 1 missing, 0 extra, ...".
    public var line: String {
        let found = onDiskRecords.map(String.init) ?? "unreadable"
        let kinds = RmapFinding.Kind.allCases.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
        return "AG \(agno): \(expectedRecords) records expected, \(found) on disk (\(onDiskBlocks) blocks, height \(height)): "
            + (isConsistent ? "consistent" : kinds)
    }
}

/// The verdict on a whole image.
public struct RmapCheckReport: Sendable {
    /// One summary per checked AG, in AG order.
    public var summaries: [RmapAGSummary]
    /// Every finding, by AG then as found.
    public var findings: [RmapFinding]
    /// Whether every checked AG is consistent.
    public var isConsistent: Bool { findings.isEmpty }

    /// A report from per-AG summaries and findings.
    public init(summaries: [RmapAGSummary], findings: [RmapFinding]) {
        self.summaries = summaries
        self.findings = findings
    }
}

/// Compares what a scan observed with each AG's on-disk rmapbt, and verifies that tree's
/// structure (xfs_repair -n's rmap checks, and what they miss: see xfs-format.md §6).
///
/// - Structure: the engine's verifier over the on-disk tree: magic, CRC, blkno, owner,
///   uuid, levels, record counts, key order within and across blocks, node low and high
///   keys, sibling links, cycles, record sanity.
/// - Header: the AGF's rmap height against the tree, its rmap block count against the
///   blocks walked.
/// - Records: the exact record set. Every observed record must be on disk and every disk
///   record observed; a record with the observed key but another length or unwritten flag
///   is reported once as wrong.
public struct RmapChecker: Sendable {
    /// The image.
    public let image: XFSImage
    /// The scan whose trees hold the observations.
    public let scanner: RmapScanner

    /// A checker over a finished scan.
    public init(scanner: RmapScanner) {
        self.image = scanner.image
        self.scanner = scanner
    }

    /// Checks AG `agno`.
    public func check(_ agno: UInt32) throws -> (RmapAGSummary, [RmapFinding]) {
        var findings: [RmapFinding] = []
        func add(_ kind: RmapFinding.Kind, block: UInt64? = nil, expected: RmapRecord? = nil, found: RmapRecord? = nil, _ detail: String) {
            findings.append(RmapFinding(agno: agno, kind: kind, block: block, expected: expected, found: found, detail: detail))
        }
        let problems = scanner.problems.filter { $0.agno == agno }
        for problem in problems where problem.kind != .rmapbt {
            add(problem.kind == .header ? .header : .observation, problem.detail)
        }
        var summary = RmapAGSummary(agno: agno, expectedRecords: 0, onDiskRecords: nil, onDiskBlocks: 0, height: 0, counts: [:])
        // The expected records are known whatever the state of the disk.
        try scanner.tree(agno).forEach { _ in summary.expectedRecords += 1; return .proceed }

        let agf: AGF
        do {
            agf = try image.agf(agno, checkingRmap: false)
        } catch {
            // The scan read every AG's AGF and reported this one: one fault, one finding.
            if !findings.contains(where: { $0.kind == .header }) { add(.header, "AGF: \(error)") }
            return finish(summary, findings)
        }
        summary.height = Int(agf.rmapLevel)

        // Free space against the observations. Leaks (blocks neither free nor in use) are
        // reported only when nothing the scan needed was unreadable anywhere.
        /// A free-space tree's records, or nil when they cannot be read: a fault the scan
        /// met in walking that tree's blocks is already a finding; one only its records
        /// show (keys out of order) becomes one here.
        func freeExtents<Format: BTreeRecordFormat>(_ format: Format.Type, _ kind: AGBTreeKind) -> [FreeSpaceRecord]?
        where Format.Record == FreeSpaceRecord {
            do {
                return try image.records(format, AGBTreeRoot(kind, agno: agno, agf: agf))
            } catch {
                if !findings.contains(where: { $0.detail.hasPrefix("\(kind.rawValue) blocks:") }) {
                    add(.freeSpace, "\(kind.rawValue) records unreadable: \(error)")
                }
                return nil
            }
        }
        let freeSpaceCheck = FreeSpaceCheck(agno: agno, agLength: agf.length, observations: scanner.tree(agno))
        let bnobt = freeExtents(FreeSpaceByBlockFormat.self, .bnobt)
        let cntbt = freeExtents(FreeSpaceByCountFormat.self, .cntbt)
        findings += try freeSpaceCheck.findings(bnobt: bnobt, cntbt: cntbt, reportLeaks: scanner.problems.isEmpty)

        if let problem = agf.rmapFieldProblem(geometry: image.geometry) {
            // No rmapbt to verify or read: the one finding is the AGF's.
            add(.header, "AGF \(problem)")
            return finish(summary, findings)
        }

        // Structure.
        let store = AGBTreeStore<RmapFormat>(image: image, agno: agno, root: agf.rmapRoot,
                                             height: Int(agf.rmapLevel), maxHeight: image.geometry.maxRmapBTreeLevels)
        let report = BTreeVerifier<RmapFormat, AGBTreeStore<RmapFormat>>.verify(store)
        for fault in report.faults {
            add(.structure, block: fault.pointer, "rmapbt \(fault.check.rawValue): \(fault.detail)"
                + (fault.level.map { " (level \($0)" + (fault.index.map { ", entry \($0)" } ?? "") + ")" } ?? ""))
        }
        summary.onDiskBlocks = report.blocks
        // The scan met the same fault walking the tree's blocks; say it once.
        if report.faults.isEmpty {
            for problem in problems where problem.kind == .rmapbt { add(.structure, problem.detail) }
        }
        // The block count means something only when the walk reached every block.
        let walkStoppers: Set<BTreeCheck> = [.read, .cycle, .height, .pointer, .level, .magic, .blkno]
        if report.faults.allSatisfy({ !walkStoppers.contains($0.check) }),
           Int(agf.rmapBlocks) != report.blocks {
            add(.header, "AGF rmap_blocks is \(agf.rmapBlocks) but the rmapbt has \(report.blocks) blocks")
        }

        // Records: streamed side by side when the disk tree reads in order (the usual case,
        // and no record lands on the Swift heap); otherwise both sets as arrays, the disk's
        // sorted.
        if let streamed = try streamingDiff(agno, store: store) {
            summary.onDiskRecords = streamed.found
            findings += streamed.findings
            return finish(summary, findings)
        }
        var found: [(record: RmapRecord, leaf: UInt64)] = []
        do {
            var cursor = BTreeCursor<RmapFormat, AGBTreeStore<RmapFormat>>(store: store)
            defer { cursor.close() }
            if try cursor.moveToFirst() {
                repeat {
                    if let record = cursor.record { found.append((record, UInt64(cursor.pointer(atLevel: 0)))) }
                } while try cursor.increment()
            }
            summary.onDiskRecords = found.count
        } catch {
            if report.faults.isEmpty { add(.structure, "rmapbt records unreadable: \(error)") }
            return finish(summary, findings)
        }
        // Out of order on disk (the verifier says where): compare against the disk's records
        // sorted, ties in tree order.
        let sorted = found.enumerated().sorted {
            let (a, b) = (RmapFormat.lowKey(of: $0.element.record), RmapFormat.lowKey(of: $1.element.record))
            return a < b || (a == b && $0.offset < $1.offset)
        }.map(\.element)
        var next = sorted.makeIterator()
        let walk = try mergeWalk(agno) { next.next().map(DiskRecord.record) ?? .end }
        findings += walk?.findings ?? []
        return finish(summary, findings)
    }

    /// One disk record pulled by the merge walk.
    private enum DiskRecord {
        /// A record and the leaf block it was found in.
        case record(RmapRecord, leaf: UInt64)
        /// No more records.
        case end
        /// The disk tree could not be read on, or went out of key order.
        case unusable
    }

    /// The one comparison of the two record sets: the in-memory tree's records (the
    /// expected set, in key order) against disk records pulled in key order from `next`.
    /// A disk record with a smaller key than the next expected one is extra; an expected one
    /// with no disk record of its key is missing; equal keys with different records are
    /// wrong. Nil when `next` reports the disk unusable.
    private func mergeWalk(_ agno: UInt32, next: () -> DiskRecord) throws -> (expected: Int, findings: [RmapFinding])? {
        var findings: [RmapFinding] = []
        func add(_ kind: RmapFinding.Kind, _ block: UInt64?, _ expected: RmapRecord?, _ found: RmapRecord?, _ detail: String) {
            findings.append(RmapFinding(agno: agno, kind: kind, block: block, expected: expected, found: found, detail: detail))
        }
        var current = next()
        var expectedCount = 0
        try scanner.tree(agno).forEach { e in
            expectedCount += 1
            let ek = RmapFormat.lowKey(of: e)
            while case .record(let f, let leaf) = current, RmapFormat.lowKey(of: f) < ek {
                add(.extra, leaf, nil, f, "extra record \(RmapText.describe(f))")
                current = next()
            }
            if case .unusable = current { return .stop }
            if case .record(let f, let leaf) = current, RmapFormat.lowKey(of: f) == ek {
                if e != f {
                    add(.wrong, leaf, e, f, "wrong record \(RmapText.describe(f)), should be \(RmapText.describe(e))")
                }
                current = next()
            } else {
                add(.missing, UInt64(e.startBlock), e, nil, "missing record \(RmapText.describe(e))")
            }
            return .proceed
        }
        while case .record(let f, let leaf) = current {
            add(.extra, leaf, nil, f, "extra record \(RmapText.describe(f))")
            current = next()
        }
        if case .unusable = current { return nil }
        return (expectedCount, findings)
    }

    private func finish(_ summary: RmapAGSummary, _ findings: [RmapFinding]) -> (RmapAGSummary, [RmapFinding]) {
        var summary = summary
        for finding in findings { summary.counts[finding.kind, default: 0] += 1 }
        return (summary, findings)
    }

    /// Walks the in-memory tree and the on-disk tree side by side, each in its own cursor
    /// (no record lands on the Swift heap). Nil when the disk tree cannot be read to the end
    /// or its records are out of key order: the caller then compares a sorted array.
    private func streamingDiff(_ agno: UInt32, store: AGBTreeStore<RmapFormat>)
        throws -> (expected: Int, found: Int, findings: [RmapFinding])? {
        var disk = BTreeCursor<RmapFormat, AGBTreeStore<RmapFormat>>(store: store)
        defer { disk.close() }
        var previous: RmapKey?
        var started = false
        var foundCount = 0
        let walk = try mergeWalk(agno) {
            do {
                let more = started ? try disk.increment() : try disk.moveToFirst()
                started = true
                guard more, let record = disk.record else { return .end }
                let key = RmapFormat.lowKey(of: record)
                if let previous, !(previous < key) { return .unusable }
                previous = key
                foundCount += 1
                return .record(record, leaf: UInt64(disk.pointer(atLevel: 0)))
            } catch {
                return .unusable
            }
        }
        guard let walk else { return nil }
        return (walk.expected, foundCount, walk.findings)
    }

}
