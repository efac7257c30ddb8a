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

    /// What a finding's `block` is.
    public enum BlockKind: String, Sendable {
        /// A block of the on-disk rmapbt: the leaf holding an extra or wrong record, or the
        /// block with a structural fault.
        case rmapbtBlock = "rmapbt_block"
        /// A block of the AG's space: the start of a missing record, or the first block a
        /// free-space finding is about.
        case dataBlock = "data_block"
    }

    /// The AG.
    public var agno: UInt32
    /// The kind of damage.
    public var kind: Kind
    /// The AG block concerned (see `blockKind`); nil when none applies.
    public var block: UInt64?
    /// The record the filesystem implies (missing, wrong).
    public var expected: RmapRecord?
    /// The record found on disk (extra, wrong).
    public var found: RmapRecord?
    /// A sentence saying what is wrong.
    public var detail: String
    /// For an inode or fork the scan could not read: which, and why.
    public var unreadable: UnreadableInodes?
    /// For an unreadable inode or fork: the on-disk records it owns, which cannot be checked,
    /// one entry per AG holding any (this finding's AG only, until a report gathers the
    /// other AGs' entries into the finding of the inode's own AG).
    public var unchecked: [UncheckedRecords] = []

    /// What `block` is: an rmapbt block for extra and wrong records and structural faults,
    /// an AG block for missing records and free-space findings; nil without a block.
    public var blockKind: BlockKind? {
        guard block != nil else { return nil }
        return kind == .missing || kind == .freeSpace ? .dataBlock : .rmapbtBlock
    }

    /// "AG 1 rmapbt leaf 9519: extra record [...]", "AG 1 rmapbt block 12: siblings: ...",
    /// "AG 1: missing record [start 8036, ...]": an rmapbt block is named, an AG block is
    /// left to the detail, which names it.
    public var description: String {
        let place: String = switch (blockKind, kind) {
        case (.rmapbtBlock?, .extra), (.rmapbtBlock?, .wrong): " rmapbt leaf \(block!)"
        case (.rmapbtBlock?, _): " rmapbt block \(block!)"
        default: ""
        }
        return "AG \(agno)\(place): \(detail)"
    }

    /// A finding of `kind` in AG `agno`.
    public init(agno: UInt32, kind: Kind, block: UInt64? = nil, expected: RmapRecord? = nil, found: RmapRecord? = nil,
                detail: String, unreadable: UnreadableInodes? = nil, unchecked: [UncheckedRecords] = []) {
        self.agno = agno
        self.kind = kind
        self.block = block
        self.expected = expected
        self.found = found
        self.detail = detail
        self.unreadable = unreadable
        self.unchecked = unchecked
    }

    /// The structure finding for a fault the verifier found in AG `agno`'s rmapbt:
    /// "AG 3 rmapbt block 9: read: bad CRC (level 0)".
    public static func structure(agno: UInt32, fault: BTreeFault) -> RmapFinding {
        // A read fault's detail is the store's error, which names the block again.
        var detail = fault.detail
        if let pointer = fault.pointer, detail.hasPrefix("AG \(agno) rmapbt block \(pointer): ") {
            detail.removeFirst("AG \(agno) rmapbt block \(pointer): ".count)
        }
        let place = fault.level.map { " (level \($0)" + (fault.index.map { ", entry \($0)" } ?? "") + ")" } ?? ""
        return RmapFinding(agno: agno, kind: .structure, block: fault.pointer, detail: "\(fault.check.rawValue): \(detail)\(place)")
    }

    /// The finding (of `kind`) about unreadable inodes in AG `agno`, holding the on-disk
    /// records `unchecked` says they own: "inode 133 data fork unreadable (bmbt block 9: bad
    /// CRC): its 1913 on-disk records (AG 1 blocks 5706-9541) cannot be checked".
    public static func unreadable(_ cause: UnreadableInodes, agno: UInt32, kind: Kind = .observation,
                                  unchecked: [UncheckedRecords]) -> RmapFinding {
        let records = unchecked.reduce(0) { $0 + $1.records }
        let whose = if case .inode = cause.scope { "its" } else { "their" }
        let detail = unchecked.isEmpty
            ? cause.sentence
            : "\(cause.name) unreadable (\(cause.reason)): \(whose) \(records) on-disk record\(records == 1 ? "" : "s") ("
                + unchecked.map(\.description).joined(separator: ", ") + ") cannot be checked"
        return RmapFinding(agno: agno, kind: kind, detail: detail, unreadable: cause, unchecked: unchecked)
    }
}

