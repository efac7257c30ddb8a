import XFSBuffer

extension Transaction {
    /// The joined buffers of a transaction, in join order: storage the transaction owns
    /// and frees (`deallocate()` in its deinit), grown by doubling and never shrunk.
    ///
    /// Every get, release and log scans or changes this list. A Swift `Array` stored in a
    /// class checks its buffer's uniqueness (a runtime call) on every write; this list
    /// belongs to one transaction, so a write is a store and a removal a `memmove`.
    /// Indices are checked.
    @usableFromInline
    struct JoinedItems {
        @usableFromInline var base: UnsafeMutablePointer<Item>
        /// Scratch room for one batch of buffers to release (as many as there are items).
        @usableFromInline var batch: UnsafeMutablePointer<Unmanaged<Buffer>>
        @usableFromInline var capacity: Int
        @usableFromInline private(set) var count = 0

        /// Room for `capacity` items.
        init(capacity: Int) {
            self.capacity = max(capacity, 1)
            base = .allocate(capacity: self.capacity)
            batch = .allocate(capacity: self.capacity)
        }

        /// Frees the storage; the list is not used afterwards.
        func deallocate() {
            base.deallocate()
            batch.deallocate()
        }

        /// Calls `body` with the buffers of the items from target `target`, in join order.
        @inlinable
        func withBuffers(ofTarget target: Int32, _ body: (UnsafeBufferPointer<Unmanaged<Buffer>>) -> Void) {
            var found = 0
            var i = 0
            while i < count {
                if base[i].target == target {
                    (batch + found).initialize(to: base[i].buffer)
                    found += 1
                }
                i += 1
            }
            body(UnsafeBufferPointer(start: batch, count: found))
        }

        @inlinable var isEmpty: Bool { count == 0 }

        /// The item at `index`.
        @inlinable
        subscript(index: Int) -> Item {
            unsafeAddress {
                precondition(index >= 0 && index < count, "joined item \(index) outside 0..<\(count)")
                return UnsafePointer(base + index)
            }
            nonmutating unsafeMutableAddress {
                precondition(index >= 0 && index < count, "joined item \(index) outside 0..<\(count)")
                return base + index
            }
        }

        /// Adds an item at the end.
        @inlinable
        mutating func append(_ item: Item) {
            if count == capacity { grow() }
            (base + count).initialize(to: item)
            count += 1
        }

        /// Doubles the storage.
        @usableFromInline
        mutating func grow() {
            let larger = UnsafeMutablePointer<Item>.allocate(capacity: capacity * 2)
            larger.moveInitialize(from: base, count: count)
            base.deallocate()
            base = larger
            batch.deallocate()
            batch = .allocate(capacity: capacity * 2)
            capacity *= 2
        }

        /// Removes the item at `index`, keeping the others in join order.
        @inlinable
        mutating func remove(at index: Int) {
            precondition(index >= 0 && index < count, "joined item \(index) outside 0..<\(count)")
            (base + index).moveInitialize(from: base + index + 1, count: count - index - 1)
            count -= 1
        }

        /// Removes every item (the storage stays).
        @inlinable
        mutating func removeAll() {
            count = 0
        }

        /// Whether any item satisfies `predicate`.
        @inlinable
        func contains(where predicate: (Item) -> Bool) -> Bool {
            var i = 0
            while i < count {
                if predicate(base[i]) { return true }
                i += 1
            }
            return false
        }
    }
}
