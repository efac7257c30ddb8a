import XFSBTree
import XFSFormat

/// Checks one AG's free-space btrees against the observations: every block of the AG is
/// either free or in use, never both and never neither (xfs_repair's block-state map, built
/// from what the scan observed).
///
/// The rmapbt must never hold a record for a block the free-space btrees call free, nor
/// lack one for a block they do not: so a rebuild may trust its observations only once
/// this check passes.
///
/// - **Overlaps:** each tree's free extents (the bnobt's and the cntbt's, checked one
///   after the other) against the observed records. One finding per free extent that
///   covers blocks in use, naming the first record in the way.
/// - **Leaks:** blocks that neither tree calls free and no observation covers. Reported
///   only when the observations are complete (`reportLeaks`): an unreadable inode or
///   btree leaves its blocks unobserved, and they are not the free-space trees' fault.
/// - **Disagreement:** a free extent one tree holds and the other does not (by start
///   block), unless an overlap finding already names that extent.
/// - **Records:** a free extent that is empty, runs past the AG's end, or overlaps the
///   free extent before it.
///
/// Streams the observations (no record lands on the Swift heap); the bnobt's extents are
/// read into an array (8 bytes each), and the cntbt's only when its fingerprint differs
/// from the bnobt's.
struct FreeSpaceCheck {
    let agno: UInt32
    let agLength: UInt32
    let observations: RmapBTree

    /// What is known of the cntbt.
    enum Counterpart {
        /// It holds exactly the bnobt's extents (``Fingerprint`` says so): checking the
        /// bnobt checks it.
        case sameAsBnobt
        /// Its records, in (length, start) order as the tree holds them.
        case records([FreeSpaceRecord])
    }

    /// An order-independent summary of a set of free extents: two trees holding the same
    /// extents have equal fingerprints, and a single changed, lost or added extent changes
    /// it (a 64-bit mix of each extent, summed, and the count).
    struct Fingerprint: Equatable {
        var count = 0
        var sum: UInt64 = 0

        init() {}

        init(_ extents: [FreeSpaceRecord]) {
            for e in extents { add(e) }
        }

        mutating func add(_ e: FreeSpaceRecord) {
            var x = UInt64(e.startBlock) << 32 | UInt64(e.blockCount)
            x = (x ^ (x >> 30)) &* 0xbf58_476d_1ce4_e5b9
            x = (x ^ (x >> 27)) &* 0x94d0_49bb_1331_11eb
            sum &+= x ^ (x >> 31)
            count += 1
        }
    }

    /// The findings for free extents `bnobt` (in start order) and the cntbt; either may be
    /// nil when its tree could not be read (that fault is reported where the scan met it).
    func findings(bnobt: [FreeSpaceRecord]?, cntbt: Counterpart?, reportLeaks: Bool) throws -> [RmapFinding] {
        var findings: [RmapFinding] = []
        var overlapping: [String: Set<UInt32>] = [:]
        var byStart: [(name: String, extents: [FreeSpaceRecord])] = []
        if let bnobt { byStart.append(("bnobt", bnobt)) }
        var cntbtByStart: [FreeSpaceRecord]? = nil
        if case let .records(records)? = cntbt {
            cntbtByStart = records.sorted { ($0.startBlock, $0.blockCount) < ($1.startBlock, $1.blockCount) }
            byStart.append(("cntbt", cntbtByStart!))
        }
        var validBnobt: [FreeSpaceRecord]? = nil
        for (name, extents) in byStart {
            let valid = recordFindings(name, extents, into: &findings)
            if name == "bnobt" { validBnobt = valid }
            let conflicts = try overlaps(valid)
            overlapping[name] = Set(conflicts.map(\.extent.startBlock))
            for conflict in conflicts {
                let e = conflict.extent
                let more = conflict.records > 1 ? " and \(conflict.records - 1) more records" : ""
                findings.append(RmapFinding(
                    agno: agno, kind: .freeSpace, block: UInt64(conflict.firstBlock), found: conflict.first,
                    detail: "\(name) record \(Self.describe(e)) calls blocks \(conflict.firstBlock)-\(conflict.lastBlock) free, "
                        + "but they are in use: \(RmapText.describe(conflict.first))\(more)"))
            }
        }
        if let bnobt, let cntbtByStart {
            findings += disagreements(bnobt, cntbtByStart, skipping: overlapping)
        }
        if reportLeaks {
            // With the cntbt the same as the bnobt, the bnobt's valid extents (disjoint, in
            // start order) are all the free space; otherwise the two trees' together.
            let free: [FreeSpaceRecord]
            if let cntbtByStart {
                free = ((bnobt ?? []) + cntbtByStart)
                    .filter { $0.blockCount > 0 && UInt64($0.startBlock) + UInt64($0.blockCount) <= UInt64(agLength) }
                    .sorted { $0.startBlock < $1.startBlock }
            } else {
                free = validBnobt ?? []
            }
            for (start, end) in try leaks(free) {
                findings.append(RmapFinding(
                    agno: agno, kind: .freeSpace, block: UInt64(start),
                    detail: "blocks \(start)-\(end - 1) are neither free nor in use: no free-space record and no owner covers them"))
            }
        }
        return findings
    }

