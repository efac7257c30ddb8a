// The rmap operations a live filesystem performs, on the in-memory rmap btree.
//
// Design note. The kernel changes an AG's rmapbt through six operations (`xfs_rmap_map`,
// `xfs_rmap_map_shared`, `xfs_rmap_unmap`, `xfs_rmap_unmap_shared`, `xfs_rmap_convert`,
// `xfs_rmap_convert_shared`); `RmapBTree` already has the two maps (its merge rules).
// This file adds the four others so that a stream of the kernel's updates, replayed on a
// snapshot, gives the tree the kernel holds afterwards, record for record:
//
// - unmap removes a range from the one record of the owner that covers it: the whole
//   record, its head, its tail, or its middle (the record splits in two). Never merges.
// - convert flips the unwritten state of a range inside one record (PREV) and joins the
//   result with the owner's records just before (LEFT) and just after (RIGHT) when they are
//   contiguous physically and logically and already in the new state, the kernel's
//   LEFT_FILLING / RIGHT_FILLING / LEFT_CONTIG / RIGHT_CONTIG state machine.
//
// The plain and shared forms give the same records when they succeed; they differ in how
// they find the record and its neighbours. The plain form trusts the btree's order (on a
// filesystem without reflink, records never overlap, so the record at or before the key is
// the one covering it and the btree neighbours are the physical ones); the shared form
// searches among the records of every owner that cover the block, as
// `xfs_rmap_lookup_le_range` and `xfs_rmap_find_left_neighbor` do. An update that the
// tree cannot take (no record covers the range, the flags or offsets disagree) throws
// `RmapUpdateError` and changes nothing: for a replay that means the snapshot and the
// stream disagree, which the caller reports.

import XFSBTree
import XFSFormat
import XFSTransaction

/// Why an rmap update could not be applied to an in-memory rmap btree.
public enum RmapUpdateError: Error, Equatable, CustomStringConvertible {
    /// No record of the update's owner (and fork, and state) covers its whole range.
    case notMapped(RmapRecord)
    /// A record covers the range but disagrees with the update: another file offset, or
    /// another unwritten state (`found` is the record, `reason` says which).
    case mismatch(update: RmapRecord, found: RmapRecord, reason: String)
    /// The update has no blocks, or a range past the 32-bit AG block space.
    case malformed(RmapRecord, reason: String)

    /// A sentence naming the update and what is wrong.
    public var description: String {
        switch self {
        case let .notMapped(record):
            "no record covers \(RmapText.describe(record))"
        case let .mismatch(update, found, reason):
            "\(RmapText.describe(update)) does not match \(RmapText.describe(found)): \(reason)"
        case let .malformed(record, reason):
            "\(RmapText.describe(record)): \(reason)"
        }
    }
}

/// One change to an AG's rmapbt, as the kernel makes it (`xfs_rmap_finish_one`'s
/// operations, or the direct `xfs_rmap_alloc` / `xfs_rmap_free` of AG metadata).
public struct RmapUpdate: Sendable, Hashable, CustomStringConvertible {
    /// The operation.
    public enum Operation: String, Sendable, Hashable, CaseIterable {
        /// Add a mapping (`xfs_rmap_map`).
        case map
        /// Add a mapping of a reflink inode's data fork (`xfs_rmap_map_shared`).
        case mapShared = "map_shared"
        /// Remove a mapping (`xfs_rmap_unmap`).
        case unmap
        /// Remove a mapping of a reflink inode's data fork (`xfs_rmap_unmap_shared`).
        case unmapShared = "unmap_shared"
        /// Flip a range between unwritten and written (`xfs_rmap_convert`).
        case convert
        /// Flip a range of a reflink inode's data fork (`xfs_rmap_convert_shared`).
        case convertShared = "convert_shared"

        /// Whether the operation searches among other owners' overlapping records.
        public var isShared: Bool { self == .mapShared || self == .unmapShared || self == .convertShared }
    }

    /// The operation.
    public var operation: Operation
    /// The AG whose rmapbt changes.
    public var agno: UInt32
    /// The range, its owner, file offset and flags. For `convert` its unwritten flag is the
    /// range's state *before* the change (the kernel's tracepoints carry it that way).
    public var record: RmapRecord

    /// An update.
    public init(_ operation: Operation, agno: UInt32, _ record: RmapRecord) {
        self.operation = operation
        self.agno = agno
        self.record = record
    }

    /// `op agno record`, for messages.
    public var description: String { "\(operation.rawValue) AG \(agno) \(RmapText.describe(record))" }
}

