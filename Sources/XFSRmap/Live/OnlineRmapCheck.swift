// The online check: a mounted XFS's inode-owned rmap records, checked while it is written.
//
// Design note. This is the kernel's live rmap repair scan (in-memory-btrees.md §6) done
// from user space. The in-memory trees (one `RmapBTree` per AG) are filled two ways at
// once: an inode scan cursor walks every inode in inode-number order (XFS_IOC_BULKSTAT)
// and reads each one's mappings (GETBMAPX of both forks), and the kernel's rmap updates
// arrive from the trace (`RmapTraceSession`) through the hook registry. The hook
// (`LiveRmapCollector.receive`, the analogue of `xchk_iscan_want_live_update`) applies an
// update of an inode the cursor has passed, and drops one of an inode the cursor has not
// reached (the scan will read that inode later, with the update in it).
//
// What "passed" means is decided in the trace stream itself, not by the clock: each scan
// batch (a bulkstat call and the GETBMAPX reads of the inodes it returned) is bracketed by
// two trace markers; the collector sees the markers in the stream among the updates. An
// update of an inode of the batch's range seen between the two markers raced with the read
// (it may or may not be in what GETBMAPX returned), so the inode is read again in a batch of
// its own, and its updates are dropped until that read lands. At the closing marker the
// batch's records are mapped into the trees (merging as the kernel does) and the cursor
// moves to the batch's end. Every tree change thus happens on the reader thread, in stream
// order. A final batch with an empty bulkstat covers everything above the cursor, so an
// inode made at the end of the scan is not missed; after it every update applies.
//
// The end compares each AG's trees with the kernel's rmapbt read by FS_IOC_GETFSMAP, in
// block ranges small enough (about `OnlineCheckOptions.fsmapRangeRecords` records, one
// GETFSMAP call each) to settle between the writers' updates. A range ends just before
// the start block of the last record its call returned, so every record starting in it
// came whole; each record is compared in the range where it starts. Each range query is
// bracketed by markers; at the closing one the hook takes the trees' records starting in
// the range, and notes the inode-owned updates of the AG that came between the markers.
// Only an update touching the blocks the range's records cover (from its first block to
// one past the end of its longest record: merges join records that touch) can have made
// the two sides differ; such a range is read again alone, halved while wide (up to
// `OnlineCheckOptions.fsmapAttempts` rounds, then, if allowed, once more with the
// filesystem frozen, FIFREEZE/FITHAW, and the pause
// measured). Only inode-owned data and attr-fork records are compared: AG metadata
// (OWN_AG, OWN_INOBT, OWN_INODES, OWN_REFC, ...), CoW staging extents and bmbt blocks have
// no user-space view to scan from. Inodes that cannot be opened by handle (symlinks,
// device files) or that vanish while being read (unlinked, being freed) are left out, with
// their updates, and counted in the report. So are unlinked inodes still waiting for the
// kernel's background inactivation: bulkstat skips them (the kernel will not load an
// unlinked inode), yet they keep their blocks until inactivation frees them, which may be
// after the cursor has passed. The inode btree still holds them, so each batch asks
// XFS_IOC_INUMBERS which inodes of its range are allocated, and leaves out those bulkstat
// did not return. (Without this, freeing such an inode's blocks was an update that did
// not fit the trees, and the check started again.)
//
// Verdicts: consistent, damage (every missing, extra and wrong record, as `check` words
// them), or an error (`LiveCheckError`: lost events, an update that does not fit the
// trees, a race that never settles) which the tool reports as "could not check".

#if canImport(Glibc)
import Glibc
#endif
import CXFSShims
import XFSBuffer
import XFSFormat
import XFSMemoryFile

/// Settings of an online check.
public struct OnlineCheckOptions: Sendable {
    /// Inodes per bulkstat batch (between two markers).
    public var batchSize = 256
    /// How many times an inode whose reads keep racing with updates is read again.
    public var rereadRounds = 200
    /// How many times the whole check starts again after an update did not fit the trees.
    public var restarts = 3
    /// How many rounds of re-reads a range of an AG gets while updates of its blocks race
    /// its GETFSMAP queries.
    public var fsmapAttempts = 50
    /// Whether a short freeze may settle a range whose queries keep racing.
    public var allowFreeze = true
    /// GETFSMAP records per range of an AG (one call each; a range stops before the start
    /// block of the last record, so records per range is about this).
    public var fsmapRangeRecords = 4096
    /// The trace ring buffer per CPU, in KiB.
    public var traceBufferKB = 65536
    /// The most CPU time the check may use per second, as a share of one CPU (0.1: 10 %),
    /// averaged over the check; nil (the default): as much as it gets. The check then
    /// sleeps between its system calls (see `CPUPacer`) and takes longer; the live updates
    /// keep its trees current meanwhile. Every thread's CPU time counts; the trace reader
    /// never sleeps, and when it alone needs more than the share (writers changing the
    /// filesystem fast), the scan still goes on, at about a quarter of its paced speed or
    /// more. A share must be in 0 < share ≤ 1 (a precondition of `OnlineRmapCheck.run()`).
    public var cpuShare: Double?
    /// Default settings.
    public init() {}
}