    /// "[start 190, len 9]".
    static func describe(_ e: FreeSpaceRecord) -> String { "[start \(e.startBlock), len \(e.blockCount)]" }

    /// Reports empty extents, extents past the AG's end and extents overlapping the one
    /// before them; returns the rest, in start order.
    private func recordFindings(_ name: String, _ extents: [FreeSpaceRecord], into findings: inout [RmapFinding]) -> [FreeSpaceRecord] {
        // The usual case, without a copy: every extent sound and after the one before.
        var soundEnd: UInt64 = 0
        if extents.allSatisfy({ e in
            let eEnd = UInt64(e.startBlock) + UInt64(e.blockCount)
            defer { soundEnd = eEnd }
            return e.blockCount > 0 && eEnd <= UInt64(agLength) && UInt64(e.startBlock) >= soundEnd
        }) {
            return extents
        }
        var valid: [FreeSpaceRecord] = []
        valid.reserveCapacity(extents.count)
        var end: UInt64 = 0
        for e in extents {
            let eEnd = UInt64(e.startBlock) + UInt64(e.blockCount)
            let problem: String? = if e.blockCount == 0 {
                "is empty"
            } else if eEnd > UInt64(agLength) {
                "runs past the end of the AG (\(agLength) blocks)"
            } else if UInt64(e.startBlock) < end {
                "overlaps the free extent before it"
            } else {
                nil
            }
            if let problem {
                findings.append(RmapFinding(agno: agno, kind: .freeSpace, block: UInt64(e.startBlock),
                                            detail: "\(name) record \(Self.describe(e)) \(problem)"))
                continue
            }
            valid.append(e)
            end = eEnd
        }
        return valid
    }

    /// A free extent that covers blocks in use.
    struct Overlap {
        var extent: FreeSpaceRecord
        /// The first observed record in the way, and how many there are.
        var first: RmapRecord
        var records: Int
        /// The blocks of the extent in use: from the first to the last.
        var firstBlock: UInt32
        var lastBlock: UInt32
    }

    /// The free extents (disjoint, in start order) that cover observed blocks.
    private func overlaps(_ extents: [FreeSpaceRecord]) throws -> [Overlap] {
        var result: [Overlap] = []
        // Observations arrive by start block; each overlaps the free extents from the
        // first one ending after its start to the last one starting before its end.
        var first = 0
        try observations.forEach { r in
            let start = r.startBlock, end = r.startBlock + r.blockCount
            while first < extents.count && extents[first].startBlock + extents[first].blockCount <= start { first += 1 }
            var i = first
            while i < extents.count && extents[i].startBlock < end {
                let e = extents[i]
                let low = max(start, e.startBlock), high = min(end, e.startBlock + e.blockCount) - 1
                if let last = result.last, last.extent == e {
                    result[result.count - 1].records += 1
                    result[result.count - 1].firstBlock = min(last.firstBlock, low)
                    result[result.count - 1].lastBlock = max(last.lastBlock, high)
                } else {
                    result.append(Overlap(extent: e, first: r, records: 1, firstBlock: low, lastBlock: high))
                }
                i += 1
            }
            return .proceed
        }
        // Records are visited by start, so an extent may collect records out of order of
        // its own position in `result`: merge entries for the same extent.
        var merged: [Overlap] = []
        for o in result.sorted(by: { $0.extent.startBlock < $1.extent.startBlock }) {
            if let last = merged.last, last.extent == o.extent {
                merged[merged.count - 1].records += o.records
                merged[merged.count - 1].firstBlock = min(last.firstBlock, o.firstBlock)
                merged[merged.count - 1].lastBlock = max(last.lastBlock, o.lastBlock)
            } else {
                merged.append(o)
            }
        }
        return merged
    }

