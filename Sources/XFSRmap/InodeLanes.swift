/// An allocated inode waiting to be scanned, with where its blocks probably are. 16 bytes:
/// a scan holds one per allocated inode of the filesystem.
struct InodeToScan: Sendable {
    /// The inode number.
    let ino: UInt64
    /// The AG of its first mapped block: XFS keeps a file's blocks together, so this is the
    /// tree most of its observations go to. The inode's own AG when it maps nothing.
    let homeAG: UInt32
    /// Roughly how many observations it makes: its extents, plus one (saturating).
    let weight: UInt32
}

/// Hands out the inodes to scan, in small batches, one lane per home AG (the AG where an
/// inode's blocks probably are), so that concurrent workers stash into different trees
/// whenever they can.
///
/// Stashing dominates a scan, and each AG's tree takes one observation at a time. Taking
/// inodes in inode order would put every worker in the tree of the first files' blocks,
/// contending for its lock, even when the files' data is spread over many AGs (and all
/// inodes of a filesystem are often in AG 0). A lane no worker is in goes first (the one
/// with the most work left); when every lane with work left has a worker, workers share
/// the least busy one, so no core idles while inodes remain (the home AG is a guess).
final class InodeLanes: @unchecked Sendable {
    /// The inodes of one home AG and how far their scan has got.
    struct Lane {
        var inodes: [InodeToScan] = []
        /// The first inode not yet handed out.
        var next = 0
        /// The weight of the inodes not yet handed out.
        var remainingWeight = 0
        /// Workers scanning a batch of this lane now.
        var workers = 0
        /// The first inode whose blocks nobody has asked the device for yet.
        var readAheadNext = 0
    }

    /// A batch handed to one worker.
    struct Claim {
        fileprivate let lane: Int
        /// The inodes to scan.
        let inodes: ArraySlice<InodeToScan>
        /// Inodes of this lane, from this batch on, whose blocks the worker should ask the
        /// device to read ahead now (`XFSImage.readAheadInodes`): each lane keeps
        /// ``readAheadInodes`` inodes requested beyond the batches handed out.
        let readAhead: ArraySlice<InodeToScan>
    }

    /// A batch ends after this many inodes, or once it weighs `batchWeight`: small, so the
    /// last batches spread over every worker, but a whole inode chunk of small files, so
    /// that two workers seldom read the same inode cluster buffer (and wait for its lock).
    static let batchInodes = 64
    static let batchWeight = 1024
    /// How far ahead of its batches a lane's inode blocks are requested: 2,048 inodes,
    /// 1 MiB of 512-byte inodes, enough to keep the device busy between batches.
    static let readAheadInodes = 2048

    private let lock = Mutex()
    private var lanes: [Lane]
    /// Inodes not yet handed out, in all lanes.
    private var remainingInodes = 0
    /// How many workers take batches.
    private let workers: Int

    /// Lanes over `inodes` (in inode order, in any number of pieces), for a filesystem of
    /// `agCount` AGs, scanned by `workers` workers.
    init(_ inodes: [[InodeToScan]], agCount: UInt32, workers: Int) {
        lanes = Array(repeating: Lane(), count: Int(agCount))
        self.workers = max(1, workers)
        for piece in inodes {
            for inode in piece {
                lanes[Int(inode.homeAG)].inodes.append(inode)
                lanes[Int(inode.homeAG)].remainingWeight += Int(inode.weight)
            }
            remainingInodes += piece.count
        }
    }

    /// Gives back `finished` (the caller's previous batch, now scanned) and hands out the
    /// next batch, or nil when every inode has been handed out.
    func next(finishing finished: Claim?) -> Claim? {
        lock.withLock {
            if let finished { lanes[finished.lane].workers -= 1 }
            var best = -1
            for i in lanes.indices where lanes[i].next < lanes[i].inodes.count {
                if best < 0 || (lanes[i].workers, -lanes[i].remainingWeight) < (lanes[best].workers, -lanes[best].remainingWeight) {
                    best = i
                }
            }
            guard best >= 0 else { return nil }
            let start = lanes[best].next
            var end = start, weight = 0
            // Batches shrink as the inodes run out (to a quarter of each worker's share of
            // what is left), so that the last ones spread over every worker: without a plan
            // (weights all 1) one batch of 64 could hold several of the largest files.
            let limit = min(Self.batchInodes, max(4, remainingInodes / (4 * workers)))
            while end < lanes[best].inodes.count && end - start < limit && weight < Self.batchWeight {
                weight += Int(lanes[best].inodes[end].weight)
                end += 1
            }
            lanes[best].next = end
            remainingInodes -= end - start
            lanes[best].remainingWeight -= weight
            lanes[best].workers += 1
            let windowEnd = min(lanes[best].inodes.count, end + Self.readAheadInodes)
            let readFrom = max(lanes[best].readAheadNext, start)
            lanes[best].readAheadNext = max(lanes[best].readAheadNext, windowEnd)
            return Claim(lane: best, inodes: lanes[best].inodes[start..<end],
                         readAhead: lanes[best].inodes[readFrom..<max(readFrom, windowEnd)])
        }
    }
}
