import CXFSShims
import Glibc
import Synchronization
import XFSBTree
import XFSBuffer
import XFSFormat
import XFSMemoryFile
import XFSTransaction

/// A problem met while gathering observations that does not stop the scan: a metadata
/// structure that could not be read or an observation that collides with another. The
/// checker reports them as damage.
public struct ScanProblem: Sendable, Equatable, CustomStringConvertible {
    /// What kind of structure the problem is in.
    public enum Kind: Sendable, Equatable {
        /// An AG header (AGF, AGI) or the free list it governs.
        case header
        /// The on-disk rmapbt's own blocks (walked for their OWN_AG records): the check's
        /// structural verification of that tree reports the same fault.
        case rmapbt
        /// Anything else the scan reads: an AG btree, an inode, a fork; or two observations
        /// that collide.
        case observation
    }

    /// The AG the problem belongs to.
    public var agno: UInt32
    /// What kind of structure the problem is in.
    public var kind: Kind = .observation
    /// What could not be read or recorded, and why.
    public var detail: String
    /// The inode or fork the problem made unreadable, when that is what it is: none of its
    /// mappings were observed, so its on-disk records cannot be checked.
    public var unreadable: UnreadableInodes?

    /// A problem of `kind` in AG `agno`.
    public init(agno: UInt32, kind: Kind = .observation, detail: String, unreadable: UnreadableInodes? = nil) {
        self.agno = agno
        self.kind = kind
        self.detail = detail
        self.unreadable = unreadable
    }

    /// "AG N: detail".
    public var description: String { "AG \(agno): \(detail)" }
}

/// Inodes the scan could not read: one inode, one fork of it, or every inode of an AG whose
/// inode btree's records (or AGI) could not be read. None of the mappings they hold were observed,
/// so every on-disk record they own would look extra; the check reports those records as
/// one finding about the cause instead.
public struct UnreadableInodes: Sendable, Hashable {
    /// Which inodes.
    public enum Scope: Sendable, Hashable {
        /// Inode `ino`: the fork named, or the whole inode when `fork` is nil.
        case inode(UInt64, fork: InodeFork.Which?)
        /// Every inode of the AG (`agno`): the records of every inode numbered in that AG,
        /// and the AG's OWN_INODES records (its inode chunks); with `inodeBTrees`, its
        /// OWN_INOBT records too (the AGI, which roots those trees, could not be read).
        case allInodesOfAG(inodeBTrees: Bool)
    }

    /// The AG that reports the cause: the inode's AG, or the AG whose inodes are unknown.
    public var agno: UInt32
    /// Which inodes.
    public var scope: Scope
    /// Why, without the inode's name: "bmbt block 75059: bad CRC".
    public var reason: String

    /// Inodes of AG `agno` in `scope` that could not be read, because of `reason`.
    public init(agno: UInt32, scope: Scope, reason: String) {
        self.agno = agno
        self.scope = scope
        self.reason = reason
    }

    /// The inode number, for one inode or fork.
    public var ino: UInt64? {
        if case .inode(let ino, _) = scope { return ino }
        return nil
    }

    /// Whether `record`, found in AG `recordAG`, is one these inodes would have made:
    /// `agnoOfInode` gives the AG of an inode number.
    public func owns(_ record: RmapRecord, inAG recordAG: UInt32, agnoOfInode: (UInt64) -> UInt64) -> Bool {
        switch scope {
        case let .inode(ino, fork):
            return record.owner == ino && (fork.map { ($0 == .attr) == record.isAttrFork } ?? true)
        case let .allInodesOfAG(inodeBTrees):
            if record.owner == RmapOwner.inodes || (inodeBTrees && record.owner == RmapOwner.inobt) { return recordAG == agno }
            return !RmapOwner.isSpecial(record.owner) && agnoOfInode(record.owner) == UInt64(agno)
        }
    }

    /// "inode 133 data fork", "inode 133", "the inodes of AG 0".
    public var name: String {
        switch scope {
        case let .inode(ino, fork): "inode \(ino)" + (fork.map { " \($0.rawValue) fork" } ?? "")
        case .allInodesOfAG: "the inodes of AG \(agno)"
        }
    }