    /// The free extents one tree holds and the other does not, paired by start block: a
    /// merge of the two lists, both in start order.
    private func disagreements(_ bnobt: [FreeSpaceRecord], _ byStart: [FreeSpaceRecord], skipping: [String: Set<UInt32>]) -> [RmapFinding] {
        let skipped = skipping.values.reduce(into: Set<UInt32>()) { $0.formUnion($1) }
        var findings: [RmapFinding] = []
        func report(_ start: UInt32, _ b: UInt32?, _ c: UInt32?) {
            guard !skipped.contains(start) else { return }
            let detail = switch (b, c) {
            case let (b?, c?): "bnobt and cntbt disagree on the free extent at block \(start): length \(b) in the bnobt, \(c) in the cntbt"
            case let (b?, nil): "bnobt record \(Self.describe(FreeSpaceRecord(startBlock: start, blockCount: b))) is not in the cntbt"
            case let (nil, c?): "cntbt record \(Self.describe(FreeSpaceRecord(startBlock: start, blockCount: c))) is not in the bnobt"
            case (nil, nil): ""
            }
            findings.append(RmapFinding(agno: agno, kind: .freeSpace, block: UInt64(start), detail: detail))
        }
        var i = 0, j = 0
        while i < bnobt.count || j < byStart.count {
            let b = i < bnobt.count ? bnobt[i] : nil, c = j < byStart.count ? byStart[j] : nil
            switch (b, c) {
            case let (b?, c?) where b.startBlock == c.startBlock:
                if b.blockCount != c.blockCount { report(b.startBlock, b.blockCount, c.blockCount) }
                i += 1; j += 1
            case let (b?, c?) where b.startBlock < c.startBlock:
                report(b.startBlock, b.blockCount, nil); i += 1
            case let (_, c?):
                report(c.startBlock, nil, c.blockCount); j += 1
            case let (b?, nil):
                report(b.startBlock, b.blockCount, nil); i += 1
            case (nil, nil):
                break
            }
        }
        return findings
    }

    /// The block ranges [start, end) that no free extent (in start order, may overlap) and
    /// no observation covers.
    private func leaks(_ free: [FreeSpaceRecord]) throws -> [(UInt32, UInt32)] {
        /// What the walk has covered so far, and the gaps it left. A value mutated in place
        /// (not variables captured by a local function, which would be boxed and checked for
        /// exclusive access at run time, once per observation).
        struct Coverage {
            var gaps: [(UInt32, UInt32)] = []
            var covered: UInt32 = 0
            mutating func cover(_ start: UInt32, _ end: UInt32) {
                if start > covered { gaps.append((covered, start)) }
                covered = max(covered, end)
            }
        }
        var coverage = Coverage()
        var next = 0
        try observations.forEach { r in
            while next < free.count && free[next].startBlock <= r.startBlock {
                coverage.cover(free[next].startBlock, free[next].startBlock + free[next].blockCount)
                next += 1
            }
            coverage.cover(r.startBlock, r.startBlock + r.blockCount)
            return .proceed
        }
        for e in free[next...] { coverage.cover(e.startBlock, e.startBlock + e.blockCount) }
        if coverage.covered < agLength { coverage.gaps.append((coverage.covered, agLength)) }
        return coverage.gaps
    }
}
