import XFSBTree
import XFSInMemoryBTree
import XFSTransaction

/// The work of a ``RecordIndex`` on one record format: the in-memory btree, the record
/// count, the transactions, and every operation, written once for both formats.
///
/// Operations that change the tree run in the open explicit transaction when there is one
/// (`inTransaction`), otherwise in `autoTransaction`, committed before they return. A
/// *refusal* (a `RecordIndexError` thrown before the tree is touched: a duplicate key, an
/// invalid record, no room) changes nothing. Any other error from the engine leaves the
/// tree half-changed: an auto-committed operation cannot roll back (its transaction keeps no
/// before-images, which would cost a page copy per operation), so the index is marked
/// failed and refuses everything after; an explicit transaction is rolled back at once.
@usableFromInline
final class IndexEngine<F: IndexFormat> {
    @usableFromInline typealias Cursor = BTreeCursor<F, InMemoryBlockStore<F>>

    @usableFromInline let tree: InMemoryBTree<F>
    /// The number of records.
    @usableFromInline @exclusivity(unchecked) var count = 0
    /// The serial the next insert takes (duplicate keys only).
    @usableFromInline @exclusivity(unchecked) var nextSerial: UInt64 = 0
    /// The transaction of operations outside an explicit transaction.
    @usableFromInline let autoTransaction = Transaction()
    /// The open explicit transaction, with the count and serial at its start.
    @usableFromInline @exclusivity(unchecked) var explicitTransaction: Transaction?
    @usableFromInline @exclusivity(unchecked) var countAtBegin = 0
    @usableFromInline @exclusivity(unchecked) var serialAtBegin: UInt64 = 0
    /// Why the index refuses every operation, once an auto-committed one failed half-way.
    @usableFromInline @exclusivity(unchecked) var failure: String?
    /// Moves on at every change (and commit or rollback), so that an ordered walk reading
    /// leaves in place knows when to find its place again.
    @usableFromInline let changes = IndexChanges()

    init(target: MemoryTarget, growthPolicy: BTreeGrowthPolicy, recordLimits: BTreeRecordLimits?) throws {
        tree = try InMemoryBTree<F>(target: target, recordLimits: recordLimits, growthPolicy: growthPolicy)
        let limits = tree.layout.limits
        precondition(recordLimits != nil || (limits.maxRecords(level: 0) >= 4 && limits.maxRecords(level: 1) >= 4),
                     "\(F.User.self): a \(F.recordSize)-byte record or \(F.keySize)-byte key leaves room for fewer than 4 entries in a \(tree.layout.blockSize)-byte block")
    }

    /// Throws when an earlier failure made the index unusable.
    @inlinable @inline(__always)
    func checkUsable() throws {
        if let failure { throw RecordIndexError.unusable(failure) }
    }

    /// Runs `body` with a cursor in the right transaction; see the type's documentation.
    @inlinable @inline(__always)
    func writing<T>(inTransaction: Bool, _ body: (inout Cursor) throws -> T) throws -> T {
        try checkUsable()
        changes.advance()
        if let transaction = explicitTransaction {
            precondition(inTransaction, "\(F.name) index: a transaction is open; change the index through it, or end it first")
            do {
                return try tree.withCursor(in: transaction, body)
            } catch let refusal as RecordIndexError {
                throw refusal
            } catch {
                rollback()
                throw RecordIndexError.rolledBack("\(error)")
            }
        }
        precondition(!inTransaction, "\(F.name) index: this transaction has ended")
        let result: T
        do {
            result = try tree.withCursor(in: autoTransaction, body)
        } catch let refusal as RecordIndexError {
            tree.cancel(autoTransaction) // nothing changed: the tree stays usable
            throw refusal
        } catch {
            tree.cancel(autoTransaction)
            if tree.isLost { failure = "\(error)" }
            throw error
        }
        do {
            try tree.commit(autoTransaction)
        } catch {
            failure = "\(error)"
            throw error
        }
        return result
    }