extension RmapBTree {
    /// Applies `update` (whose AG the caller has chosen) in `transaction`; throws without
    /// changing the tree when the tree cannot take it.
    public func apply(_ update: RmapUpdate, in transaction: Transaction) throws {
        let record = update.record
        guard record.blockCount > 0 else { throw RmapUpdateError.malformed(record, reason: "no blocks") }
        guard UInt64(record.startBlock) + UInt64(record.blockCount) <= UInt64(UInt32.max) + 1 else {
            throw RmapUpdateError.malformed(record, reason: "range ends past the AG block space")
        }
        try tree.withCursor(in: transaction) { cursor in
            switch update.operation {
            case .map: try Self.mapSimple(record, &cursor)
            case .mapShared: try Self.mapShared(record, &cursor)
            case .unmap: try Self.unmap(record, shared: false, &cursor)
            case .unmapShared: try Self.unmap(record, shared: true, &cursor)
            case .convert: try Self.convert(record, shared: false, &cursor)
            case .convertShared: try Self.convert(record, shared: true, &cursor)
            }
        }
    }

    /// Applies `update` in a transaction of its own: committed when it succeeds, cancelled
    /// (the tree unchanged) when it throws.
    public func apply(_ update: RmapUpdate) throws {
        let transaction = Transaction()
        do {
            try apply(update, in: transaction)
        } catch {
            tree.cancel(transaction)
            throw error
        }
        try tree.commit(transaction)
    }

    // MARK: Finding the record an update acts on

    /// Whether offsets matter for `record`'s owner (`!ignore_off`): file data and attr
    /// mappings; not special owners, not bmbt blocks.
    static func usesOffsets(_ record: RmapRecord) -> Bool { record.isFileMapping }

    /// The file offset `candidate` maps at `block` (which it covers).
    static func offset(of candidate: RmapRecord, at block: UInt32) -> UInt64 {
        candidate.offset + UInt64(block - candidate.startBlock)
    }

    /// Whether `candidate` is the owner's record for `update`'s first block: same owner, fork
    /// and bmbt flag, covering that block, and (for file mappings) mapping it at the update's
    /// offset. State and extent are checked afterwards, with a precise error.
    static func isCandidate(_ candidate: RmapRecord, for update: RmapRecord) -> Bool {
        guard candidate.owner == update.owner, candidate.isAttrFork == update.isAttrFork,
              candidate.isBmbtBlock == update.isBmbtBlock,
              candidate.startBlock <= update.startBlock,
              UInt64(candidate.startBlock) + UInt64(candidate.blockCount) > UInt64(update.startBlock) else { return false }
        return !usesOffsets(update) || offset(of: candidate, at: update.startBlock) == update.offset
    }

    /// The record an unmap or convert of `update` acts on. Plain: the record at or before
    /// the update's key (`xfs_rmap_lookup_le`); shared: the owner's record among all that
    /// cover the first block (`xfs_rmap_lookup_le_range`). Checks that it covers the whole
    /// range and has the update's state.
    static func coveringRecord(_ update: RmapRecord, shared: Bool, _ cursor: inout Cursor) throws -> RmapRecord {
        var found: RmapRecord?
        if shared {
            let low = RmapKey(startBlock: update.startBlock, owner: 0, packedOffset: 0)
            let high = RmapKey(startBlock: update.startBlock, owner: .max, packedOffset: .max)
            try cursor.query(from: low, through: high) { candidate in
                if isCandidate(candidate, for: update) {
                    found = candidate
                    return .stop
                }
                return .proceed
            }
        } else if try cursor.lookup(RmapFormat.lowKey(of: update), .lessOrEqual), let candidate = cursor.record,
                  isCandidate(candidate, for: update) {
            found = candidate
        }
        guard let record = found else { throw RmapUpdateError.notMapped(update) }
        let updateEnd = UInt64(update.startBlock) + UInt64(update.blockCount)
        guard UInt64(record.startBlock) + UInt64(record.blockCount) >= updateEnd else {
            throw RmapUpdateError.mismatch(update: update, found: record, reason: "the record ends inside the range")
        }
        guard record.isUnwritten == update.isUnwritten else {
            throw RmapUpdateError.mismatch(update: update, found: record, reason: "unwritten states differ")
        }
        return record
    }

    // MARK: Unmap