/// What an online check found and did.
public struct OnlineCheckReport: Sendable {
    /// Missing, extra and wrong inode-owned records, per AG in AG order.
    public var findings: [RmapFinding] = []
    /// Inode-owned records compared per AG (the kernel's, by GETFSMAP).
    public var recordsCompared: [Int] = []
    /// Inodes the scan read (each once, however often re-read).
    public var inodesScanned = 0
    /// Reads repeated because an update raced with them.
    public var inodesReread = 0
    /// Times the check started again after an update did not fit the trees.
    public var restarts = 0
    /// Inodes left out: not openable by handle (symlinks, special files), gone while read,
    /// or unlinked and waiting to be inactivated.
    public var inodesExcluded = 0
    /// Kernel rmap updates seen in the trace (all owners), applied to the trees, dropped
    /// (an inode not yet scanned, a racing read, an excluded inode), and not inode-owned.
    public var updatesSeen = 0, updatesApplied = 0, updatesDropped = 0, updatesNotInodeOwned = 0
    /// GETFSMAP range queries of the first pass over each AG.
    public var fsmapQueries = 0
    /// Range queries repeated because an update of the range's blocks arrived meanwhile.
    public var fsmapRetries = 0
    /// How long the filesystem was frozen (nil: never).
    public var frozenSeconds: Double?
    /// Wall time of the scan phase and of the whole check.
    public var scanSeconds = 0.0, totalSeconds = 0.0
    /// CPU time the check used (every thread, user and system), and the time its scan and
    /// comparison slept to keep to `OnlineCheckOptions.cpuShare`.
    public var cpuSeconds = 0.0, pausedSeconds = 0.0
    /// CPU time of the paced thread (the scan and the comparison) while paced; 0 without
    /// `OnlineCheckOptions.cpuShare`.
    public var pacedCPUSeconds = 0.0
    /// Whether no record is missing, extra or wrong.
    public var isConsistent: Bool { findings.isEmpty }
}

/// The hook subscriber: applies or drops each traced update, maps each scan batch at its
/// closing marker, and snapshots an AG's records at a GETFSMAP query's closing marker (see
/// the design note above). All its state is under one lock; the trees change only on the
/// trace reader's thread.
final class LiveRmapCollector: @unchecked Sendable {
    /// A batch of reads between two markers.
    struct Batch {
        /// The inode-number range it covers (bulkstat batches), if any.
        var range: ClosedRange<UInt64>?
        /// The inodes it re-reads (retry batches).
        var inodes: Set<UInt64> = []
        /// Records read, per AG, per inode (filled before the closing marker).
        var records: [UInt64: [(UInt32, RmapRecord)]] = [:]
        /// Inodes found gone or unopenable during the read.
        var excluded: Set<UInt64> = []
        /// Inodes with updates between the markers.
        var raced: Set<UInt64> = []
        /// Whether the opening marker has been seen.
        var open = false
        func covers(_ ino: UInt64) -> Bool { range?.contains(ino) == true || inodes.contains(ino) }
    }

    /// A GETFSMAP query of one block range of an AG, between two markers. The records it
    /// compares are those whose start block lies in `blocks`.
    struct Query {
        var agno: UInt32
        /// The start blocks compared (the upper bound is set before the closing marker).
        var blocks: ClosedRange<UInt32>
        var open = false
        /// The blocks [start, end] (end: one past the last) of each inode-owned update of
        /// the AG seen between the markers.
        var updates: [ClosedRange<UInt64>] = []
        /// The trees' records of `blocks`, taken at the closing marker.
        var snapshot: [RmapRecord]?
    }

    let lock = ConditionLock()
    let trees: [RmapBTree]
    let agCount: UInt32
    /// Inodes at or below this have been scanned (nil: none yet).
    var cursor: UInt64?
    var scanComplete = false
    var batches: [Int: Batch] = [:]
    var queries: [Int: Query] = [:]
    /// The queries between their markers (at most one: the check queries one range at a time).
    var openQueries: [Int] = []
    var retry: Set<UInt64> = []
    var excluded: Set<UInt64> = []
    var closedMarkers: Set<Int> = []
    var failure: String?
    /// Whether `failure` is an update (or a scanned mapping) that did not fit the trees: a
    /// race the scan could not follow, which a new run may not meet.
    var failureIsUnfit = false
    var seen = 0, applied = 0, dropped = 0, notInodeOwned = 0, rereads = 0

