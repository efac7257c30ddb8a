import XFSBTree
import XFSBuffer
import XFSInMemoryBTree
import XFSMemoryFile

/// Whether a ``RecordIndex`` lets several records share a key.
public enum DuplicateKeys: Sendable, Hashable {
    /// An insert whose key is already present throws ``RecordIndexError/duplicateKey(_:)``.
    case refused
    /// Records with equal keys are kept in insertion order (each carries an 8-byte serial
    /// number in its block, so such an index takes a little more memory).
    case allowed
}

/// Why a ``RecordIndex`` operation did not happen.
public enum RecordIndexError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A record with this key (shown as text) is already in an index that refuses
    /// duplicate keys. Nothing changed.
    case duplicateKey(String)
    /// The record's ``IndexRecord/validityProblem`` (or a last key below its key). Nothing
    /// changed.
    case invalidRecord(String)
    /// The index's memory is full (`maximumSize` bytes). Nothing changed.
    case full(maximumSize: Int)
    /// An operation in a transaction failed half-way; the transaction was rolled back.
    case rolledBack(String)
    /// The transaction was already committed or rolled back.
    case transactionEnded
    /// An operation outside a transaction failed half-way, so the index refuses every
    /// operation since (make a new one). Only a fault of the machine or a bug gets here.
    case unusable(String)

    /// One line saying what happened.
    public var description: String {
        switch self {
        case .duplicateKey(let key): "duplicate key \(key)"
        case .invalidRecord(let why): "invalid record: \(why)"
        case .full(let size): "the index is full (\(size) bytes)"
        case .rolledBack(let why): "the transaction was rolled back: \(why)"
        case .transactionEnded: "the transaction has already ended"
        case .unusable(let why): "the index is unusable after a failed operation: \(why)"
        }
    }
}

/// A large, sorted, transactional index of fixed-size records, held outside the Swift heap:
/// an XFS in-memory btree (the kernel's xfbtree) on pages of a memory file, run by the same
/// engine as the btrees this package reads from XFS images.
///
/// ```swift
/// let index = try RecordIndex<Extent>()
/// try index.insert(Extent(start: 100, length: 8, owner: 7))
/// try index.insert(Extent(start: 40, length: 2, owner: 9))
/// let before = try index.lastRecord(atOrBefore: 99)   // the extent at 40
/// for extent in index.records(in: 0...1_000) { print(extent) }
/// try index.withTransaction { transaction in
///     try transaction.insert(Extent(start: 200, length: 1, owner: 7))
///     try transaction.delete(key: 40)
/// }                                                    // committed, or rolled back on throw
/// ```
///
/// **Operations.** ``insert(_:)``, ``delete(key:)`` and ``delete(_:)`` change the index;
/// outside a transaction each is committed before it returns. Lookups find a record by
/// equal key (``record(forKey:)``), the last at or before a key
/// (``lastRecord(atOrBefore:)``) or the first at or after one
/// (``firstRecord(atOrAfter:)``). The index is a `Sequence` of its records in key order;
/// ``records(in:)-(ClosedRange<Record.Key>)`` and its overloads walk a key range, and
/// ``records(overlapping:)`` finds the records whose key intervals overlap a range.
///
/// **Transactions.** ``withTransaction(_:)`` (or ``beginTransaction()``) groups changes:
/// they become permanent together at commit, and a rollback puts every page, the root and
/// the count back exactly as they were. While a transaction is open, reads through the index
/// see its changes, and changes go through the ``IndexTransaction``.
///
/// **Errors.** Every refusal throws a ``RecordIndexError`` and changes nothing: a duplicate
/// key (unless made with `duplicateKeys: .allowed`), an invalid record, a full index.
///
/// **Memory.** Records live in a memory file (memfd) that the kernel may swap, not on the
/// Swift heap; the index reserves `maximumSize` bytes of address space and uses memory
/// only for the pages that hold records, about 29 bytes per 24-byte record. The
/// growth policy defaults to `.batchedShifts` (faster inserts,
/// fuller blocks); `.kernel` reproduces the Linux kernel's block shapes exactly.
///
/// **Thread safety.** Not `Sendable`: one thread (or one actor, or one task at a time)
/// uses an index. Its buffer cache takes no lock, which is what makes it fast. Records and
/// keys are values and may cross threads freely; to share an index, keep it inside an
/// actor.
public final class RecordIndex<Record: IndexRecord> {
    @usableFromInline
    enum Storage {
        case unique(IndexEngine<UniqueKeyFormat<Record>>)
        case duplicates(IndexEngine<DuplicateKeyFormat<Record>>)
    }

