/// The records of a ``RecordIndex`` in a key range, in key order: a `Sequence` read lazily,
/// a record at a time.
///
/// The iteration reads each leaf of the btree in place, in the index's memory, and decodes a
/// record as it returns it: no copy, no transaction and no hold between records. The index
/// may change during an iteration (through the index or a transaction): the next record is
/// then the first one after the last record returned, in the index as it is after the
/// change.
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
        Iterator(index: index, start: lower.map { .atOrAfter($0) } ?? .first, upper: upper)
    }

    /// Walks the range a leaf at a time, reading records in place.
    public struct Iterator: IteratorProtocol {
        @usableFromInline let index: RecordIndex<Record>
        @usableFromInline let changes: IndexChanges
        @usableFromInline let start: IndexWalkStart<Record.Key>
        @usableFromInline let upper: IndexUpperBound<Record.Key>?
        /// Bytes per record in a leaf, and whether each carries a serial number after the
        /// user's encoding (an index that allows duplicate keys).
        @usableFromInline let stride: Int
        @usableFromInline let keepsSerials: Bool
        /// The leaf being read, and the index in it of the next record.
        @usableFromInline var run = LentRecords()
        @usableFromInline var position = 0
        /// `changes.value` when `run` was lent: while it stays, `run` is the leaf as it is.
        @usableFromInline var seen: UInt64 = 0
        /// Whether the walk has found its first leaf.
        @usableFromInline var placed = false
        /// Whether the walk has ended: it returns nil from then on, whatever changes.
        @usableFromInline var ended = false
        /// The record returned last, and its serial number: after a change, the walk goes
        /// on after them.
        @usableFromInline var last: Record?
        @usableFromInline var lastSerial: UInt64 = 0
        /// Leaves the walk may still step to before it has visited every block of the index
        /// (a bound that stops a loop in the sibling links; renewed at each placing).
        @usableFromInline var leavesLeft = 0

        @inlinable
        init(index: RecordIndex<Record>, start: IndexWalkStart<Record.Key>, upper: IndexUpperBound<Record.Key>?) {
            self.index = index
            self.changes = index.changes
            self.start = start
            self.upper = upper
            self.stride = index.engineRecordSize
            self.keepsSerials = index.duplicateKeys == .allowed
        }

        /// The next record in key order, or nil after the last one.
        @inlinable @inline(__always)
        public mutating func next() -> Record? {
            guard position < run.count, changes.value == seen else { return nextAfterMoving() }
            return take()
        }

        /// Returns the record at `position` and moves past it, or ends the walk at a record
        /// past the range.
        @inlinable @inline(__always)
        mutating func take() -> Record? {
            let record = run.record(position, stride: stride, as: Record.self)
            if let upper, !upper.contains(record.key) {
                finish()
                return nil
            }
            if keepsSerials { lastSerial = run.serial(position, stride: stride, of: Record.self) }
            last = record
            position &+= 1
            return record
        }

        /// The next record when the leaf is used up or the index changed: places the walk
        /// (again) or steps to the next leaf first.
        @inlinable @inline(never)
        mutating func nextAfterMoving() -> Record? {
            if ended { return nil }
            do {
                if !placed || changes.value != seen {
                    let place = last.map { IndexWalkStart.after($0.key, serial: lastSerial) } ?? start
                    (run, position) = try index.lentLeaf(from: place)
                    seen = changes.value
                    placed = true
                    leavesLeft = index.blockCount
                }
                while position >= run.count {
                    guard let next = run.next else {
                        finish()
                        return nil
                    }
                    precondition(leavesLeft > 0, "\(Record.indexName) index: the leaves' sibling links loop")
                    leavesLeft -= 1
                    run = try index.lentLeaf(at: next)
                    position = 0
                }
            } catch {
                preconditionFailure("\(Record.indexName) index: reading records failed: \(error)")
            }
            return take()
        }

        /// Ends the walk.
        @inlinable @inline(never)
        mutating func finish() {
            ended = true
            run = LentRecords()
            position = 0
        }
    }
}