    init(trees: [RmapBTree]) {
        self.trees = trees
        agCount = UInt32(trees.count)
    }

    /// Whether an update of `owner` goes into the trees now (`xchk_iscan_want_live_update`).
    func wants(_ owner: UInt64) -> Bool {
        if excluded.contains(owner) || retry.contains(owner) { return false }
        for batch in batches.values where batch.open && batch.covers(owner) { return false }
        if scanComplete { return true }
        guard let cursor else { return false }
        return owner <= cursor
    }

    /// The hook: called with every trace item, in order, on the reader thread.
    func receive(_ item: RmapTraceItem) {
        lock.lock()
        defer { lock.unlock() }
        switch item {
        case let .update(update):
            seen += 1
            let record = update.record
            guard record.isFileMapping else { notInodeOwned += 1; return }
            for id in openQueries where queries[id]?.agno == update.agno {
                let start = UInt64(record.startBlock)
                queries[id]?.updates.append(start...(start + UInt64(record.blockCount)))
            }
            for id in batches.keys where batches[id]!.open && batches[id]!.covers(record.owner) {
                batches[id]!.raced.insert(record.owner)
            }
            guard wants(record.owner) else { dropped += 1; return }
            guard update.agno < agCount else {
                failure = failure ?? "update of AG \(update.agno), past the last AG: \(update)"
                return
            }
            do {
                try trees[Int(update.agno)].apply(update)
                applied += 1
            } catch {
                if failure == nil { failureIsUnfit = true }
                failure = failure ?? "\(update): \(error)"
            }
        case let .marker(text):
            marker(text)
        case let .lost(why):
            failure = failure ?? "lost events: \(why)"
        case let .failure(why):
            failure = failure ?? why
        }
    }

    private func marker(_ text: String) {
        let words = text.split(separator: " ")
        guard words.count == 3, words[0] == "xfs-rmap-live", let id = Int(words[2]) else { return }
        switch words[1] {
        case "scan-begin": batches[id]?.open = true
        case "scan-end":
            closeBatch(id)
            closedMarkers.insert(id)
        case "fsmap-begin":
            if queries[id] != nil {
                queries[id]!.open = true
                openQueries.append(id)
            }
        case "fsmap-end":
            if let query = queries[id] {
                queries[id]!.snapshot = snapshot(query.agno, query.blocks)
                queries[id]!.open = false
            }
            openQueries.removeAll { $0 == id }
            closedMarkers.insert(id)
        default: return
        }
        lock.broadcast()
    }

    /// Maps the batch's records of inodes that did not race; the raced ones wait for a
    /// re-read. Moves the cursor to the batch's end.
    private func closeBatch(_ id: Int) {
        guard let batch = batches.removeValue(forKey: id) else { return }
        excluded.formUnion(batch.excluded)
        for (ino, records) in batch.records where !batch.raced.contains(ino) && !excluded.contains(ino) {
            for (agno, record) in records {
                guard agno < agCount else {
                    failure = failure ?? "inode \(ino) maps AG \(agno), past the last AG"
                    continue
                }
                do {
                    try trees[Int(agno)].map(record)
                } catch {
                    if failure == nil { failureIsUnfit = true }
                    failure = failure ?? "inode \(ino): \(RmapText.describe(record)) does not fit the trees: \(error)"
                }
            }
            retry.remove(ino)
        }
        for ino in batch.raced where !excluded.contains(ino) { retry.insert(ino) }
        for ino in batch.inodes where !batch.raced.contains(ino) { retry.remove(ino) }
        if let range = batch.range {
            cursor = max(cursor ?? 0, range.upperBound)
            if range.upperBound == .max && batch.raced.isEmpty { scanComplete = true }
        }
    }

    /// AG `agno`'s inode-owned records that start in `blocks`, without excluded owners.
    private func snapshot(_ agno: UInt32, _ blocks: ClosedRange<UInt32>) -> [RmapRecord] {
        var records: [RmapRecord] = []
        do {
            try trees[Int(agno)].forEach(startingIn: blocks) { record in
                if record.isFileMapping && !excluded.contains(record.owner) { records.append(record) }
                return .proceed
            }
        } catch {
            failure = failure ?? "AG \(agno) in-memory tree: \(error)"
        }
        return records
    }

    /// Waits until the closing marker `id` has been seen (or a failure).
    func waitForClose(_ id: Int, timeout: Double = 120) throws {
        let deadline = MonotonicDeadline(secondsFromNow: timeout)
        lock.lock()
        defer { lock.unlock() }
        while !closedMarkers.contains(id) && failure == nil {
            if !lock.wait(until: deadline) {
                throw LiveCheckError.incompleteStream("marker \(id) did not come through the trace within \(Int(timeout)) s")
            }
        }
        closedMarkers.remove(id)
        if let failure { throw failureIsUnfit ? UnfitUpdate(why: failure) : LiveCheckError.inconsistentStream(failure) }
    }
}