    /// `xfs_rmap_unmap` / `xfs_rmap_unmap_shared`: removes `update`'s range from the record
    /// covering it: the whole record, its head, its tail, or its middle (a split).
    static func unmap(_ update: RmapRecord, shared: Bool, _ cursor: inout Cursor) throws {
        let found = try coveringRecord(update, shared: shared, &cursor)
        let foundEnd = found.startBlock &+ found.blockCount
        let updateEnd = update.startBlock &+ update.blockCount
        let offsets = usesOffsets(update)
        if found.startBlock == update.startBlock && found.blockCount == update.blockCount {
            try remove(found, &cursor)
        } else if found.startBlock == update.startBlock {
            var rest = found
            rest.startBlock = updateEnd
            rest.blockCount -= update.blockCount
            if offsets { rest.offset += UInt64(update.blockCount) }
            try replace(found, with: rest, &cursor)
        } else if foundEnd == updateEnd {
            var head = found
            head.blockCount -= update.blockCount
            try replace(found, with: head, &cursor)
        } else {
            var head = found
            head.blockCount = update.startBlock - found.startBlock
            var tail = found
            tail.startBlock = updateEnd
            tail.blockCount = foundEnd - updateEnd
            if offsets { tail.offset = update.offset + UInt64(update.blockCount) }
            try replace(found, with: head, &cursor)
            try insert(tail, &cursor)
        }
    }

    // MARK: Convert

    /// The neighbour states of a conversion (the kernel's bit names).
    struct ConvertState: OptionSet {
        let rawValue: Int
        /// The range starts where PREV starts.
        static let leftFilling = ConvertState(rawValue: 1 << 0)
        /// The range ends where PREV ends.
        static let rightFilling = ConvertState(rawValue: 1 << 1)
        /// LEFT ends where the range starts and can absorb it.
        static let leftContig = ConvertState(rawValue: 1 << 2)
        /// RIGHT starts where the range ends and can absorb it.
        static let rightContig = ConvertState(rawValue: 1 << 3)
    }

    /// Whether `neighbour` (in the new state `converted`'s) joins `converted` on its left:
    /// same owner, fork and flags, ending where it starts physically and logically, and the
    /// two together within a record's length.
    static func joinsOnLeft(_ neighbour: RmapRecord, _ converted: RmapRecord) -> Bool {
        isMergeable(neighbour, with: converted) && abuts(neighbour, converted)
    }

    /// `xfs_rmap_convert` / `xfs_rmap_convert_shared`: flips the unwritten state of
    /// `update`'s range inside the record PREV covering it, joining the result with the
    /// owner's contiguous records LEFT and RIGHT when they already have the new state.
    static func convert(_ update: RmapRecord, shared: Bool, _ cursor: inout Cursor) throws {
        let prev = try coveringRecord(update, shared: shared, &cursor)
        var converted = update
        converted.isUnwritten.toggle()
        let updateEnd = update.startBlock &+ update.blockCount
        let prevEnd = prev.startBlock &+ prev.blockCount
        var state: ConvertState = []
        if prev.startBlock == update.startBlock { state.insert(.leftFilling) }
        if prevEnd == updateEnd { state.insert(.rightFilling) }

        let left = try leftNeighbour(of: converted, prev: prev, shared: shared, &cursor)
        let right = try rightNeighbour(of: converted, prev: prev, shared: shared, &cursor)
        if let left, joinsOnLeft(left, converted) { state.insert(.leftContig) }
        if let right, joinsOnLeft(converted, right) { state.insert(.rightContig) }
        let all: ConvertState = [.leftFilling, .rightFilling, .leftContig, .rightContig]
        if state == all, let left, let right,
           UInt64(left.blockCount) + UInt64(update.blockCount) + UInt64(right.blockCount) > UInt64(UInt32.max) {
            state.remove(.rightContig)
        }
        let offsets = usesOffsets(update)
        switch state {
        case all:
            // LEFT absorbs PREV and RIGHT.
            guard let left, let right else { break }
            var merged = left
            merged.blockCount += prev.blockCount + right.blockCount
            try remove(right, &cursor)
            try remove(prev, &cursor)
            try replace(left, with: merged, &cursor)
        case [.leftFilling, .rightFilling, .leftContig]:
            guard let left else { break }
            var merged = left
            merged.blockCount += prev.blockCount
            try remove(prev, &cursor)
            try replace(left, with: merged, &cursor)
        case [.leftFilling, .rightFilling, .rightContig]:
            guard let right else { break }
            var merged = prev
            merged.blockCount += right.blockCount
            merged.isUnwritten = converted.isUnwritten
            try remove(right, &cursor)
            try replace(prev, with: merged, &cursor)
        case [.leftFilling, .rightFilling]:
            var flipped = prev
            flipped.isUnwritten = converted.isUnwritten
            try replace(prev, with: flipped, &cursor)
        case [.leftFilling, .leftContig]:
            guard let left else { break }
            var merged = left
            merged.blockCount += update.blockCount
            try replace(left, with: merged, &cursor)
            try replace(prev, with: tail(of: prev, after: update, offsets: offsets), &cursor)
        case [.leftFilling]:
            try replace(prev, with: tail(of: prev, after: update, offsets: offsets), &cursor)
            try insert(converted, &cursor)
        case [.rightFilling, .rightContig]:
            guard let right else { break }
            var head = prev
            head.blockCount -= update.blockCount
            var merged = right
            merged.startBlock = update.startBlock
            merged.blockCount += update.blockCount
            if offsets { merged.offset = update.offset }
            try replace(prev, with: head, &cursor)
            try replace(right, with: merged, &cursor)
        case [.rightFilling]:
            var head = prev
            head.blockCount -= update.blockCount
            try replace(prev, with: head, &cursor)
            try insert(converted, &cursor)
        case []:
            // The range is inside PREV: PREV keeps its head, the converted range and PREV's
            // tail become records of their own.
            var head = prev
            head.blockCount = update.startBlock - prev.startBlock
            try replace(prev, with: head, &cursor)
            try insert(converted, &cursor)
            try insert(tail(of: prev, after: update, offsets: offsets), &cursor)
        default:
            // A contiguous neighbour on a side the range does not reach: the neighbour would
            // overlap PREV (`xfs_rmap_convert`'s corruption case).
            throw RmapUpdateError.mismatch(update: update, found: prev,
                                           reason: "a neighbour in the new state overlaps the record")
        }
    }

