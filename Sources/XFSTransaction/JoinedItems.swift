import XFSBuffer

extension Transaction {
    /// The joined buffers of a transaction, in join order: storage the transaction owns
    /// and frees (`deallocate()` in its deinit), grown by doubling and never shrunk.
    ///
    /// Every get, release and log scans or changes this list. A Swift `Array` stored in a
    /// class checks its buffer's uniqueness (a runtime call) on every write; this list
    /// belongs to one transaction, so a write is a store and a removal a `memmove`.
    /// Indices are checked.
    ///
    /// A transaction of more than ``JoinedItems/tableThreshold`` items (a bulk load joins
    /// every block of the tree it builds) also keeps tables from buffer and from address to
    /// index, so that a lookup stays constant-time instead of growing with the transaction;
    /// a removal drops them (the indices after it shift), and the next lookup rebuilds them.
    @usableFromInline
    struct JoinedItems {
        /// Where an address's item is: its sectors and target.
        @usableFromInline
        struct AddressKey: Hashable {
            @usableFromInline let sectors: Int64
            @usableFromInline let target: Int32
            @inlinable init(_ sectors: Int64, _ target: Int32) {
                self.sectors = sectors
                self.target = target
            }
        }

        /// Up to this many items a lookup scans them; past it, it uses the tables.
        @usableFromInline static var tableThreshold: Int { 64 }

        @usableFromInline var byBuffer: [UnsafeMutableRawPointer: Int]? = nil
        @usableFromInline var byAddress: [AddressKey: Int]? = nil

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
            if byBuffer != nil {
                byBuffer![item.buffer.toOpaque()] = count
                byAddress![AddressKey(item.sectors, item.target)] = count
            }
            count += 1
        }

        /// The index of the item holding `buffer`, or nil.
        @inlinable
        mutating func index(of buffer: Unmanaged<Buffer>) -> Int? {
            let wanted = buffer.toOpaque()
            if count > Self.tableThreshold {
                if byBuffer == nil { buildTables() }
                return byBuffer![wanted]
            }
            // A handful of buffers (a btree path and its siblings): a scan beats a table.
            var i = count - 1
            while i >= 0 {
                if base[i].buffer.toOpaque() == wanted { return i }
                i -= 1
            }
            return nil
        }

        /// The index of the item at `sectors` of target `target`, or nil.
        @inlinable
        mutating func index(ofSectors sectors: Int64, target: Int32) -> Int? {
            if count > Self.tableThreshold {
                if byAddress == nil { buildTables() }
                return byAddress![AddressKey(sectors, target)]
            }
            var i = count - 1
            while i >= 0 {
                if base[i].sectors == sectors && base[i].target == target { return i }
                i -= 1
            }
            return nil
        }

        /// Builds both tables from the items.
        @usableFromInline
        mutating func buildTables() {
            var buffers: [UnsafeMutableRawPointer: Int] = [:], addresses: [AddressKey: Int] = [:]
            buffers.reserveCapacity(count)
            addresses.reserveCapacity(count)
            for i in 0..<count {
                buffers[base[i].buffer.toOpaque()] = i
                addresses[AddressKey(base[i].sectors, base[i].target)] = i
            }
            byBuffer = buffers
            byAddress = addresses
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
            if byBuffer != nil {
                byBuffer = nil
                byAddress = nil
            }
        }

        /// Removes every item (the storage stays).
        @inlinable
        mutating func removeAll() {
            count = 0
            if byBuffer != nil {
                byBuffer = nil
                byAddress = nil
            }
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