/// A traced update, or a scanned mapping, that did not fit the trees: the check starts
/// again (``OnlineCheckOptions/restarts``) before it gives up.
struct UnfitUpdate: Error {
    let why: String
}

/// A live check of a mounted XFS's inode-owned rmap records (see the design note above).
public final class OnlineRmapCheck {
    /// The filesystem.
    public let filesystem: MountedXFS
    /// Its geometry.
    public let geometry: MountedGeometry
    /// Settings.
    public let options: OnlineCheckOptions
    /// Called with a line of progress now and then (phase changes, counts).
    public var progress: (@Sendable (String) -> Void)?
    private var nextMarker = 0
    /// Keeps the check to `options.cpuShare`, while it runs.
    private var pacer: CPUPacer?

    /// A check of the XFS mounted at `mountPoint`; throws when it is not one, or has no
    /// reverse mappings.
    public init(mountPoint: String, options: OnlineCheckOptions = OnlineCheckOptions()) throws {
        filesystem = try MountedXFS(path: mountPoint)
        geometry = try filesystem.geometry()
        self.options = options
        guard geometry.hasRmap else {
            throw LiveCheckError.filesystem(path: mountPoint, detail: "the filesystem has no reverse-mapping btrees (rmapbt=0)")
        }
        guard geometry.blockSize >= 512, geometry.agBlocks > 0, geometry.agCount > 0 else {
            throw LiveCheckError.filesystem(path: mountPoint, detail: "implausible geometry \(geometry)")
        }
    }

    /// Runs the check: traces, scans, compares. Throws `LiveCheckError` when no verdict can
    /// be given.
    ///
    /// An update that does not fit the trees (the kernel removing or converting a mapping
    /// the trees do not hold) means a race the scan could not follow; the kernel's own live
    /// repair gives up its scan then. The check starts again from nothing, up to
    /// `options.restarts` times (counted in the report), and then gives up with
    /// `LiveCheckError.inconsistentStream`.
    public func run() throws -> OnlineCheckReport {
        let cpuAtStart = CPUPacer.processCPUSeconds()
        pacer = options.cpuShare.map { CPUPacer(share: $0) }
        defer { pacer = nil }
        var restarts = 0
        while true {
            do {
                var report = try runOnce()
                report.restarts = restarts
                report.cpuSeconds = CPUPacer.processCPUSeconds() - cpuAtStart
                report.pausedSeconds = pacer?.pausedSeconds ?? 0
                report.pacedCPUSeconds = pacer?.threadCPUSeconds ?? 0
                return report
            } catch let unfit as UnfitUpdate {
                guard restarts < options.restarts else { throw LiveCheckError.inconsistentStream(unfit.why) }
                restarts += 1
                progress?("\(unfit.why); starting again (\(restarts) of \(options.restarts))")
            }
        }
    }

    /// One run of the check, from an empty trace and empty trees.
    private func runOnce() throws -> OnlineCheckReport {
        let started = ContinuousClock.now
        RmapTraceSession.removeStaleInstances()
        let memoryFile = try MemoryFile(name: "xfs-rmap online")
        var trees: [RmapBTree] = []
        for agno in 0..<geometry.agCount {
            let size = max(16 << 20, (Int(geometry.agBlocks) * 64 + MemoryTarget.blockSize - 1) / MemoryTarget.blockSize * MemoryTarget.blockSize)
            let target = MemoryTarget(partition: try memoryFile.makePartition(size: size), exclusive: true)
            trees.append(try RmapBTree(target: target, allowsSharing: geometry.hasReflink, owner: UInt64(agno)))
        }
        let collector = LiveRmapCollector(trees: trees)
        let hooks = RmapHookRegistry()
        hooks.subscribe { collector.receive($0) }
        let session = try RmapTraceSession(device: try filesystem.device, hooks: hooks, bufferKB: options.traceBufferKB)
        defer { session.cancel() }

        var report = OnlineCheckReport()
        progress?("scanning inodes")
        try scan(collector, session, &report)
        report.scanSeconds = seconds(since: started)
        progress?("comparing with GETFSMAP")
        try compare(collector, session, &report)
        try session.finish()
        collector.lock.lock()
        report.updatesSeen = collector.seen
        report.updatesApplied = collector.applied
        report.updatesDropped = collector.dropped
        report.updatesNotInodeOwned = collector.notInodeOwned
        report.inodesReread = collector.rereads
        report.inodesExcluded = collector.excluded.count
        let failure = collector.failure, unfit = collector.failureIsUnfit
        collector.lock.unlock()
        if let failure { throw unfit ? UnfitUpdate(why: failure) : LiveCheckError.inconsistentStream(failure) }
        report.totalSeconds = seconds(since: started)
        return report
    }