    /// "inode 133 data fork unreadable: bmbt block 75059: bad CRC".
    public var sentence: String { "\(name) unreadable: \(reason)" }
}

/// How far a scan has got, for progress reports.
public struct ScanProgress: Sendable {
    /// AGs whose allocated inodes have all been scanned.
    public var agsDone: Int
    /// AGs in the scan.
    public var agCount: Int
    /// Inodes scanned so far.
    public var inodes: Int
    /// Inodes the scanned AGs' AGIs count in all (for an estimate of the time left).
    public var inodesExpected: Int
    /// Observations stashed so far.
    public var observations: Int
    /// Blocks those observations cover.
    public var blocks: Int = 0
}

/// Gathers, for each AG, every reverse mapping the filesystem implies into an in-memory
/// rmap btree (xfs_repair phase 4 and online rmap repair, xfs-format.md §6):
///
/// 1. OWN_FS: the AG headers, [0, AGFL block + 1);
/// 2. OWN_LOG: the internal log, in the AG that holds it;
/// 3. OWN_INODES: each inode chunk's blocks (sparse chunks: the allocated part);
/// 4. OWN_INOBT: every inobt and finobt block;
/// 5. OWN_AG: every bnobt, cntbt and rmapbt block, and every active AGFL entry;
/// 6. OWN_REFC: every refcountbt block; OWN_COW: each CoW-domain refcount record;
/// 7. for every allocated inode (of every AG): each data-fork extent (unless the inode's
///    data is on the realtime device), each attr-fork extent, and each on-disk bmbt block,
///    filed under the AG its blocks are in.
///
/// Two ways to stash the observations (``Stashing``), which give the same records:
/// - `.sortedBulkLoad` (the default, for an image nobody changes during the scan): each AG's
///   observations are gathered in 24 bytes each, then sorted, merged by the kernel's rules
///   in one pass in key order, and bulk-loaded into the AG's tree, full blocks;
/// - `.perObservation`: each observation is stashed with the rmap `map` operation in a
///   transaction of its own that is committed at once, as online repair does while live
///   updates may arrive, so neighbouring observations merge exactly as the kernel merges
///   them.
///
/// The trees share one memory file, a partition each. AGs are scanned in parallel; each
/// tree (and its gathered observations) has a lock, since an inode of one AG may map
/// blocks of any other.
///
/// Thread safety: `Sendable`; its per-AG locks let `scan(ags:)` stash from several threads.
public final class RmapScanner: @unchecked Sendable {
    /// How observations reach the trees.
    public enum Stashing: Sendable {
        /// Gathered, then sorted, merged and bulk-loaded once the scan has read everything:
        /// the fast way when no update can race the scan. `scan` then runs once.
        case sortedBulkLoad
        /// One `map` in a committed transaction per observation, as they are found: the way
        /// that leaves the trees ready for live updates at every moment.
        case perObservation
    }

    /// How observations reach the trees.
    public let stashing: Stashing
    /// The image being scanned.
    public let image: XFSImage
    /// The memory file holding every AG's tree.
    public let memoryFile: MemoryFile
    /// One tree and one lock per AG, indexed by AG number.
    private let trees: [RmapBTree]
    private let locks: [Mutex]
    private let problemsLock = Mutex()
    private var collectedProblems: [ScanProblem] = []
    private let progressLock = Mutex()
    private var progressState: ScanProgress
    /// Allocated inodes not yet scanned, per AG number (under `progressLock`).
    private var inodesLeftPerAG: [Int] = []
    /// Observations stashed and the blocks they cover, counted without a lock.
    private let observationCount = Atomic<Int>(0)
    private let blockCount = Atomic<Int>(0)
    /// Inodes scanned, counted without a lock.
    private let inodesScanned = Atomic<Int>(0)
    /// With `.sortedBulkLoad`: each AG's observations so far, one object per AG, each
    /// changed only under its AG's lock (threads gathering for different AGs change
    /// different objects, never one shared array).
    private let gathered: [GatheredBox]
    /// With `.sortedBulkLoad`: whether `scan` has run (it runs once).
    private var hasScanned = false

