/// The records of a ``RecordIndex`` in a key range, in key order: a `Sequence` read lazily,
/// a batch of records at a time.
///
/// Each batch (whole leaves, about 1,024 records) is copied from the btree in a transaction
/// of its own (or in the open transaction) and decoded a record at a time as the iteration
/// returns it, so the iteration holds nothing between batches. When the index changes
/// during an iteration, the records already read into the current batch are returned as
/// they were, and the next batch starts after the last of them, in the index as it is
/// then.
///
/// Iteration cannot throw: an index that fails to read its own memory (which only a fault
/// of the machine or a bug can cause) traps with the reason. ``RecordIndex/forEachRecord(overlapping:_:)``
/// is the throwing way to walk a range.
public struct IndexRecords<Record: IndexRecord>: Sequence {
    @usableFromInline let index: RecordIndex<Record>
    @usableFromInline let lower: Record.Key?
    @usableFromInline let upper: IndexUpperBound<Record.Key>?

    @inlinable
    init(index: RecordIndex<Record>, lower: Record.Key?, upper: IndexUpperBound<Record.Key>?) {
        self.index = index
        self.lower = lower
        self.upper = upper
    }

    /// An iterator from the range's first record.
    @inlinable
    public func makeIterator() -> Iterator {
        Iterator(index: index, start: lower.map { .atOrAfter($0, serial: 0) } ?? .first, upper: upper)
    }

    /// Walks the range, one batch of records at a time.
    public struct Iterator: IteratorProtocol {
        /// Records read per batch (at least; a batch ends at a leaf's end).
        @usableFromInline static var batchSize: Int { 1024 }

        @usableFromInline let index: RecordIndex<Record>
        @usableFromInline var nextStart: IndexBatchStart<Record.Key>?
        @usableFromInline let upper: IndexUpperBound<Record.Key>?
        @usableFromInline var batch: RecordBatch
        @usableFromInline var position = 0

        @inlinable
        init(index: RecordIndex<Record>, start: IndexBatchStart<Record.Key>, upper: IndexUpperBound<Record.Key>?) {
            self.index = index
            self.nextStart = start
            self.upper = upper
            self.batch = RecordBatch(stride: index.engineRecordSize, capacity: Self.batchSize + 256)
        }

        /// The next record in key order, or nil after the last one.
        @inlinable @inline(__always)
        public mutating func next() -> Record? {
            if position >= batch.count {
                guard refill() else { return nil }
            }
            let record = batch.record(position, as: Record.self)
            if let upper, !upper.contains(record.key) {
                finish()
                return nil
            }
            position &+= 1
            return record
        }

        /// Reads the next batch; false when no record is left.
        @inlinable @inline(never)
        mutating func refill() -> Bool {
            guard let start = nextStart else { return false }
            do {
                nextStart = try index.batch(from: start, upper: upper, limit: Self.batchSize, into: &batch)
            } catch {
                preconditionFailure("\(Record.indexName) index: reading records failed: \(error)")
            }
            position = 0
            return batch.count > 0
        }

        /// Ends the walk at a record past the range.
        @inlinable @inline(never)
        mutating func finish() {
            nextStart = nil
            batch.removeAll()
            position = 0
        }
    }
}
