import XFSBTree
import XFSBuffer
import XFSFormat
import XFSInMemoryBTree
import XFSTransaction

/// Why a mapping could not be added.
public enum RmapMapError: Error, Equatable, CustomStringConvertible {
    /// A record with the same key (start, owner, offset and flags) is already in the tree:
    /// the same blocks were observed twice for the same owner.
    case duplicate(existing: RmapRecord, new: RmapRecord)
    /// The mapping has no blocks.
    case empty(RmapRecord)

    /// One line saying what was refused.
    public var description: String {
        switch self {
        case let .duplicate(existing, new):
            "mapping \(RmapText.describe(new)) collides with \(RmapText.describe(existing))"
        case let .empty(record):
            "mapping \(RmapText.describe(record)) has no blocks"
        }
    }
}

/// An in-memory reverse-mapping btree (`xfs_rmapbt_mem_*`), with the rmap layer's `map`
/// operation (`xfs_rmap_map_raw`).
///
/// Thread safety: one thread at a time, as the `InMemoryBTree` it wraps.
public final class RmapBTree {
    /// The in-memory btree holding the records.
    public let tree: InMemoryBTree<RmapFormat>
    /// Whether other owners' records may overlap a file's data (reflink filesystems), which
    /// sends written data-fork mappings through the shared-extent path.
    public let allowsSharing: Bool

    /// An empty tree on `target`; `growthPolicy` as for `InMemoryBTree`.
    public init(target: MemoryTarget, allowsSharing: Bool, owner: UInt64 = 0, uuid: BTreeUUID = .zero,
                recordLimits: BTreeRecordLimits? = nil, growthPolicy: BTreeGrowthPolicy = .batchedShifts) throws {
        tree = try InMemoryBTree(target: target, owner: owner, uuid: uuid, recordLimits: recordLimits,
                                 growthPolicy: growthPolicy)
        self.allowsSharing = allowsSharing
    }

    /// Adds the mapping `record` in `transaction`, merging it with contiguous records of the
    /// same owner and flags as the kernel does (`xfs_rmap_map_raw`): attr-fork, bmbt,
    /// unwritten and special-owner mappings use the simple path (`xfs_rmap_map`), written
    /// file data on a reflink filesystem the shared path (`xfs_rmap_map_shared`).
    public func map(_ record: RmapRecord, in transaction: Transaction) throws {
        guard record.blockCount > 0 else { throw RmapMapError.empty(record) }
        let shared = allowsSharing && record.isFileMapping && !record.isAttrFork && !record.isUnwritten
        try tree.withCursor(in: transaction) { cursor in
            if shared {
                try Self.mapShared(record, &cursor)
            } else {
                try Self.mapSimple(record, &cursor)
            }
        }
    }

    /// Adds `record` in a transaction of its own, committed (the way repair stashes each
    /// observation).
    public func map(_ record: RmapRecord) throws {
        let transaction = Transaction()
        do {
            try map(record, in: transaction)
        } catch {
            tree.cancel(transaction)
            throw error
        }
        try tree.commit(transaction)
    }

    /// Calls `body` with every record in key order, in a transaction of its own.
    public func forEach(_ body: (RmapRecord) throws -> BTreeVisitAction) throws {
        let transaction = Transaction()
        defer { try? tree.commit(transaction) }
        try tree.withCursor(in: transaction) { cursor in
            _ = try cursor.queryAll(body)
        }
    }

    /// Calls `body` with every record whose start block lies in `blocks`, in key order, in a
    /// transaction of its own (a lookup, then a walk to the right).
    public func forEach(startingIn blocks: ClosedRange<UInt32>, _ body: (RmapRecord) throws -> BTreeVisitAction) throws {
        let transaction = Transaction()
        defer { try? tree.commit(transaction) }
        try tree.withCursor(in: transaction) { cursor in
            guard try cursor.lookup(RmapKey(startBlock: blocks.lowerBound, owner: 0, packedOffset: 0), .greaterOrEqual) else {
                return
            }
            try cursor.walkForward { record in
                record.startBlock <= blocks.upperBound ? try body(record) : .stop
            }
        }
    }

    /// Every record, in key order.
    public func records() throws -> [RmapRecord] {
        var result: [RmapRecord] = []
        try forEach { result.append($0); return .proceed }
        return result
    }

    // MARK: The merge rules

    typealias Cursor = BTreeCursor<RmapFormat, InMemoryBlockStore<RmapFormat>>

    /// Whether `existing` may absorb a mapping of `owner` with `record`'s flags
    /// (`xfs_rmap_is_mergeable`).
    static func isMergeable(_ existing: RmapRecord, with record: RmapRecord) -> Bool {
        existing.owner == record.owner && existing.isUnwritten == record.isUnwritten
            && existing.isAttrFork == record.isAttrFork && existing.isBmbtBlock == record.isBmbtBlock
    }

    /// Whether `left` ends where `right` begins, physically and (for file data) logically,
    /// and the two together still fit a record's 32-bit length.
    static func abuts(_ left: RmapRecord, _ right: RmapRecord) -> Bool {
        guard UInt64(left.startBlock) + UInt64(left.blockCount) == UInt64(right.startBlock),
              UInt64(left.blockCount) + UInt64(right.blockCount) <= UInt64(UInt32.max) else { return false }
        return !left.isFileMapping || left.offset + UInt64(left.blockCount) == right.offset
    }