    /// Runs `body` with a cursor that only reads: in the open explicit transaction (seeing
    /// its changes), or in a transaction of its own.
    @inlinable @inline(__always)
    func reading<T>(_ body: (inout Cursor) throws -> T) throws -> T {
        try checkUsable()
        if let transaction = explicitTransaction {
            return try tree.withCursor(in: transaction, body)
        }
        return try tree.withReadCursor(body)
    }

    // MARK: Changes

    @inlinable
    func insert(_ record: F.User, inTransaction: Bool) throws {
        if let problem = record.validityProblem { throw RecordIndexError.invalidRecord(problem) }
        if F.User.coversKeyInterval && record.lastKey < record.key {
            throw RecordIndexError.invalidRecord("last key \(record.lastKey) is below the key \(record.key)")
        }
        // A split chain allocates at most one block per level plus a new root.
        guard tree.allocatableBlocks > UInt64(tree.height + 1) else {
            throw RecordIndexError.full(maximumSize: tree.target.size)
        }
        let serial = nextSerial
        let duplicate: Bool = try writing(inTransaction: inTransaction) { cursor in
            let entry = F.entry(record, serial: serial)
            if F.allowsDuplicates {
                try cursor.insert(entry)
                return false
            }
            return try !cursor.insertUnique(entry)
        }
        if duplicate { throw RecordIndexError.duplicateKey("\(record.key)") }
        count += 1
        if F.allowsDuplicates { nextSerial = serial + 1 }
    }

    @inlinable
    func delete(key: F.User.Key, inTransaction: Bool) throws -> F.User? {
        let removed: F.User? = try writing(inTransaction: inTransaction) { cursor in
            guard try cursor.lookup(F.key(key, serial: 0), .greaterOrEqual), let entry = cursor.record,
                  F.userKey(F.lowKey(of: entry)) == key else { return nil }
            try cursor.delete()
            return F.user(entry)
        }
        if removed != nil { count -= 1 }
        return removed
    }

    @inlinable
    func delete(_ record: F.User, inTransaction: Bool) throws -> Bool {
        let key = record.key
        let removed: Bool = try writing(inTransaction: inTransaction) { cursor in
            var found = try cursor.lookup(F.key(key, serial: 0), .greaterOrEqual)
            while found, let entry = cursor.record, F.userKey(F.lowKey(of: entry)) == key {
                if F.user(entry) == record {
                    try cursor.delete()
                    return true
                }
                found = try cursor.increment()
            }
            return false
        }
        if removed { count -= 1 }
        return removed
    }

    // MARK: Lookups

    @inlinable
    func record(forKey key: F.User.Key) throws -> F.User? {
        try reading { cursor in
            guard try cursor.lookup(F.key(key, serial: 0), .greaterOrEqual), let entry = cursor.record,
                  F.userKey(F.lowKey(of: entry)) == key else { return nil }
            return F.user(entry)
        }
    }

    @inlinable
    func lastRecord(atOrBefore key: F.User.Key) throws -> F.User? {
        try reading { cursor in
            guard try cursor.lookup(F.key(key, serial: .max), .lessOrEqual), let entry = cursor.record else { return nil }
            return F.user(entry)
        }
    }

    @inlinable
    func firstRecord(atOrAfter key: F.User.Key) throws -> F.User? {
        try reading { cursor in
            guard try cursor.lookup(F.key(key, serial: 0), .greaterOrEqual), let entry = cursor.record else { return nil }
            return F.user(entry)
        }
    }

    @inlinable
    func first() throws -> F.User? {
        try reading { cursor in
            guard try cursor.moveToFirst(), let entry = cursor.record else { return nil }
            return F.user(entry)
        }
    }

    @inlinable
    func last() throws -> F.User? {
        try reading { cursor in
            guard try cursor.moveToLast(), let entry = cursor.record else { return nil }
            return F.user(entry)
        }
    }