    @usableFromInline let storage: Storage
    /// The memory target the index's blocks live in.
    public let target: MemoryTarget
    /// Whether records may share a key.
    public let duplicateKeys: DuplicateKeys

    /// An empty index.
    ///
    /// - Parameters:
    ///   - duplicateKeys: `.refused` (the default): an insert of a key already present
    ///     throws; `.allowed`: equal keys are kept in insertion order.
    ///   - maximumSize: the most bytes of memory the index may use; it reserves that much
    ///     address space and uses only what its records need. Default: 256 GiB.
    ///   - growthPolicy: how inserts into full blocks make room (default `.batchedShifts`).
    ///   - name: the memory file's name, shown in `/proc/PID/maps`.
    /// - Throws: a `BufferError` when the memory file cannot be made.
    public convenience init(duplicateKeys: DuplicateKeys = .refused, maximumSize: Int = MemoryFile.defaultMaximumSize,
                growthPolicy: BTreeGrowthPolicy = .batchedShifts, name: String = "record-index") throws {
        try self.init(duplicateKeys: duplicateKeys, maximumSize: maximumSize, growthPolicy: growthPolicy,
                      name: name, recordLimits: nil)
    }

    /// An empty index whose blocks hold at most `recordLimits` entries (tests use small
    /// limits to grow deep trees from few records).
    init(duplicateKeys: DuplicateKeys, maximumSize: Int, growthPolicy: BTreeGrowthPolicy, name: String,
         recordLimits: BTreeRecordLimits?) throws {
        target = try MemoryTarget(name: name, maximumSize: maximumSize, exclusive: true)
        self.duplicateKeys = duplicateKeys
        switch duplicateKeys {
        case .refused:
            storage = .unique(try IndexEngine(target: target, growthPolicy: growthPolicy, recordLimits: recordLimits))
        case .allowed:
            storage = .duplicates(try IndexEngine(target: target, growthPolicy: growthPolicy, recordLimits: recordLimits))
        }
    }

    // MARK: Changes

    /// Adds `record`, committed before this returns.
    ///
    /// - Throws: ``RecordIndexError/duplicateKey(_:)`` when its key is present and the index
    ///   refuses duplicates, ``RecordIndexError/invalidRecord(_:)``,
    ///   ``RecordIndexError/full(maximumSize:)``; in each case nothing changed.
    /// - Precondition: no transaction is open (change the index through it instead).
    @inlinable
    public func insert(_ record: Record) throws {
        switch storage {
        case .unique(let engine): try engine.insert(record, inTransaction: false)
        case .duplicates(let engine): try engine.insert(record, inTransaction: false)
        }
    }

    /// Removes the record with `key` (the first one inserted, when duplicates are allowed)
    /// and returns it; nil when there is none.
    ///
    /// - Precondition: no transaction is open.
    @inlinable @discardableResult
    public func delete(key: Record.Key) throws -> Record? {
        switch storage {
        case .unique(let engine): try engine.delete(key: key, inTransaction: false)
        case .duplicates(let engine): try engine.delete(key: key, inTransaction: false)
        }
    }

    /// Removes one record equal to `record`; false when there is none.
    ///
    /// - Precondition: no transaction is open.
    @inlinable @discardableResult
    public func delete(_ record: Record) throws -> Bool {
        switch storage {
        case .unique(let engine): try engine.delete(record, inTransaction: false)
        case .duplicates(let engine): try engine.delete(record, inTransaction: false)
        }
    }

    // MARK: Lookups

    /// The record with `key` (the first inserted, when duplicates are allowed), or nil.
    @inlinable
    public func record(forKey key: Record.Key) throws -> Record? {
        switch storage {
        case .unique(let engine): try engine.record(forKey: key)
        case .duplicates(let engine): try engine.record(forKey: key)
        }
    }