    /// How many threads each parallel phase of the scan uses.
    public let threads: Int

    /// A scanner for `image`, with its observations in a memory file of its own, stashed
    /// the way `stashing` says, on up to `threads` threads (at most one per core).
    ///
    /// The memory file is a memfd (or a file in /dev/shm or $TMPDIR) unless
    /// `memoryDirectory` names a directory for it: on a disk, for filesystems whose
    /// observations do not fit in memory (use `.perObservation` then: gathered
    /// observations live on the heap until they are loaded).
    public init(image: XFSImage, stashing: Stashing = .sortedBulkLoad, threads: Int = ParallelAGs.defaultThreads,
                memoryDirectory: String? = nil) throws {
        precondition(threads >= 1, "a scan needs at least one thread, not \(threads)")
        self.image = image
        self.stashing = stashing
        self.threads = threads
        gathered = (0..<image.geometry.agCount).map { _ in GatheredBox() }
        memoryFile = try MemoryFile(name: "xfs-rmap observations",
                                    backing: memoryDirectory.map { .only(.temporaryFile(directory: $0)) } ?? .automatic)
        progressState = ScanProgress(agsDone: 0, agCount: 0, inodes: 0, inodesExpected: 0, observations: 0)
        var trees: [RmapBTree] = []
        for agno in 0..<image.geometry.agCount {
            // A tree of one record per block at the fullest merge-free density needs
            // about 64 bytes a block; the partition is address space, not memory.
            let blocks = Int(image.geometry.agLength(agno))
            let size = max(16 << 20, (blocks * 64 + MemoryTarget.blockSize - 1) / MemoryTarget.blockSize * MemoryTarget.blockSize)
            // Each tree is used under its AG's lock only, so its target's cache needs none.
            let target = MemoryTarget(partition: try memoryFile.makePartition(size: size), exclusive: true)
            // Observations arrive in ascending runs (AG metadata, then each file's extents),
            // which `.batchedShifts` stores in full blocks, shifting once per blockful.
            trees.append(try RmapBTree(target: target, allowsSharing: image.geometry.hasReflink, owner: UInt64(agno),
                                       uuid: image.metadataUUID, growthPolicy: .batchedShifts))
        }
        self.trees = trees
        self.locks = trees.map { _ in Mutex() }
    }

    /// The in-memory tree of AG `agno`. Use it from one thread at a time, and not while
    /// `scan` runs: its memory target is exclusive (its cache takes no lock).
    public func tree(_ agno: UInt32) -> RmapBTree {
        precondition(agno < image.geometry.agCount, "AG \(agno) of \(image.geometry.agCount)")
        return trees[Int(agno)]
    }

    /// Problems met so far, in the order they were met per AG.
    public var problems: [ScanProblem] {
        problemsLock.withLock { collectedProblems.sorted { $0.agno < $1.agno } }
    }

    /// A snapshot of the scan's progress.
    public var progress: ScanProgress {
        var snapshot = progressLock.withLock { progressState }
        snapshot.observations = observationCount.load(ordering: .relaxed)
        snapshot.blocks = blockCount.load(ordering: .relaxed)
        snapshot.inodes = inodesScanned.load(ordering: .relaxed)
        return snapshot
    }

    /// Above this many allocated inodes a sorted-bulk-load scan plans nothing and reads
    /// each inode once. A plan reads every inode once more to weigh it (its extent count),
    /// which keeps the few files that hold most of the extents in batches of their own;
    /// on a million extents in 2,000 inodes the planned scan's check took 0.28 s against
    /// 0.32 s. With millions of small files the second read costs more than balance gains.
    static let planningInodeLimit = 262_144

