/// Changes to a ``RecordIndex`` that become permanent together, or not at all.
///
/// Made by ``RecordIndex/beginTransaction()`` or handed to the body of
/// ``RecordIndex/withTransaction(_:)``. Until ``commit()``, the changes are visible only
/// through this index (its lookups and walks see them); ``rollback()`` restores every
/// changed page, the btree's root and height, its block allocator and the record count
/// exactly. A transaction dropped without either is rolled back.
///
/// A refused change (a duplicate key, an invalid record, a full index) throws and leaves the
/// transaction open with its earlier changes. Any other failure rolls the transaction back
/// and throws ``RecordIndexError/rolledBack(_:)``.
///
/// **Thread safety.** Not `Sendable`: it belongs to its index's thread.
public final class IndexTransaction<Record: IndexRecord> {
    /// The index this transaction changes.
    public let index: RecordIndex<Record>
    /// Whether the transaction was committed or rolled back.
    public private(set) var hasEnded = false

    init(index: RecordIndex<Record>) {
        self.index = index
    }

    deinit {
        if !hasEnded { rollback() }
    }

    /// Adds `record`; see ``RecordIndex/insert(_:)``.
    ///
    /// - Throws: ``RecordIndexError/transactionEnded`` after commit or rollback, and as
    ///   ``RecordIndex/insert(_:)`` does.
    public func insert(_ record: Record) throws {
        guard !hasEnded else { throw RecordIndexError.transactionEnded }
        do {
            switch index.storage {
            case .unique(let engine): try engine.insert(record, inTransaction: true)
            case .duplicates(let engine): try engine.insert(record, inTransaction: true)
            }
        } catch RecordIndexError.rolledBack(let why) {
            hasEnded = true
            throw RecordIndexError.rolledBack(why)
        }
    }

    /// Removes the record with `key` and returns it; see ``RecordIndex/delete(key:)``.
    @discardableResult
    public func delete(key: Record.Key) throws -> Record? {
        guard !hasEnded else { throw RecordIndexError.transactionEnded }
        do {
            switch index.storage {
            case .unique(let engine): return try engine.delete(key: key, inTransaction: true)
            case .duplicates(let engine): return try engine.delete(key: key, inTransaction: true)
            }
        } catch RecordIndexError.rolledBack(let why) {
            hasEnded = true
            throw RecordIndexError.rolledBack(why)
        }
    }

    /// Removes one record equal to `record`; see ``RecordIndex/delete(_:)``.
    @discardableResult
    public func delete(_ record: Record) throws -> Bool {
        guard !hasEnded else { throw RecordIndexError.transactionEnded }
        do {
            switch index.storage {
            case .unique(let engine): return try engine.delete(record, inTransaction: true)
            case .duplicates(let engine): return try engine.delete(record, inTransaction: true)
            }
        } catch RecordIndexError.rolledBack(let why) {
            hasEnded = true
            throw RecordIndexError.rolledBack(why)
        }
    }

    /// Makes the changes permanent.
    ///
    /// - Throws: ``RecordIndexError/transactionEnded`` when already ended; an error of the
    ///   engine's block verifier (a bug) makes the index unusable.
    public func commit() throws {
        guard !hasEnded else { throw RecordIndexError.transactionEnded }
        hasEnded = true
        switch index.storage {
        case .unique(let engine): try engine.commit()
        case .duplicates(let engine): try engine.commit()
        }
    }

    /// Undoes every change; nothing happens when the transaction has already ended.
    public func rollback() {
        guard !hasEnded else { return }
        hasEnded = true
        switch index.storage {
        case .unique(let engine): engine.rollback()
        case .duplicates(let engine): engine.rollback()
        }
    }
}

@available(*, unavailable, message: "a transaction belongs to its index's thread")
extension IndexTransaction: Sendable {}