/// On-disk records of one AG that an unreadable inode or fork owns: how many, and the AG
/// blocks from the first one's start to the last one's end.
public struct UncheckedRecords: Sendable, Equatable, CustomStringConvertible {
    /// The AG.
    public var agno: UInt32
    /// How many records.
    public var records: Int
    /// The first and last AG block they cover.
    public var firstBlock: UInt32, lastBlock: UInt32

    /// `records` records of AG `agno` covering blocks `firstBlock` to `lastBlock`.
    public init(agno: UInt32, records: Int, firstBlock: UInt32, lastBlock: UInt32) {
        self.agno = agno
        self.records = records
        self.firstBlock = firstBlock
        self.lastBlock = lastBlock
    }

    /// "AG 1 blocks 5706-9541" (or "AG 1 block 5706").
    public var description: String {
        "AG \(agno) " + (firstBlock == lastBlock ? "block \(firstBlock)" : "blocks \(firstBlock)-\(lastBlock)")
    }

    /// Counts one more record.
    mutating func add(_ record: RmapRecord) {
        records += 1
        firstBlock = min(firstBlock, record.startBlock)
        // On-disk records may be garbage: no overflow past the last AG block number.
        let end = UInt64(record.startBlock) + UInt64(max(record.blockCount, 1)) - 1
        lastBlock = max(lastBlock, UInt32(clamping: end))
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
    /// On-disk records owned by inodes or forks the scan could not read: not checked, and
    /// reported in those inodes' findings rather than one by one.
    public var uncheckedRecords: Int = 0

    /// A summary of AG `agno`.
    public init(agno: UInt32, expectedRecords: Int, onDiskRecords: Int?, onDiskBlocks: Int, height: Int,
                counts: [RmapFinding.Kind: Int], uncheckedRecords: Int = 0) {
        self.agno = agno
        self.expectedRecords = expectedRecords
        self.onDiskRecords = onDiskRecords
        self.onDiskBlocks = onDiskBlocks
        self.height = height
        self.counts = counts
        self.uncheckedRecords = uncheckedRecords
    }

    /// Whether nothing is wrong in this AG and every on-disk record was checked.
    public var isConsistent: Bool { counts.values.allSatisfy { $0 == 0 } && uncheckedRecords == 0 }

    /// "AG 1: 3771 expected, 3770 on disk (9 blocks, height 2): 1 missing, 0 extra, ...",
    /// ending ", 1913 records unchecked" when some could not be checked.
    public var line: String {
        let found = onDiskRecords.map(String.init) ?? "unreadable"
        let kinds = RmapFinding.Kind.allCases.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
        let unchecked = uncheckedRecords > 0 ? ", \(uncheckedRecords) record\(uncheckedRecords == 1 ? "" : "s") unchecked" : ""
        return "AG \(agno): \(expectedRecords) records expected, \(found) on disk (\(onDiskBlocks) blocks, height \(height)): "
            + (isConsistent ? "consistent" : kinds + unchecked)
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

    /// A report from per-AG summaries and findings. An unreadable inode's records in other
    /// AGs join the finding of the AG that reported the inode, when that AG is in the report:
    /// one finding per unreadable inode or fork, listing every AG's records.
    public init(summaries: [RmapAGSummary], findings: [RmapFinding]) {
        var summaries = summaries
        var findings = findings
        // The finding of each cause in the inode's own AG.
        var home: [UnreadableInodes: Int] = [:]
        for (i, f) in findings.enumerated() {
            if let cause = f.unreadable, cause.agno == f.agno { home[cause] = i }
        }
        var moved = Set<Int>()
        for (i, f) in findings.enumerated() {
            guard let cause = f.unreadable, cause.agno != f.agno, let h = home[cause] else { continue }
            let unchecked = (findings[h].unchecked + f.unchecked).sorted { $0.agno < $1.agno }
            findings[h] = RmapFinding.unreadable(cause, agno: cause.agno, kind: findings[h].kind, unchecked: unchecked)
            moved.insert(i)
            if let s = summaries.firstIndex(where: { $0.agno == f.agno }) { summaries[s].counts[f.kind, default: 0] -= 1 }
        }
        self.summaries = summaries
        self.findings = findings.enumerated().filter { !moved.contains($0.offset) }.map(\.element)
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
/// - Unchecked records: an on-disk record owned by an inode, fork or AG's inodes that the
///   scan could not read (`ScanProblem.unreadable`) is not extra, since nothing of its owner
///   was observed; it is counted in the finding about that cause, with the AG blocks it
///   covers, instead of one finding per record.
///
/// Thread safety: `Sendable`; `check(_:)` may run for several AGs at once.
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
        let allProblems = scanner.problems
        let problems = allProblems.filter { $0.agno == agno }
        for problem in problems where problem.kind != .rmapbt {
            if let cause = problem.unreadable {
                findings.append(.unreadable(cause, agno: agno, kind: problem.kind == .header ? .header : .observation, unchecked: []))
            } else {
                add(problem.kind == .header ? .header : .observation, problem.detail)
            }
        }
        // The inodes the scan could not read, anywhere: their on-disk records here are not
        // extra, only unchecked.
        let unreadable = UnreadableIndex(allProblems.compactMap(\.unreadable), agno: agno, geometry: image.geometry)
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
        // The cntbt is streamed into a fingerprint first: when it holds the bnobt's very
        // extents (the usual case) nothing of it is kept; only a cntbt that differs is read
        // into an array, for findings that say how.
        var sameExtents = false
        if let bnobt {
            var print = FreeSpaceCheck.Fingerprint()
            var previous: FreeSpaceByCountKey? = nil
            var ordered = true
            _ = try? image.withCursor(FreeSpaceByCountFormat.self, AGBTreeRoot(.cntbt, agno: agno, agf: agf)) { cursor in
                try cursor.queryAll { record in
                    let key = FreeSpaceByCountFormat.lowKey(of: record)
                    if let previous, !(previous < key) { ordered = false }
                    previous = key
                    print.add(record)
                    return .proceed
                }
            }
            sameExtents = ordered && print == FreeSpaceCheck.Fingerprint(bnobt)
        }
        let cntbt = sameExtents ? nil : freeExtents(FreeSpaceByCountFormat.self, .cntbt)
        findings += try freeSpaceCheck.findings(bnobt: bnobt, cntbt: sameExtents ? .sameAsBnobt : cntbt.map { .records($0) },
                                                reportLeaks: scanner.problems.isEmpty)

        if let problem = agf.rmapFieldProblem(geometry: image.geometry) {
            // No rmapbt to verify or read: the one finding is the AGF's.
            add(.header, "AGF \(problem)")
            return finish(summary, findings)
        }

        // Structure.
        let store = AGBTreeStore<RmapFormat>(image: image, agno: agno, root: agf.rmapRoot,
                                             height: Int(agf.rmapLevel), maxHeight: image.geometry.maxRmapBTreeLevels)
        let report = BTreeVerifier<RmapFormat, AGBTreeStore<RmapFormat>>.verify(store)
        findings += report.faults.map { RmapFinding.structure(agno: agno, fault: $0) }
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
        /// Adds a walk's findings, and its unchecked records to the findings of their inodes.
        func take(_ walk: MergeWalk) {
            findings += walk.findings
            for (cause, records) in walk.unchecked.sorted(by: { $0.value.firstBlock < $1.value.firstBlock }) {
                summary.uncheckedRecords += records.records
                if cause.agno == agno, let i = findings.firstIndex(where: { $0.unreadable == cause }) {
                    findings[i] = RmapFinding.unreadable(cause, agno: agno, kind: findings[i].kind, unchecked: [records])
                } else {
                    findings.append(RmapFinding.unreadable(cause, agno: agno, unchecked: [records]))
                }
            }
        }
        if let streamed = try streamingDiff(agno, store: store, unreadable: unreadable) {
            summary.onDiskRecords = streamed.found
            take(streamed.walk)
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
        if let walk = try mergeWalk(agno, unreadable: unreadable, next: { next.next().map(DiskRecord.record) ?? .end }) {
            take(walk)
        }
        return finish(summary, findings)
    }

    /// The unreadable inodes of a scan, looked up by the owner of an on-disk record of one AG.
    private struct UnreadableIndex {
        /// One inode or fork, by inode number.
        var byInode: [UInt64: [UnreadableInodes]] = [:]
        /// Whole AGs' inodes.
        var wholeAGs: [UnreadableInodes] = []
        /// The AG whose records are looked up.
        var agno: UInt32
        var geometry: Geometry

        init(_ causes: [UnreadableInodes], agno: UInt32, geometry: Geometry) {
            self.agno = agno
            self.geometry = geometry
            for cause in causes {
                if let ino = cause.ino { byInode[ino, default: []].append(cause) } else { wholeAGs.append(cause) }
            }
        }

        /// The cause that owns `record` (of this AG), if any.
        func cause(of record: RmapRecord) -> UnreadableInodes? {
            let owns = { (cause: UnreadableInodes) in
                cause.owns(record, inAG: agno, agnoOfInode: geometry.agNumber(ofInode:))
            }
            return byInode[record.owner]?.first(where: owns) ?? wholeAGs.first(where: owns)
        }
    }

    /// What the merge walk found: the expected record count, the findings, and the on-disk
    /// records of unreadable inodes and forks, which it leaves unchecked.
    private struct MergeWalk {
        var expected: Int
        var findings: [RmapFinding]
        var unchecked: [UnreadableInodes: UncheckedRecords]
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
    /// wrong. A disk record that an inode or fork in `unreadable` (by inode number) owns is
    /// not extra but unchecked: nothing of that owner was observed. Nil when `next` reports
    /// the disk unusable.
    private func mergeWalk(_ agno: UInt32, unreadable: UnreadableIndex, next: () -> DiskRecord) throws -> MergeWalk? {
        var findings: [RmapFinding] = []
        var unchecked: [UnreadableInodes: UncheckedRecords] = [:]
        func add(_ kind: RmapFinding.Kind, _ block: UInt64?, _ expected: RmapRecord?, _ found: RmapRecord?, _ detail: String) {
            findings.append(RmapFinding(agno: agno, kind: kind, block: block, expected: expected, found: found, detail: detail))
        }
        func extra(_ f: RmapRecord, _ leaf: UInt64) {
            if let cause = unreadable.cause(of: f) {
                unchecked[cause, default: UncheckedRecords(agno: agno, records: 0, firstBlock: .max, lastBlock: 0)].add(f)
            } else {
                add(.extra, leaf, nil, f, "extra record \(RmapText.describe(f))")
            }
        }
        var current = next()
        var expectedCount = 0
        try scanner.tree(agno).forEach { e in
            expectedCount += 1
            let ek = RmapFormat.lowKey(of: e)
            while case .record(let f, let leaf) = current, RmapFormat.lowKey(of: f) < ek {
                extra(f, leaf)
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
            extra(f, leaf)
            current = next()
        }
        if case .unusable = current { return nil }
        return MergeWalk(expected: expectedCount, findings: findings, unchecked: unchecked)
    }

    private func finish(_ summary: RmapAGSummary, _ findings: [RmapFinding]) -> (RmapAGSummary, [RmapFinding]) {
        var summary = summary
        for finding in findings { summary.counts[finding.kind, default: 0] += 1 }
        return (summary, findings)
    }

    /// Walks the in-memory tree and the on-disk tree side by side, each in its own cursor
    /// (no record lands on the Swift heap). Nil when the disk tree cannot be read to the end
    /// or its records are out of key order: the caller then compares a sorted array.
    private func streamingDiff(_ agno: UInt32, store: AGBTreeStore<RmapFormat>, unreadable: UnreadableIndex)
        throws -> (found: Int, walk: MergeWalk)? {
        var disk = BTreeCursor<RmapFormat, AGBTreeStore<RmapFormat>>(store: store)
        defer { disk.close() }
        var previous: RmapKey?
        var started = false
        var foundCount = 0
        let walk = try mergeWalk(agno, unreadable: unreadable) {
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
        return (foundCount, walk)
    }

}