    /// The record with the greatest key at or before `key` (the last inserted of equal
    /// keys), or nil when every key is greater.
    @inlinable
    public func lastRecord(atOrBefore key: Record.Key) throws -> Record? {
        switch storage {
        case .unique(let engine): try engine.lastRecord(atOrBefore: key)
        case .duplicates(let engine): try engine.lastRecord(atOrBefore: key)
        }
    }

    /// The record with the smallest key at or after `key` (the first inserted of equal
    /// keys), or nil when every key is smaller.
    @inlinable
    public func firstRecord(atOrAfter key: Record.Key) throws -> Record? {
        switch storage {
        case .unique(let engine): try engine.firstRecord(atOrAfter: key)
        case .duplicates(let engine): try engine.firstRecord(atOrAfter: key)
        }
    }

    /// Whether a record has `key`.
    @inlinable
    public func contains(key: Record.Key) throws -> Bool {
        try record(forKey: key) != nil
    }

    /// The record with the smallest key, or nil when the index is empty.
    @inlinable
    public func first() throws -> Record? {
        switch storage {
        case .unique(let engine): try engine.first()
        case .duplicates(let engine): try engine.first()
        }
    }

    /// The record with the greatest key, or nil when the index is empty.
    @inlinable
    public func last() throws -> Record? {
        switch storage {
        case .unique(let engine): try engine.last()
        case .duplicates(let engine): try engine.last()
        }
    }

    /// Every record whose keys overlap `range`, in key order: for records that cover an
    /// interval (``IndexRecord/coversKeyInterval``), those whose `key...lastKey` meets the
    /// range; for others, those whose key lies in it.
    @inlinable
    public func records(overlapping range: ClosedRange<Record.Key>) throws -> [Record] {
        var found: [Record] = []
        try forEachRecord(overlapping: range) { found.append($0); return true }
        return found
    }

    /// Calls `body` with every record whose keys overlap `range` (as
    /// ``records(overlapping:)`` finds them), in key order, until it returns false.
    @inlinable
    public func forEachRecord(overlapping range: ClosedRange<Record.Key>, _ body: (Record) throws -> Bool) throws {
        switch storage {
        case .unique(let engine): try engine.forEach(overlapping: range.lowerBound, through: range.upperBound, body)
        case .duplicates(let engine): try engine.forEach(overlapping: range.lowerBound, through: range.upperBound, body)
        }
    }

    /// The records whose keys lie in `range`, in key order, read lazily.
    @inlinable
    public func records(in range: ClosedRange<Record.Key>) -> IndexRecords<Record> {
        IndexRecords(index: self, lower: range.lowerBound, upper: IndexUpperBound(key: range.upperBound, inclusive: true))
    }

    /// The records whose keys lie in `range`, in key order, read lazily.
    @inlinable
    public func records(in range: Range<Record.Key>) -> IndexRecords<Record> {
        IndexRecords(index: self, lower: range.lowerBound, upper: IndexUpperBound(key: range.upperBound, inclusive: false))
    }

    /// The records whose keys are at least `range.lowerBound`, in key order, read lazily.
    @inlinable
    public func records(in range: PartialRangeFrom<Record.Key>) -> IndexRecords<Record> {
        IndexRecords(index: self, lower: range.lowerBound, upper: nil)
    }

    /// The records whose keys are at most `range.upperBound`, in key order, read lazily.
    @inlinable
    public func records(in range: PartialRangeThrough<Record.Key>) -> IndexRecords<Record> {
        IndexRecords(index: self, lower: nil, upper: IndexUpperBound(key: range.upperBound, inclusive: true))
    }

    /// The records whose keys are below `range.upperBound`, in key order, read lazily.
    @inlinable
    public func records(in range: PartialRangeUpTo<Record.Key>) -> IndexRecords<Record> {
        IndexRecords(index: self, lower: nil, upper: IndexUpperBound(key: range.upperBound, inclusive: false))
    }

    // MARK: Size and checks