    /// Scans AGs `ags` (their metadata and inodes), filling every AG's tree: an inode of a
    /// scanned AG may map blocks of an AG that is not scanned, and those records land in
    /// that AG's tree too.
    ///
    /// Parallel phases: each AG's metadata (headers and AG btrees), one job per AG; a plan
    /// of every allocated inode of those AGs (where its blocks probably are, and how many
    /// observations it makes), in chunks over all cores; then the inodes themselves, in
    /// small batches over all cores, workers in different AGs' trees while they can be
    /// (`InodeLanes`). With `.sortedBulkLoad` and many inodes (`planningInodeLimit`) there
    /// is no plan: inodes go out in inode order, a lane per AG, and each is read once.
    ///
    /// - Throws: only what stops the whole scan (the memory file failing); unreadable
    ///   structures become `problems`.
    public func scan(ags: [UInt32]) throws {
        if stashing == .sortedBulkLoad {
            precondition(!hasScanned, "a sorted-bulk-load scanner scans once")
            hasScanned = true
        }
        let expected = ags.reduce(0) { total, agno in
            guard let agi = try? image.agi(agno) else { return total }
            return total + Int(agi.count) - Int(min(agi.freeCount, agi.count))
        }
        progressLock.withLock {
            progressState.agCount = ags.count
            progressState.inodesExpected = expected
        }
        let (lanes, inodeCount) = try planLanes(ags)
        progressLock.withLock { progressState.agsDone = ags.count { inodesLeftPerAG[Int($0)] == 0 } }
        let workers = max(1, min(threads, inodeCount))
        let outcomes = ParallelJobs.results(workers, threads: threads) { _ in
            let worker = WorkerStash(agCount: self.trees.count)
            defer { self.handOverAll(worker) }
            var claim: InodeLanes.Claim? = nil
            while let next = lanes.next(finishing: claim) {
                if !next.readAhead.isEmpty { self.image.readAheadInodes(next.readAhead.map(\.ino)) }
                try self.image.forEachInode(next.inodes.map(\.ino)) { ino, loaded in
                    try self.scanInode(ino, loaded, agno: self.agOf(ino)) { record, ag in try self.stash(record, ag: ag, worker) }
                }
                self.publishCounts(worker)
                self.inodesScanned.add(next.inodes.count, ordering: .relaxed)
                self.progressLock.withLock {
                    for inode in next.inodes {
                        let agno = Int(self.agOf(inode.ino))
                        self.inodesLeftPerAG[agno] -= 1
                        if self.inodesLeftPerAG[agno] == 0 { self.progressState.agsDone += 1 }
                    }
                }
                claim = next
            }
        }
        for outcome in outcomes { try outcome.get() }
        if stashing == .sortedBulkLoad { try loadGathered() }
    }

    /// Sorts, merges and bulk-loads every AG's gathered observations into its tree, AGs
    /// in parallel; each AG's observations are let go once its tree holds them.
    private func loadGathered() throws {
        let all = Array(0..<image.geometry.agCount)
        let outcomes = ParallelAGs.results(all, threads: threads) { agno in
            let tree = self.trees[Int(agno)]
            let (store, failure) = self.locks[Int(agno)].withLock {
                (self.gathered[Int(agno)].take(), self.gathered[Int(agno)].failure)
            }
            if let failure { throw failure }
            // The workers' chunk buffers, freed as the workers ended, are kept by the
            // allocator: give their pages back before the tree takes its own.
            cxfs_release_free_heap()
            store.sortAndMerge(allowsSharing: tree.allowsSharing) { collision in
                self.problem(agno, "\(collision)")
            }
            let transaction = Transaction()
            do {
                try store.drain { records in
                    try tree.tree.bulkLoad(records, count: records.count, in: transaction)
                }
            } catch {
                tree.tree.cancel(transaction)
                throw error
            }
            try tree.tree.commit(transaction)
            cxfs_release_free_heap()
        }
        for outcome in outcomes { try outcome.get() }
    }