    /// What is left of `prev` after `update`'s range (which ends inside it).
    static func tail(of prev: RmapRecord, after update: RmapRecord, offsets: Bool) -> RmapRecord {
        let updateEnd = update.startBlock &+ update.blockCount
        var rest = prev
        rest.blockCount = prev.startBlock &+ prev.blockCount &- updateEnd
        rest.startBlock = updateEnd
        if offsets { rest.offset = update.offset + UInt64(update.blockCount) }
        return rest
    }

    /// LEFT: plain, the btree predecessor of PREV; shared, the owner's record (in the new
    /// state) among those covering the block before the range, ending there
    /// (`xfs_rmap_find_left_neighbor`). Nil when there is none or it cannot be joined.
    static func leftNeighbour(of converted: RmapRecord, prev: RmapRecord, shared: Bool,
                              _ cursor: inout Cursor) throws -> RmapRecord? {
        guard converted.startBlock > 0 else { return nil }
        if !shared {
            guard try cursor.lookup(RmapFormat.lowKey(of: prev), .equal), try cursor.decrement(),
                  let candidate = cursor.record else { return nil }
            return candidate
        }
        let before = converted.startBlock - 1
        let low = RmapKey(startBlock: before, owner: 0, packedOffset: 0)
        let high = RmapKey(startBlock: before, owner: .max, packedOffset: .max)
        var found: RmapRecord?
        try cursor.query(from: low, through: high) { candidate in
            if joinsOnLeft(candidate, converted) {
                found = candidate
                return .stop
            }
            return .proceed
        }
        return found
    }

    /// RIGHT: plain, the btree successor of PREV; shared, the owner's record in the new state
    /// starting where the range ends at the next offset (`xfs_rmap_lookup_eq`).
    static func rightNeighbour(of converted: RmapRecord, prev: RmapRecord, shared: Bool,
                               _ cursor: inout Cursor) throws -> RmapRecord? {
        let end = UInt64(converted.startBlock) + UInt64(converted.blockCount)
        guard end <= UInt64(UInt32.max) else { return nil }
        if !shared {
            guard try cursor.lookup(RmapFormat.lowKey(of: prev), .equal), try cursor.increment(),
                  let candidate = cursor.record else { return nil }
            return candidate
        }
        var probe = converted
        probe.startBlock = UInt32(end)
        if usesOffsets(converted) { probe.offset = converted.offset + UInt64(converted.blockCount) }
        guard try cursor.lookup(RmapFormat.lowKey(of: probe), .equal), let candidate = cursor.record,
              candidate.isUnwritten == converted.isUnwritten else { return nil }
        return candidate
    }
}