    /// Puts the calling thread, and every thread it starts afterwards (a check's trace
    /// reader among them), in the idle CPU and I/O scheduling classes (SCHED_IDLE,
    /// IOPRIO_CLASS_IDLE), as xfs_scrub's service runs: a check then uses only the CPU and
    /// disk time nobody else wants. It still finishes (an idle CPU comes sooner or later;
    /// the trace buffer holds the updates meanwhile) and is still right: events lost while
    /// it waits end it with `LiveCheckError.incompleteStream`. Irreversible for the thread.
    public static func runInBackground() throws {
        guard cxfs_background_priority() == 0 else {
            throw LiveCheckError.filesystem(path: "sched_setscheduler", detail: "cannot run at idle priority: \(String(cString: strerror(errno)))")
        }
    }

    private func newMarker() -> Int {
        nextMarker += 1
        return nextMarker
    }

    /// The rmap records of `mappings` of inode `ino` (one fork), by AG; delayed allocations
    /// and inline data have none yet.
    func records(of mappings: [FileMapping], ino: UInt64, attrFork: Bool) throws -> [(UInt32, RmapRecord)] {
        let blockSize = UInt64(geometry.blockSize)
        var result: [(UInt32, RmapRecord)] = []
        for m in mappings where !m.isUnallocated && m.length > 0 {
            guard m.physical % blockSize == 0, m.logical % blockSize == 0, m.length % blockSize == 0 else {
                throw LiveCheckError.filesystem(path: filesystem.path, detail: "inode \(ino): mapping not block-aligned: \(m)")
            }
            var block = m.physical / blockSize
            var offset = m.logical / blockSize
            var left = m.length / blockSize
            // One record per AG the mapping crosses (a GETBMAPX extent may run across the boundary).
            while left > 0 {
                let agno = block / UInt64(geometry.agBlocks)
                let agbno = block % UInt64(geometry.agBlocks)
                let count = min(left, UInt64(geometry.agBlocks) - agbno, UInt64(UInt32.max))
                guard agno < UInt64(geometry.agCount) else {
                    throw LiveCheckError.filesystem(path: filesystem.path, detail: "inode \(ino): mapping past the last AG: \(m)")
                }
                result.append((UInt32(agno), RmapRecord(startBlock: UInt32(agbno), blockCount: UInt32(count), owner: ino,
                                                        offset: offset, isAttrFork: attrFork, isUnwritten: m.isUnwritten)))
                block += count
                offset += count
                left -= count
            }
        }
        return result
    }

    /// Reads `inodes` into `batch`: their mappings, or their exclusion.
    private func read(_ inodes: [BulkstatInode], into batch: inout LiveRmapCollector.Batch) throws {
        for inode in inodes {
            guard inode.isOpenable else {
                if inode.blocks > 0 { batch.excluded.insert(inode.ino) }
                continue
            }
            guard let descriptor = try filesystem.open(inode) else {
                batch.excluded.insert(inode.ino)
                continue
            }
            defer { filesystem.close(descriptor) }
            var records = try self.records(of: try filesystem.mappings(of: descriptor, attrFork: false), ino: inode.ino, attrFork: false)
            records += try self.records(of: try filesystem.mappings(of: descriptor, attrFork: true), ino: inode.ino, attrFork: true)
            batch.records[inode.ino] = records
        }
    }

    /// Runs one batch: registers it, writes the opening marker, reads, hands the records
    /// over, writes the closing marker and waits for it to come through.
    private func runBatch(_ collector: LiveRmapCollector, _ session: RmapTraceSession, range: ClosedRange<UInt64>?,
                          inodes: Set<UInt64>, read body: (inout LiveRmapCollector.Batch) throws -> Void) throws {
        let id = newMarker()
        collector.lock.lock()
        collector.batches[id] = LiveRmapCollector.Batch(range: range, inodes: inodes)
        collector.lock.unlock()
        try session.mark("xfs-rmap-live scan-begin \(id)")
        var batch = LiveRmapCollector.Batch(range: range, inodes: inodes)
        try body(&batch)
        collector.lock.lock()
        collector.batches[id]?.records = batch.records
        collector.batches[id]?.excluded = batch.excluded
        collector.lock.unlock()
        try session.mark("xfs-rmap-live scan-end \(id)")
        try collector.waitForClose(id)
        pacer?.pace()
    }