    /// Reads AGs `ags`' metadata into the trees and plans their allocated inodes: each
    /// read once for its home AG and weight (`plan`), in chunks over all cores (one AG may
    /// hold every inode); with `.sortedBulkLoad` and more than `planningInodeLimit`
    /// inodes, each in its own AG's lane, unread. Returns the lanes and the number of
    /// inodes, and sets `inodesLeftPerAG`.
    /// The inode lists live only as long as this call, apart from the lanes (16 bytes an
    /// inode).
    private func planLanes(_ ags: [UInt32]) throws -> (InodeLanes, Int) {
        let results = ParallelAGs.results(ags, threads: threads) { agno in try self.scanAGMetadata(agno) }
        var collected: [UInt64] = []
        var perAG = Array(repeating: 0, count: Int(image.geometry.agCount))
        for (agno, result) in zip(ags, results) {
            let inodes = try result.get()
            perAG[Int(agno)] += inodes.count
            collected += inodes
        }
        let allocated = collected
        let lanes: InodeLanes
        if stashing == .sortedBulkLoad && allocated.count > Self.planningInodeLimit {
            lanes = InodeLanes([allocated.map { InodeToScan(ino: $0, homeAG: agOf($0), weight: 1) }],
                               agCount: image.geometry.agCount, workers: threads)
        } else {
            let chunk = 256
            let planned = ParallelJobs.results((allocated.count + chunk - 1) / chunk, threads: threads) { index in
                allocated[index * chunk..<min((index + 1) * chunk, allocated.count)].map { self.plan($0) }
            }
            lanes = InodeLanes(try planned.map { try $0.get() }, agCount: image.geometry.agCount, workers: threads)
        }
        progressLock.withLock { inodesLeftPerAG = perAG }
        return (lanes, allocated.count)
    }

