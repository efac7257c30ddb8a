/// The writes a run makes to an image: an ordered list of phases, each a list of writes.
///
/// Phases run in order, with the image flushed after each; writes within a phase do not
/// overlap, but a region may be written again in a later phase (the superblock sector
/// first with NEEDSREPAIR set, last with it cleared). Offsets and lengths are multiples
/// of 512 bytes.
public struct ImageWritePlan: Equatable, Sendable {
    /// One write: `bytes` at byte `offset` of the image.
    public struct Write: Equatable, Sendable {
        /// The byte offset in the image (a multiple of 512).
        public let offset: Int64
        /// The bytes to write (a nonzero multiple of 512 of them).
        public let bytes: [UInt8]

        /// A write of `bytes` at `offset`.
        ///
        /// - Precondition: `offset >= 0`, both it and `bytes.count` are multiples of 512,
        ///   and `bytes` is not empty.
        public init(offset: Int64, bytes: [UInt8]) {
            let sector = Int64(UndoFormat.sectorSize)
            precondition(offset >= 0 && offset % sector == 0,
                         "write offset \(offset) is not a nonnegative multiple of \(sector)")
            precondition(!bytes.isEmpty && bytes.count % UndoFormat.sectorSize == 0,
                         "write length \(bytes.count) at \(offset) is not a positive multiple of \(sector)")
            precondition(offset <= Int64.max - Int64(bytes.count), "write at \(offset) overflows")
            self.offset = offset
            self.bytes = bytes
        }

        /// The byte just past the write.
        public var end: Int64 { offset + Int64(bytes.count) }
    }

    /// The phases, in the order they run.
    public private(set) var phases: [[Write]] = []

    /// An empty plan.
    public init() {}

    /// A plan of these phases.
    ///
    /// - Precondition: as for `appendPhase(_:)`, for each phase.
    public init(phases: [[Write]]) {
        for phase in phases { appendPhase(phase) }
    }

    /// Adds a phase that runs after every phase already in the plan.
    ///
    /// - Precondition: `writes` is not empty and no two of them overlap.
    public mutating func appendPhase(_ writes: [Write]) {
        precondition(!writes.isEmpty, "phase \(phases.count) has no writes")
        let sorted = writes.sorted { $0.offset < $1.offset }
        for (left, right) in zip(sorted, sorted.dropFirst()) {
            precondition(left.end <= right.offset,
                         "phase \(phases.count): writes at \(left.offset) (\(left.bytes.count) bytes) and \(right.offset) overlap")
        }
        phases.append(writes)
    }

    /// How many writes the plan makes, over all phases.
    public var writeCount: Int { phases.reduce(0) { $0 + $1.count } }

    /// The distinct regions the plan writes: the pieces its writes cut the image into, each
    /// covered by the same writes throughout, sorted by offset.
    var regions: [PlannedRegion] {
        let writes = phases.flatMap { $0 }
        // A sweep over the writes' ends: between two consecutive boundaries the set of
        // covering writes is constant (at most one per phase, since a phase's writes are
        // disjoint).
        var boundaries: [(position: Int64, write: Int, isStart: Bool)] = []
        boundaries.reserveCapacity(writes.count * 2)
        for (index, write) in writes.enumerated() {
            boundaries.append((write.offset, index, true))
            boundaries.append((write.end, index, false))
        }
        boundaries.sort { $0.position < $1.position }
        var active: [Int] = []
        var regions: [PlannedRegion] = []
        var next = 0
        while next < boundaries.count {
            let position = boundaries[next].position
            while next < boundaries.count && boundaries[next].position == position {
                let boundary = boundaries[next]
                if boundary.isStart {
                    active.append(boundary.write)
                } else {
                    active.removeAll { $0 == boundary.write }
                }
                next += 1
            }
            guard !active.isEmpty else { continue }
            // An active write ends later, so a next boundary exists.
            let end = boundaries[next].position
            let sources = active.sorted().map { index in
                PlannedRegion.Source(write: writes[index], byteInWrite: Int(position - writes[index].offset))
            }
            regions.append(PlannedRegion(offset: position, length: Int(end - position), sources: sources))
        }
        return regions
    }
}

/// A region of the image a plan writes, and the writes that cover it in plan order.
struct PlannedRegion {
    /// A write covering the region, and where the region starts within it.
    struct Source {
        /// The covering write.
        let write: ImageWritePlan.Write
        /// The region's first byte, as an index into `write.bytes`.
        let byteInWrite: Int
    }

    /// The region's byte offset in the image.
    let offset: Int64
    /// Its length in bytes (a multiple of 512).
    let length: Int
    /// The writes covering it, in plan order.
    let sources: [Source]

    /// The byte just past the region.
    var end: Int64 { offset + Int64(length) }

    /// The bytes `source` leaves in this region.
    func bytes(of source: Source) -> ArraySlice<UInt8> {
        source.write.bytes[source.byteInWrite ..< source.byteInWrite + length]
    }
}