    private func scan(_ collector: LiveRmapCollector, _ session: RmapTraceSession, _ report: inout OnlineCheckReport) throws {
        var next: UInt64 = 0
        var scanned = 0
        // The cursor's walk: each bulkstat call and its reads in one batch covering the
        // inode numbers from the cursor to the last one returned.
        while true {
            var last: UInt64?
            var continueFrom: UInt64?
            let low = next
            // The range is known only after bulkstat; register it as everything above the
            // cursor, and narrow it once the batch has run.
            try runBatch(collector, session, range: low...UInt64.max, inodes: []) { batch in
                let (inodes, following) = try filesystem.bulkstat(from: low, count: options.batchSize)
                scanned += inodes.count
                last = inodes.last?.ino
                continueFrom = following
                if let last {
                    // Inodes above the last one returned are not read in this batch.
                    batch.range = low...last
                    // Inodes the inode btree holds that bulkstat skipped are unlinked ones
                    // waiting to be inactivated: their blocks are freed later, after the
                    // cursor has passed them. They are left out, as inodes being freed.
                    let returned = Set(inodes.map(\.ino))
                    for ino in try filesystem.allocatedInodes(in: low...last) where !returned.contains(ino) {
                        batch.excluded.insert(ino)
                    }
                }
                try read(inodes, into: &batch)
                if let last {
                    collector.lock.lock()
                    narrow(collector, to: low...last)
                    collector.lock.unlock()
                }
            }
            // Only a batch that found nothing above the cursor ends the walk (it covered
            // everything up to the largest inode number, so nothing made meanwhile is missed).
            guard let last else { break }
            next = max(continueFrom ?? 0, last &+ 1)
            progress?("scanned \(scanned) inodes (cursor at inode \(last))")
        }
        report.inodesScanned = scanned
        // Re-read the inodes whose reads raced, each round in one batch, until none races.
        for round in 0..<options.rereadRounds {
            collector.lock.lock()
            let pending = collector.retry
            collector.rereads += pending.count
            collector.lock.unlock()
            if pending.isEmpty {
                return
            }
            progress?("re-reading \(pending.count) inode\(pending.count == 1 ? "" : "s") that raced with updates (round \(round + 1))")
            try runBatch(collector, session, range: nil, inodes: pending) { batch in
                for ino in pending.sorted() {
                    let (inodes, _) = try filesystem.bulkstat(from: ino, count: 1)
                    if let inode = inodes.first, inode.ino == ino {
                        try read([inode], into: &batch)
                    } else if try filesystem.allocatedInodes(in: ino...ino).isEmpty {
                        batch.records[ino] = []
                    } else {
                        batch.excluded.insert(ino) // unlinked, waiting to be inactivated
                    }
                }
            }
        }
        throw LiveCheckError.incompleteStream("inodes kept changing during each of \(options.rereadRounds) reads")
    }

    /// Narrows the open scan batch's range to `range` (the inodes bulkstat returned): an
    /// inode above it is the next batch's.
    private func narrow(_ collector: LiveRmapCollector, to range: ClosedRange<UInt64>) {
        for id in collector.batches.keys where collector.batches[id]!.range?.lowerBound == range.lowerBound {
            let raced = collector.batches[id]!.raced
            collector.batches[id]!.range = range
            // An update above the range seen so far belongs to an inode the next batch reads.
            collector.batches[id]!.raced = raced.filter { range.contains($0) }
        }
    }

    /// One range query sent to the kernel: its marker, the AG blocks whose records it
    /// compares (their start blocks), and the kernel's inode-owned records starting there.
    struct IssuedRange {
        var id: Int
        var blocks: ClosedRange<UInt32>
        var kernel: [RmapRecord]
    }

    /// The inode-owned records among `raw` (GETFSMAP records of AG `agno`) whose start block
    /// lies in `blocks`, as rmap records.
    func kernelRecords(_ raw: [FSMapRecord], agno: UInt32, blocks: ClosedRange<UInt32>) -> [RmapRecord] {
        let blockSize = UInt64(geometry.blockSize)
        let agBytes = UInt64(geometry.agBlocks) * blockSize
        let agStart = UInt64(agno) * agBytes
        var records: [RmapRecord] = []
        records.reserveCapacity(raw.count)
        for r in raw where r.isInodeOwned && !r.isBmbtBlock {
            guard r.physical >= agStart, r.physical - agStart + r.length <= agBytes else { continue }
            let start = (r.physical - agStart) / blockSize
            guard start >= UInt64(blocks.lowerBound), start <= UInt64(blocks.upperBound) else { continue }
            records.append(RmapRecord(startBlock: UInt32(start), blockCount: UInt32(r.length / blockSize),
                                      owner: r.owner, offset: r.offset / blockSize, isAttrFork: r.isAttrFork,
                                      isUnwritten: r.isUnwritten))
        }
        return records
    }