    /// The AG of inode `ino`: the AG whose inobt listed it (`scanAGMetadata` keeps only
    /// the inodes whose number says so).
    private func agOf(_ ino: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: image.geometry.agNumber(ofInode: ino))
    }

    // MARK: One AG

    private func problem(_ agno: UInt32, _ detail: String, kind: ScanProblem.Kind = .observation) {
        problemsLock.withLock { collectedProblems.append(ScanProblem(agno: agno, kind: kind, detail: detail)) }
    }

    /// Records that inode `ino` (or one fork of it, in AG `agno`) could not be read because
    /// of `error`.
    private func unreadable(_ agno: UInt32, _ ino: UInt64, fork: InodeFork.Which?, _ error: any Error) {
        // "inode 133 bmbt block 9: bad CRC" says "bmbt block 9: bad CRC" about inode 133.
        var reason = "\(error)"
        if reason.hasPrefix("inode \(ino): ") { reason.removeFirst("inode \(ino): ".count) }
        if reason.hasPrefix("inode \(ino) ") { reason.removeFirst("inode \(ino) ".count) }
        let cause = UnreadableInodes(agno: agno, scope: .inode(ino, fork: fork), reason: reason)
        problemsLock.withLock {
            collectedProblems.append(ScanProblem(agno: agno, kind: .observation, detail: cause.sentence, unreadable: cause))
        }
    }

    /// One AG's gathered observations, behind the AG's lock.
    private final class GatheredBox {
        @exclusivity(unchecked) var store = ObservationStore()
        /// Why the store could not take a chunk (the system had no memory to give).
        @exclusivity(unchecked) var failure: (any Error)?

        /// The store, leaving an empty one in its place.
        func take() -> ObservationStore {
            defer { store = ObservationStore() }
            return store
        }
    }

    /// One worker's way into the trees: its transaction (for `.perObservation`) and, for
    /// `.sortedBulkLoad`, the observations it found per AG, handed over a chunk at a time
    /// (the AG's lock taken once a chunk, not once an observation), with its counts.
    /// Used by one thread.
    private final class WorkerStash {
        /// Observations per chunk: 96 KiB.
        static let chunkSize = 4096
        let transaction = Transaction()
        @exclusivity(unchecked) var chunks: [[PackedObservation]]
        @exclusivity(unchecked) var observations = 0
        @exclusivity(unchecked) var blocks = 0

        init(agCount: Int) { chunks = Array(repeating: [], count: agCount) }
    }

    /// Adds `worker`'s counts to the scan's, for progress reports.
    private func publishCounts(_ worker: WorkerStash) {
        observationCount.add(worker.observations, ordering: .relaxed)
        blockCount.add(worker.blocks, ordering: .relaxed)
        worker.observations = 0
        worker.blocks = 0
    }

    /// Copies `worker`'s chunk for AG `agno` into the AG's gathered observations and
    /// empties it for reuse. A store that cannot grow keeps the error for `loadGathered`.
    private func handOver(_ worker: WorkerStash, _ agno: Int) {
        locks[agno].withLock {
            let box = gathered[agno]
            guard box.failure == nil else { return }
            do {
                try worker.chunks[agno].withUnsafeBufferPointer { try box.store.append($0) }
            } catch {
                box.failure = error
            }
        }
        worker.chunks[agno].removeAll(keepingCapacity: true)
    }

    /// Hands over every chunk `worker` still holds, and its counts.
    private func handOverAll(_ worker: WorkerStash) {
        for agno in worker.chunks.indices where !worker.chunks[agno].isEmpty { handOver(worker, agno) }
        publishCounts(worker)
    }

    /// Stashes one observation for the tree of `agno`: gathers it, or maps it in its own
    /// committed transaction (``Stashing``).
    private func stash(_ record: RmapRecord, ag agno: UInt32, _ worker: WorkerStash) throws {
        guard Int(agno) < trees.count else {
            problem(agno, "mapping \(RmapText.describe(record)) names AG \(agno), which does not exist")
            return
        }
        let tree = trees[Int(agno)], lock = locks[Int(agno)]
        let end = UInt64(record.startBlock) + UInt64(record.blockCount)
        guard end <= UInt64(image.geometry.agLength(agno)) else {
            problem(agno, "mapping \(RmapText.describe(record)) runs past the end of the AG")
            return
        }
        worker.observations += 1
        worker.blocks += Int(record.blockCount)
        if stashing == .sortedBulkLoad {
            let a = Int(agno)
            if worker.chunks[a].isEmpty { worker.chunks[a].reserveCapacity(WorkerStash.chunkSize) }
            worker.chunks[a].append(PackedObservation(record))
            if worker.chunks[a].count == WorkerStash.chunkSize { handOver(worker, a) }
            return
        }
        let transaction = worker.transaction
        try lock.withLock {
            do {
                try tree.map(record, in: transaction)
                try tree.tree.commit(transaction)
            } catch let collision as RmapMapError {
                // Refused before anything changed: the transaction holds only reads.
                try tree.tree.commit(transaction)
                problem(agno, "\(collision)")
            } catch {
                tree.tree.cancel(transaction)
                throw error
            }
        }
    }

    /// Stashes AG `agno`'s metadata observations; returns its allocated inodes.
    private func scanAGMetadata(_ agno: UInt32) throws -> [UInt64] {
        let g = image.geometry
        let worker = WorkerStash(agCount: trees.count)
        defer { handOverAll(worker) }
        func stash(_ record: RmapRecord, _ ag: UInt32 = agno) throws { try self.stash(record, ag: ag, worker) }
        func special(_ start: UInt32, _ length: UInt32, _ owner: UInt64) throws {
            guard length > 0 else { return }
            try stash(RmapRecord(startBlock: start, blockCount: length, owner: owner))
        }
        /// Runs a read of one structure; a failure becomes a problem and the scan goes on.
        /// `losesInodes`: without this structure the AG's inodes are unknown (the AGI, the
        /// inobt's records), so the problem names them as unreadable (`scope`).
        func reading<T>(_ what: String, kind: ScanProblem.Kind = .observation, losesInodes scope: UnreadableInodes.Scope? = nil,
                        _ body: () throws -> T) -> T? {
            do {
                return try body()
            } catch {
                // "AGF: bad CRC" rather than "AGF: AG 1 AGF: bad CRC": the finding names the AG.
                var text = "\(error)"
                if text.hasPrefix("AG \(agno) ") { text.removeFirst("AG \(agno) ".count) }
                let detail = text.hasPrefix(what) ? text : "\(what): \(text)"
                let cause = scope.map { UnreadableInodes(agno: agno, scope: $0, reason: detail) }
                problemsLock.withLock {
                    collectedProblems.append(ScanProblem(agno: agno, kind: kind, detail: cause?.sentence ?? detail, unreadable: cause))
                }
                return nil
            }
        }

        /// The blocks of one AG btree, reached through child pointers; each fault met on the
        /// way becomes a problem, and every block a parent points at is still returned.
        func treeBlocks(_ what: String, kind: ScanProblem.Kind = .observation, _ walk: AGBTreeBlocks) -> [UInt32] {
            for fault in walk.faults {
                var text = "\(fault)"
                if text.hasPrefix("AG \(agno) ") { text.removeFirst("AG \(agno) ".count) }
                problem(agno, "\(what): \(text)", kind: kind)
            }
            return walk.blocks
        }

        try special(0, g.ownFSLength, RmapOwner.fs)
        if let log = g.internalLog, log.agno == agno { try special(log.agbno, log.length, RmapOwner.log) }

        // Each header is read on its own: the inode btrees need only the AGI and the
        // free-space, rmap and refcount btrees only the AGF, so one damaged header costs
        // only what truly depends on it (the AG's inodes are still scanned when its AGF is
        // damaged, and their mappings in other AGs still observed).
        // The rmapbt's own fields are judged apart: the check reports them, and a rebuild
        // replaces them.
        let agf = reading("AGF", kind: .header) { try image.agf(agno, checkingRmap: false) }
        let rmapFieldProblem = agf.flatMap { $0.rmapFieldProblem(geometry: g) }
        if let rmapFieldProblem { problem(agno, "AGF \(rmapFieldProblem)", kind: .rmapbt) }
        let rmapFieldsValid = agf != nil && rmapFieldProblem == nil
        let agi = reading("AGI", kind: .header, losesInodes: .allInodesOfAG(inodeBTrees: true)) { try image.agi(agno) }

        var inodeRecords: [InodeBTreeRecord] = []
        if let agi {
            inodeRecords = reading("inobt", losesInodes: .allInodesOfAG(inodeBTrees: false), { try image.inodeBTreeRecords(AGBTreeRoot(.inobt, agno: agno, agi: agi)) }) ?? []
            for record in inodeRecords {
                if let chunk = g.inodeChunkExtent(record) { try special(chunk.agbno, chunk.length, RmapOwner.inodes) }
            }
            for block in treeBlocks("inobt blocks", image.inodeBTreeReachableBlocks(AGBTreeRoot(.inobt, agno: agno, agi: agi))) {
                try special(block, 1, RmapOwner.inobt)
            }
            if g.hasFinobt {
                for block in treeBlocks("finobt blocks", image.inodeBTreeReachableBlocks(AGBTreeRoot(.finobt, agno: agno, agi: agi))) {
                    try special(block, 1, RmapOwner.inobt)
                }
            }
        }
        if let agf {
            func root(_ kind: AGBTreeKind) -> AGBTreeRoot { AGBTreeRoot(kind, agno: agno, agf: agf) }
            for block in treeBlocks("bnobt blocks", image.reachableBlocks(FreeSpaceByBlockFormat.self, root(.bnobt))) {
                try special(block, 1, RmapOwner.ag)
            }
            for block in treeBlocks("cntbt blocks", image.reachableBlocks(FreeSpaceByCountFormat.self, root(.cntbt))) {
                try special(block, 1, RmapOwner.ag)
            }
            if rmapFieldsValid {
                for block in treeBlocks("rmapbt blocks", kind: .rmapbt, image.reachableBlocks(RmapFormat.self, root(.rmapbt))) {
                    try special(block, 1, RmapOwner.ag)
                }
            }
            // A damaged free list is one problem about the free list; the blocks it still
            // names are observed as the kernel last left them.
            let freeList = image.freeList(agno, agf: agf)
            for detail in freeList.problems { problem(agno, "AGFL: \(detail)", kind: .header) }
            for block in freeList.blocks { try special(block, 1, RmapOwner.ag) }
            if g.hasReflink {
                for block in treeBlocks("refcountbt blocks", image.reachableBlocks(RefcountFormat.self, root(.refcountbt))) {
                    try special(block, 1, RmapOwner.refc)
                }
                for record in reading("refcountbt", { try image.records(RefcountFormat.self, root(.refcountbt)) }) ?? []
                where record.domain == .cow {
                    try special(record.startBlock, record.blockCount, RmapOwner.cow)
                }
            }
        }

        // A corrupt chunk may name inodes that are not in this AG (or anywhere): they are
        // reported here, once per chunk, and not scanned.
        var inodes: [UInt64] = []
        for record in inodeRecords {
            let allocated = g.allocatedInodes(record, agno: agno)
            let inside = allocated.filter { g.split(inode: $0)?.agno == agno }
            if inside.count < allocated.count {
                problem(agno, "inobt chunk at startino \(record.startIno) lists \(allocated.count - inside.count) inodes outside AG \(agno)")
            }
            inodes += inside
        }
        return inodes
    }

    /// Where inode `ino`'s blocks probably are (the AG of its first data mapping: XFS keeps
    /// a file's blocks together) and how many observations it makes, from its core and one
    /// walk down its bmbt's left edge at most. An unreadable inode is planned at home, for
    /// its scan to report.
    private func plan(_ ino: UInt64) -> InodeToScan {
        let agno = agOf(ino)
        guard let inode = try? image.inode(ino) else { return InodeToScan(ino: ino, homeAG: agno, weight: 1) }
        let extents = inode.core.dataExtentCount &+ UInt64(inode.core.attrExtentCount) &+ 1
        let weight = UInt32(clamping: extents)
        var home = agno
        if !inode.core.isRealtime, let first = try? image.firstMapping(of: inode, fork: .data),
           let ag = image.geometry.split(fsBlock: first.startBlock)?.agno {
            home = ag
        }
        return InodeToScan(ino: ino, homeAG: home, weight: weight)
    }

    /// Stashes every block inode `ino` (as `loaded` from the image) maps, each under the AG
    /// its blocks are in.
    private func scanInode(_ ino: UInt64, _ loaded: Result<Inode, any Error>, agno: UInt32,
                           stash: (RmapRecord, UInt32) throws -> Void) throws {
        let g = image.geometry
        let inode: Inode
        switch loaded {
        case .success(let read):
            inode = read
        case .failure(let error):
            unreadable(agno, ino, fork: nil, error)
            return
        }
        for fork in [InodeFork.Which.data, .attr] {
            if fork == .attr && inode.attrFork == nil { continue }
            let mappings: ForkMappings
            do {
                mappings = try image.mappings(of: inode, fork: fork)
            } catch {
                unreadable(agno, ino, fork: fork, error)
                continue
            }
            let isAttr = fork == .attr
            if !(fork == .data && inode.core.isRealtime) {
                for extent in mappings.extents {
                    guard let (extentAG, agbno) = g.split(fsBlock: extent.startBlock) else {
                        problem(agno, "inode \(ino) \(fork) fork: extent at fsblock \(extent.startBlock) is outside the filesystem")
                        continue
                    }
                    try stash(RmapRecord(startBlock: agbno, blockCount: extent.blockCount, owner: ino,
                                         offset: extent.startOffset, isAttrFork: isAttr,
                                         isUnwritten: extent.isUnwritten), extentAG)
                }
            }
            for block in mappings.bmbtBlocks {
                guard let (blockAG, agbno) = g.split(fsBlock: block) else { continue }
                try stash(RmapRecord(startBlock: agbno, blockCount: 1, owner: ino, isAttrFork: isAttr, isBmbtBlock: true), blockAG)
            }
        }
    }
}