    /// The number of records (counting those of an open transaction).
    @inlinable
    public var count: Int {
        switch storage {
        case .unique(let engine): engine.count
        case .duplicates(let engine): engine.count
        }
    }

    /// Whether the index holds no record.
    @inlinable
    public var isEmpty: Bool { count == 0 }

    /// The number of levels of the btree.
    public var height: Int {
        switch storage {
        case .unique(let engine): engine.tree.height
        case .duplicates(let engine): engine.tree.height
        }
    }

    /// The number of 4 KiB blocks the btree uses.
    public var blockCount: Int {
        switch storage {
        case .unique(let engine): Int(engine.tree.blockCount)
        case .duplicates(let engine): Int(engine.tree.blockCount)
        }
    }

    /// Bytes of memory the index's pages take now.
    public func residentBytes() throws -> Int {
        try target.residentBytes()
    }

    /// Checks the whole btree with the engine's verifier (key order, keys in nodes, sibling
    /// links, levels, record counts, every record's ``IndexRecord/validityProblem``).
    ///
    /// - Precondition: no transaction is open.
    public func verify() -> BTreeVerifyReport {
        switch storage {
        case .unique(let engine):
            precondition(engine.explicitTransaction == nil, "verify() with a transaction open")
            return engine.tree.verify()
        case .duplicates(let engine):
            precondition(engine.explicitTransaction == nil, "verify() with a transaction open")
            return engine.tree.verify()
        }
    }

    // MARK: Transactions

    /// Opens a transaction: change the index through it, then ``IndexTransaction/commit()``
    /// or ``IndexTransaction/rollback()`` it. One transaction is open at a time.
    ///
    /// - Precondition: no transaction is open.
    public func beginTransaction() -> IndexTransaction<Record> {
        switch storage {
        case .unique(let engine): engine.begin()
        case .duplicates(let engine): engine.begin()
        }
        return IndexTransaction(index: self)
    }

    /// Runs `body` in a new transaction: committed when `body` returns, rolled back when it
    /// throws (the error is rethrown).
    ///
    /// - Precondition: no transaction is open.
    public func withTransaction<Result>(_ body: (IndexTransaction<Record>) throws -> Result) throws -> Result {
        let transaction = beginTransaction()
        let result: Result
        do {
            result = try body(transaction)
        } catch {
            transaction.rollback()
            throw error
        }
        try transaction.commit()
        return result
    }

    /// Where an ordered walk begins, or goes on after a change; see
    /// `IndexEngine.lentLeaf(from:)`.
    @inlinable
    func lentLeaf(from start: IndexWalkStart<Record.Key>) throws -> (run: LentRecords, index: Int) {
        switch storage {
        case .unique(let engine): try engine.lentLeaf(from: start)
        case .duplicates(let engine): try engine.lentLeaf(from: start)
        }
    }

    /// The leaf at block `pointer` (a lent leaf's `next`), lent in place.
    @inlinable
    func lentLeaf(at pointer: UInt64) throws -> LentRecords {
        switch storage {
        case .unique(let engine): try engine.lentLeaf(at: pointer)
        case .duplicates(let engine): try engine.lentLeaf(at: pointer)
        }
    }

    /// The counter every change moves on.
    @inlinable
    var changes: IndexChanges {
        switch storage {
        case .unique(let engine): engine.changes
        case .duplicates(let engine): engine.changes
        }
    }
}

@available(*, unavailable, message: "an index is used by one thread at a time; keep it in an actor to share it")
extension RecordIndex: Sendable {}

extension RecordIndex: Sequence {
    /// Bytes per record in the btree's leaves (the user's encoding, plus an 8-byte serial
    /// number when keys may repeat).
    @inlinable
    var engineRecordSize: Int {
        switch storage {
        case .unique: UniqueKeyFormat<Record>.recordSize
        case .duplicates: DuplicateKeyFormat<Record>.recordSize
        }
    }

    /// Iterates over every record in key order (see ``IndexRecords``).
    @inlinable
    public func makeIterator() -> IndexRecords<Record>.Iterator {
        IndexRecords(index: self, lower: nil, upper: nil).makeIterator()
    }

    /// The number of records.
    @inlinable
    public var underestimatedCount: Int { count }
}
