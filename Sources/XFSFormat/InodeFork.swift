/// The contents of one inode fork.
public enum InodeFork: Sendable, Equatable {
    /// Which fork.
    public enum Which: String, Sendable { case data, attr }

    /// A device number; owns no blocks.
    case device
    /// Inline data (short-form directory, inline symlink, short-form attrs) of `size` fork bytes; owns no blocks.
    case local(size: Int)
    /// Extent records held in the fork.
    case extents([FileExtent])
    /// The root of a bmbt held in the fork.
    case btree(BmbtRoot)

    /// The blocks directly mapped by an extents-format fork ([] for the other formats).
    public var extents: [FileExtent] {
        if case let .extents(list) = self { return list }
        return []
    }

    /// Decodes a fork of `format` at `start`..<`start+size` of the inode.
    static func decode(_ r: ByteReader, fork: Which, format: ForkFormat, start: Int, size: Int,
                       extentCount: UInt64) throws(XFSFormatError) -> InodeFork {
        func bad(_ s: String) -> XFSFormatError { XFSFormatError(.corrupt, r.location, "\(fork) fork \(s)") }
        switch format {
        case .device:
            return .device
        case .local:
            if extentCount != 0 { throw bad("is local but has extent count \(extentCount)") }
            return .local(size: size)
        case .extents:
            guard extentCount <= UInt64(size / FileExtent.size) else {
                throw bad("extent count \(extentCount) exceeds fork size")
            }
            var list: [FileExtent] = []
            list.reserveCapacity(Int(extentCount))
            for i in 0 ..< Int(extentCount) {
                let at = start + i * FileExtent.size
                let e = FileExtent(l0: try r.u64(at: at), l1: try r.u64(at: at + 8))
                if let p = e.problem { throw bad("extent \(i): \(p)") }
                if let prev = list.last, prev.startOffset + UInt64(prev.blockCount) > e.startOffset {
                    throw bad("extent \(i) at offset \(e.startOffset) overlaps or precedes the previous extent")
                }
                if e.isUnwritten && fork == .attr { throw bad("extent \(i) is unwritten") }
                list.append(e)
            }
            return .extents(list)
        case .btree:
            return .btree(try BmbtRoot.decode(r, start: start, size: size, which: fork))
        }
    }
}

/// The bmbt root kept in an inode fork: a 4-byte header (level u16 ≥ 1, numrecs u16), keys
/// (u64 startoff) at +4, and pointers (u64 fsblock) at +4 + maxrecs × 8, where
/// maxrecs = (forksize − 4) / 16. The pointer array's place depends on the fork size.
public struct BmbtRoot: Sendable, Equatable {
    /// Size of the root header.
    public static let headerSize = 4

    /// `bb_level`: the bmbt root's level (the tree's height minus one).
    public var level: UInt16
    /// `bb_numrecs`: keys in the root.
    public var numRecords: UInt16
    /// Key slots that fit the fork: (forkSize − 4) / 16.
    public var maxRecords: Int
    /// startoff of each child.
    public var keys: [UInt64]
    /// fsblock of each child (at level − 1).
    public var pointers: [UInt64]

    /// maxrecs of a root in a fork of `forkSize` bytes.
    public static func maxRecords(forkSize: Int) -> Int { max(0, (forkSize - headerSize) / 16) }

    static func decode(_ r: ByteReader, start: Int, size: Int, which: InodeFork.Which) throws(XFSFormatError) -> BmbtRoot {
        func bad(_ s: String) -> XFSFormatError { XFSFormatError(.corrupt, r.location, "\(which) fork bmbt root \(s)") }
        let level = try r.u16(at: start)
        let numrecs = try r.u16(at: start + 2)
        let maxrecs = maxRecords(forkSize: size)
        guard level >= 1 else { throw bad("level 0 (a root in the inode must be a node)") }
        guard level < 10 else { throw bad("level \(level) is implausibly deep") }
        guard numrecs >= 1, Int(numrecs) <= maxrecs else { throw bad("numrecs \(numrecs) is outside 1...\(maxrecs)") }
        var keys: [UInt64] = []
        var pointers: [UInt64] = []
        for i in 0 ..< Int(numrecs) {
            keys.append(try r.u64(at: start + headerSize + 8 * i))
            pointers.append(try r.u64(at: start + headerSize + 8 * maxrecs + 8 * i))
        }
        for i in 1 ..< keys.count where keys[i - 1] >= keys[i] {
            throw bad("keys \(i - 1) and \(i) are out of order")
        }
        return BmbtRoot(level: level, numRecords: numrecs, maxRecords: maxrecs, keys: keys, pointers: pointers)
    }
}