    /// Queries the kernel's records of AG `agno` from block `low` on, between two markers
    /// (the reader takes the trees' records of the same blocks at the closing one). With
    /// `high`, the range is [`low`, `high`] (GETFSMAP continued as long as it takes).
    /// Without, it is one GETFSMAP call of at most `OnlineCheckOptions.fsmapRangeRecords`
    /// records from `low` to the AG's end: unless that call reached the end, the range stops
    /// just before the start block of the last record returned, so every record starting in
    /// the range has come whole (records are returned in start-block order), and the next
    /// range begins there.
    private func issue(_ collector: LiveRmapCollector, _ session: RmapTraceSession, agno: UInt32, low: UInt32,
                       high: UInt32?) throws -> IssuedRange {
        let id = newMarker()
        collector.lock.withLock { collector.queries[id] = LiveRmapCollector.Query(agno: agno, blocks: low...low) }
        try session.mark("xfs-rmap-live fsmap-begin \(id)")
        let blockSize = UInt64(geometry.blockSize)
        let agStart = UInt64(agno) * UInt64(geometry.agBlocks) * blockSize
        let agLast = geometry.agBlocks - 1
        var blocks = low...agLast
        var raw: [FSMapRecord] = []
        do {
            if let high {
                blocks = low...high
                raw = try filesystem.fsmap(physical: agStart + UInt64(low) * blockSize,
                                           through: agStart + (UInt64(high) + 1) * blockSize - 1)
            } else {
                var limit = max(2, options.fsmapRangeRecords)
                while true {
                    let (records, complete) = try filesystem.fsmap(physical: agStart + UInt64(low) * blockSize,
                                                                   through: agStart + UInt64(geometry.agBlocks) * blockSize - 1,
                                                                   atMost: limit)
                    raw = records
                    if complete { break }
                    let lastStart = (max(records.last?.physical ?? 0, agStart) - agStart) / blockSize
                    if lastStart > UInt64(low) {
                        blocks = low...UInt32(lastStart - 1)
                        break
                    }
                    // Every record returned starts at `low` (a block shared by that many
                    // owners): ask for more.
                    limit *= 2
                }
            }
        } catch {
            try? session.mark("xfs-rmap-live fsmap-end \(id)")
            collector.lock.withLock {
                collector.queries[id] = nil
                collector.openQueries.removeAll { $0 == id }
            }
            throw error
        }
        collector.lock.withLock { collector.queries[id]?.blocks = blocks }
        try session.mark("xfs-rmap-live fsmap-end \(id)")
        pacer?.pace()
        return IssuedRange(id: id, blocks: blocks, kernel: kernelRecords(raw, agno: agno, blocks: blocks))
    }

    /// Waits for the closing marker of `range`; its differences and the number of kernel
    /// records compared, or nil when an update raced it. An update raced the range when it
    /// came between the markers and touches the blocks the range's records cover (from the
    /// range's first block to one past the end of its longest record, ours or the kernel's):
    /// only such an update can have changed, added or removed a record starting in the range
    /// (a merge joins records that touch), so the kernel's answer and the trees' snapshot
    /// then need not be of the same moment.
    private func settle(_ collector: LiveRmapCollector, _ range: IssuedRange, agno: UInt32) throws
        -> (findings: [RmapFinding], compared: Int)? {
        try collector.waitForClose(range.id)
        let (query, excluded) = collector.lock.withLock { (collector.queries.removeValue(forKey: range.id), collector.excluded) }
        guard let query, let ours = query.snapshot else {
            throw LiveCheckError.incompleteStream("the markers of GETFSMAP query \(range.id) (AG \(agno)) were not seen in the trace")
        }
        let kernel = excluded.isEmpty ? range.kernel : range.kernel.filter { !excluded.contains($0.owner) }
        var end = UInt64(range.blocks.upperBound) + 1
        for r in ours { end = max(end, UInt64(r.startBlock) + UInt64(r.blockCount)) }
        for r in kernel { end = max(end, UInt64(r.startBlock) + UInt64(r.blockCount)) }
        let span = UInt64(range.blocks.lowerBound)...end
        if query.updates.contains(where: { $0.overlaps(span) }) { return nil }
        return (Self.differences(agno, expected: ours, found: kernel), kernel.count)
    }

    /// The ranges a raced range is read again as: its two halves while it is wider than
    /// 128 blocks (an update in one half then no longer holds back the other), else itself.
    static func split(_ blocks: ClosedRange<UInt32>) -> [ClosedRange<UInt32>] {
        let width = UInt64(blocks.upperBound) - UInt64(blocks.lowerBound) + 1
        guard width > 128 else { return [blocks] }
        let middle = blocks.lowerBound + UInt32(width / 2)
        return [blocks.lowerBound...(middle - 1), middle...blocks.upperBound]
    }