    /// Replaces the record whose key equals `old`'s with `new`: in place when the key stays,
    /// otherwise by delete and insert. A collision is refused before anything changes.
    static func replace(_ old: RmapRecord, with new: RmapRecord, _ cursor: inout Cursor) throws {
        let keyChanges = RmapFormat.lowKey(of: old) != RmapFormat.lowKey(of: new)
        if keyChanges, try cursor.lookup(RmapFormat.lowKey(of: new), .equal), let existing = cursor.record {
            throw RmapMapError.duplicate(existing: existing, new: new)
        }
        guard try cursor.lookup(RmapFormat.lowKey(of: old), .equal) else {
            throw BTreeFault(.record, detail: "rmap record \(RmapText.describe(old)) vanished during a merge")
        }
        if keyChanges {
            try cursor.delete()
            try cursor.insert(new)
        } else {
            try cursor.update(new)
        }
    }

    /// Deletes the record whose key equals `record`'s.
    static func remove(_ record: RmapRecord, _ cursor: inout Cursor) throws {
        guard try cursor.lookup(RmapFormat.lowKey(of: record), .equal) else {
            throw BTreeFault(.record, detail: "rmap record \(RmapText.describe(record)) vanished during a merge")
        }
        try cursor.delete()
    }

    /// Inserts `record`, refusing a second record with the same key (`xfs_rmap_insert`):
    /// a failed equal lookup leaves the cursor on the first greater record (or after the
    /// leaf's last), where the record belongs, so it goes in without a second descent.
    static func insert(_ record: RmapRecord, _ cursor: inout Cursor) throws {
        if try cursor.lookup(RmapFormat.lowKey(of: record), .equal), let existing = cursor.record {
            throw RmapMapError.duplicate(existing: existing, new: record)
        }
        try cursor.insertAtCursor(record)
    }

    /// `xfs_rmap_map`: the left neighbour is the record at or before the new key, the right
    /// neighbour the one after it; on a filesystem without sharing those are the physical
    /// neighbours.
    static func mapSimple(_ record: RmapRecord, _ cursor: inout Cursor) throws {
        let key = RmapFormat.lowKey(of: record)
        var left: RmapRecord?
        var right: RmapRecord?
        if try cursor.lookup(key, .lessOrEqual) {
            left = cursor.record
            if let l = left, RmapFormat.lowKey(of: l) == key {
                throw RmapMapError.duplicate(existing: l, new: record)
            }
            if try cursor.increment() { right = cursor.record }
        } else if try cursor.lookup(key, .greaterOrEqual) {
            right = cursor.record
        }
        if let l = left, !isMergeable(l, with: record) { left = nil }
        if let r = right, !isMergeable(r, with: record) { right = nil }
        try merge(record, left: left, right: right, checked: true, &cursor)
    }

    /// `xfs_rmap_map_shared`: other owners' records may overlap, so the left neighbour is
    /// found among the records covering the block just before, and the right neighbour is
    /// the record that starts exactly where the mapping ends, at the next offset.
    static func mapShared(_ record: RmapRecord, _ cursor: inout Cursor) throws {
        var left: RmapRecord?
        if record.startBlock > 0 && record.offset > 0 {
            // The kernel's fast path first: the record at or before the block just before,
            // for this owner and offset, is the neighbour unless another owner's record
            // starts in between.
            var probe = record
            probe.startBlock -= 1
            probe.offset -= 1
            if try cursor.lookup(RmapFormat.lowKey(of: probe), .lessOrEqual), let candidate = cursor.record,
               isMergeable(candidate, with: record), abuts(candidate, record) {
                left = candidate
            }
        }
        if left == nil && record.startBlock > 0 && record.offset > 0 {
            let before = record.startBlock - 1
            let low = RmapKey(startBlock: before, owner: 0, packedOffset: 0)
            let high = RmapKey(startBlock: before, owner: .max, packedOffset: .max)
            try cursor.query(from: low, through: high) { candidate in
                if isMergeable(candidate, with: record) && abuts(candidate, record) {
                    left = candidate
                    return .stop
                }
                return .proceed
            }
        }
        var right: RmapRecord?
        let end = UInt64(record.startBlock) + UInt64(record.blockCount)
        if end <= UInt64(UInt32.max) {
            var probe = record
            probe.startBlock = UInt32(end)
            probe.offset = record.offset + UInt64(record.blockCount)
            if try cursor.lookup(RmapFormat.lowKey(of: probe), .equal), let candidate = cursor.record,
               isMergeable(candidate, with: record) {
                right = candidate
            }
        }
        try merge(record, left: left, right: right, checked: false, &cursor)
    }

    /// Joins `record` to its mergeable neighbours, or inserts it alone. `checked` says the
    /// caller (the simple path) already knows no record has `record`'s key and left the
    /// cursor where the record belongs.
    static func merge(_ record: RmapRecord, left: RmapRecord?, right: RmapRecord?, checked: Bool,
                      _ cursor: inout Cursor) throws {
        if let l = left, abuts(l, record) {
            var merged = l
            merged.blockCount += record.blockCount
            if let r = right, abuts(merged, r) {
                merged.blockCount += r.blockCount
                try remove(r, &cursor)
            }
            try replace(l, with: merged, &cursor)
        } else if let r = right, abuts(record, r) {
            var merged = r
            merged.startBlock = record.startBlock
            merged.blockCount += record.blockCount
            if record.isFileMapping { merged.offset = record.offset }
            try replace(r, with: merged, &cursor)
        } else if checked {
            // The simple path's lookups left the cursor where the record belongs.
            try cursor.insertAtCursor(record)
        } else {
            try insert(record, &cursor)
        }
    }
}