    @inlinable
    func forEach(overlapping low: F.User.Key, through high: F.User.Key,
                 _ body: (F.User) throws -> Bool) throws {
        try reading { cursor in
            _ = try cursor.query(from: F.key(low, serial: 0), through: F.key(high, serial: .max)) { entry in
                try body(F.user(entry)) ? .proceed : .stop
            }
        }
    }

    /// The leaf where a walk from `start` begins, lent in place, and the index of the walk's
    /// first record in it (which may be the leaf's record count: the walk then begins in
    /// the next leaf). The lent leaf stays valid until `changes` moves on.
    @inlinable
    func lentLeaf(from start: IndexWalkStart<F.User.Key>) throws -> (run: LentRecords, index: Int) {
        try reading { cursor in
            switch start {
            case .first:
                _ = try cursor.moveToFirst()
            case .atOrAfter(let key):
                _ = try cursor.lookup(F.key(key, serial: 0), .greaterOrEqual)
            case .after(let key, let serial):
                // Engine keys are unique: the record at (key, serial) is the only one with them.
                if F.allowsDuplicates {
                    _ = try cursor.lookup(F.key(key, serial: serial &+ 1), .greaterOrEqual)
                } else if try cursor.lookup(F.key(key, serial: 0), .greaterOrEqual), let entry = cursor.record,
                          F.userKey(F.lowKey(of: entry)) == key {
                    _ = try cursor.increment()
                }
            }
            guard let (leaf, index) = cursor.lentLeaf() else {
                throw RecordIndexError.unusable("the index's memory target did not lend leaf \(cursor.pointer(atLevel: 0))")
            }
            return (LentRecords(leaf), Swift.max(index, 0))
        }
    }

    /// The leaf at block `pointer` (a lent leaf's `next`), lent in place.
    @inlinable
    func lentLeaf(at pointer: UInt64) throws -> LentRecords {
        try checkUsable()
        guard let leaf = try Cursor.lentLeaf(at: pointer, store: tree.store, layout: tree.layout) else {
            throw RecordIndexError.unusable("the index's memory target did not lend leaf \(pointer)")
        }
        return LentRecords(leaf)
    }

    // MARK: Transactions

    @usableFromInline
    func begin() {
        precondition(explicitTransaction == nil, "\(F.name) index: a transaction is already open")
        explicitTransaction = Transaction(keepingBeforeImages: true)
        countAtBegin = count
        serialAtBegin = nextSerial
    }

    @usableFromInline
    func commit() throws {
        guard let transaction = explicitTransaction else { throw RecordIndexError.transactionEnded }
        explicitTransaction = nil
        changes.advance()
        do {
            try tree.commit(transaction)
        } catch {
            failure = "\(error)"
            throw error
        }
    }

    @usableFromInline
    func rollback() {
        guard let transaction = explicitTransaction else { return }
        explicitTransaction = nil
        changes.advance()
        tree.cancel(transaction)
        count = countAtBegin
        nextSerial = serialAtBegin
    }
}

/// Where an ordered walk finds its place: at its start, or again after the index changed.
@usableFromInline
enum IndexWalkStart<Key: IndexKey> {
    /// At the first record.
    case first
    /// At the first record whose key is at least `key`.
    case atOrAfter(Key)
    /// After the record with `key` and `serial` (the serial is 0 in an index that refuses
    /// duplicates), which the walk returned last.
    case after(Key, serial: UInt64)
}

/// A counter that moves on at every change of an index.
@usableFromInline
final class IndexChanges {
    @usableFromInline @exclusivity(unchecked) var value: UInt64 = 0

    @inlinable
    init() {}

    @inlinable @inline(__always)
    func advance() { value &+= 1 }
}

/// Where an ordered walk stops.
@usableFromInline
struct IndexUpperBound<Key: IndexKey> {
    @usableFromInline let key: Key
    @usableFromInline let inclusive: Bool

    @inlinable
    init(key: Key, inclusive: Bool) {
        self.key = key
        self.inclusive = inclusive
    }

    @inlinable
    func contains(_ candidate: Key) -> Bool { inclusive ? !(key < candidate) : candidate < key }
}