    private func compare(_ collector: LiveRmapCollector, _ session: RmapTraceSession, _ report: inout OnlineCheckReport) throws {
        for agno in 0..<geometry.agCount {
            var settled: [(UInt32, [RmapFinding])] = []
            var compared = 0
            do {
                // The whole AG in ranges GETFSMAP's own continuation chooses, queried back to
                // back: the reader takes each range's snapshot at its closing marker meanwhile.
                var issued: [IssuedRange] = []
                var low: UInt32 = 0
                while true {
                    let range = try issue(collector, session, agno: agno, low: low, high: nil)
                    issued.append(range)
                    if range.blocks.upperBound >= geometry.agBlocks - 1 { break }
                    low = range.blocks.upperBound + 1
                }
                report.fsmapQueries += issued.count
                /// Settles each range that did not race; returns the raced ones' halves.
                func settleAll(_ ranges: [IssuedRange]) throws -> [ClosedRange<UInt32>] {
                    var raced: [ClosedRange<UInt32>] = []
                    for range in ranges {
                        if let (findings, n) = try settle(collector, range, agno: agno) {
                            settled.append((range.blocks.lowerBound, findings))
                            compared += n
                        } else {
                            raced += Self.split(range.blocks)
                        }
                    }
                    return raced
                }
                var pending = try settleAll(issued)
                // Each raced range again, alone (halved while wide), until none races; after
                // `fsmapAttempts` rounds, once more with the filesystem frozen.
                var round = 0
                while !pending.isEmpty {
                    round += 1
                    let frozen = round > options.fsmapAttempts
                    if frozen && !options.allowFreeze {
                        throw LiveCheckError.incompleteStream("AG \(agno): updates raced each of \(options.fsmapAttempts) GETFSMAP queries of a range (freezing not allowed)")
                    }
                    if round > options.fsmapAttempts + 1 {
                        throw LiveCheckError.incompleteStream("AG \(agno): updates arrived even while the filesystem was frozen")
                    }
                    report.fsmapRetries += pending.count
                    progress?("AG \(agno): \(pending.count) range\(pending.count == 1 ? "" : "s") raced with updates; again\(frozen ? " with the filesystem frozen" : "")")
                    let freezeStart = ContinuousClock.now
                    if frozen { try filesystem.freeze() }
                    let issuing = Result {
                        try pending.map { try issue(collector, session, agno: agno, low: $0.lowerBound, high: $0.upperBound) }
                    }
                    if frozen {
                        // Thawed whatever happened; a failed thaw matters only when the
                        // queries themselves succeeded.
                        let thawed = Result { try filesystem.thaw() }
                        report.frozenSeconds = (report.frozenSeconds ?? 0) + seconds(since: freezeStart)
                        if case .success = issuing { try thawed.get() }
                    }
                    pending = try settleAll(try issuing.get())
                }
            } catch let LiveCheckError.corruptionReported(_, detail) {
                // The kernel's own verifiers refused this AG's rmapbt: damage, by the
                // kernel's word; its records cannot be compared.
                collector.lock.withLock {
                    collector.queries = collector.queries.filter { $0.value.agno != agno }
                }
                report.recordsCompared.append(0)
                report.findings.append(RmapFinding(agno: agno, kind: .structure,
                                                   detail: "the kernel reports this AG's rmapbt corrupt (\(detail)); its records were not compared"))
                continue
            }
            report.recordsCompared.append(compared)
            for (_, findings) in settled.sorted(by: { $0.0 < $1.0 }) { report.findings += findings }
        }
    }

    /// Missing, extra and wrong records of AG `agno`, worded as `check` words them: an
    /// expected record without a kernel record of its key is missing, a kernel record without
    /// an expected one of its key is extra, equal keys with different records are wrong.
    static func differences(_ agno: UInt32, expected: [RmapRecord], found: [RmapRecord]) -> [RmapFinding] {
        let key = { (r: RmapRecord) in RmapFormat.lowKey(of: r) }
        let e = expected.sorted { key($0) < key($1) }
        let f = found.sorted { key($0) < key($1) }
        var findings: [RmapFinding] = []
        var i = 0, j = 0
        while i < e.count || j < f.count {
            if j == f.count || (i < e.count && key(e[i]) < key(f[j])) {
                findings.append(RmapFinding(agno: agno, kind: .missing, block: UInt64(e[i].startBlock), expected: e[i],
                                            detail: "missing record \(RmapText.describe(e[i]))"))
                i += 1
            } else if i == e.count || key(f[j]) < key(e[i]) {
                findings.append(RmapFinding(agno: agno, kind: .extra, found: f[j],
                                            detail: "extra record \(RmapText.describe(f[j]))"))
                j += 1
            } else {
                if e[i] != f[j] {
                    findings.append(RmapFinding(agno: agno, kind: .wrong, expected: e[i], found: f[j],
                                                detail: "wrong record \(RmapText.describe(f[j])), should be \(RmapText.describe(e[i]))"))
                }
                i += 1
                j += 1
            }
        }
        return findings
    }
}
