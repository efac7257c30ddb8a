/// Inode chunks as the inobt describes them, and the OWN_INODES blocks they occupy.
extension Geometry {
    /// The inode-chunk blocks one inobt record owns, as (agbno, length), or nil when the
    /// chunk's first present inode does not start a block (several chunks share one block,
    /// inopblock > 64; the block was already counted for an earlier chunk).
    ///
    /// Without sparse inodes the chunk spans 64 / inopblock blocks from startino's block.
    /// With sparse inodes the extent starts at the first non-hole slot and covers
    /// (64 − 4 × holes) / inopblock blocks (at least 1); in practice sparse allocations are
    /// one contiguous half, so this is one extent.
    public func inodeChunkExtent(_ record: InodeBTreeRecord) -> (agbno: UInt32, length: UInt32)? {
        var first: UInt32 = 0
        var present: UInt32 = Geometry.inodesPerChunk
        if hasSparseInodes {
            let holes = record.holeSlots
            guard holes != UInt64.max else { return nil }
            first = UInt32((~holes).trailingZeroBitCount)
            present = Geometry.inodesPerChunk - 4 * UInt32(record.holeMask.nonzeroBitCount)
        }
        let agino = record.startIno &+ first
        guard agino & (inodesPerBlock - 1) == 0 else { return nil }
        return (agBlock(ofAGInode: agino), max(1, present / inodesPerBlock))
    }

    /// Absolute inode numbers of the allocated inodes of an inobt record in AG `agno`.
    public func allocatedInodes(_ record: InodeBTreeRecord, agno: UInt32) -> [UInt64] {
        record.allocatedAGInodes.map { inodeNumber(agno: agno, agino: $0) }
    }
}
