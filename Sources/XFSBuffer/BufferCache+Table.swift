extension BufferCache {
    /// An open-addressed hash table from disk address to buffer: linear probing,
    /// Fibonacci hashing, backward-shift deletion (no tombstones), kept at most half full.
    ///
    /// Or, for a target whose addresses are dense multiples of a block (a memory target:
    /// block numbers are handed out from 0 up), a direct page table: slot = address / block,
    /// grown on demand, one load per lookup and no probing.
    ///
    /// Not thread-safe: it lives inside the cache's lock.
    ///
    /// The table owns its buffers: `insert` retains a buffer once, `remove` (or
    /// `releaseAll`) balances that, and lookups hand out unretained references. That is what
    /// keeps every cached buffer, and so every held one, alive without a reference count
    /// per access.
    struct Table {
        /// The sector numbers in each slot; `emptyKey` marks a free slot.
        private var keys: [Int64]
        /// The buffers, parallel to `keys`.
        private var buffers: [Unmanaged<Buffer>?]
        /// Slot count minus one (slot counts are powers of two).
        private var mask: Int
        /// 64 minus log2 of the slot count: the hash's shift.
        private var shift: UInt64
        /// Buffers in the table.
        private(set) var count = 0
        /// Page-table mode: log2 of the sectors per slot; -1 in hash mode.
        private let denseShift: Int

        /// No disk address is negative, so -1 marks an empty slot.
        private static let emptyKey: Int64 = -1

        /// An empty table with `slots` slots (a power of two).
        init(slots: Int = 1024) {
            assert(slots > 1 && slots & (slots - 1) == 0, "slot count \(slots) is not a power of two")
            keys = Array(repeating: Table.emptyKey, count: slots)
            buffers = Array(repeating: nil, count: slots)
            mask = slots - 1
            shift = UInt64(64 - slots.trailingZeroBitCount)
            denseShift = -1
        }

        /// An empty page table for addresses that are multiples of `sectorsPerSlot` (a
        /// power of two); other addresses are never cached.
        init(denseSectorsPerSlot sectorsPerSlot: Int) {
            precondition(sectorsPerSlot > 0 && sectorsPerSlot & (sectorsPerSlot - 1) == 0,
                         "sectors per slot \(sectorsPerSlot) is not a power of two")
            keys = []
            buffers = Array(repeating: nil, count: 1024)
            mask = sectorsPerSlot - 1
            shift = 0
            denseShift = sectorsPerSlot.trailingZeroBitCount
        }

        /// Page-table mode: the slot of `sectors`, or -1 when it cannot be cached (negative,
        /// or not a multiple of the slot size).
        @inline(__always)
        private func denseSlot(_ sectors: Int64) -> Int {
            sectors >= 0 && Int(truncatingIfNeeded: sectors) & mask == 0
                ? Int(truncatingIfNeeded: sectors) &>> denseShift : -1
        }

        /// The slot where a key's probe starts.
        @inline(__always)
        private func home(_ key: Int64) -> Int {
            Int(truncatingIfNeeded: (UInt64(bitPattern: key) &* 0x9E37_79B9_7F4A_7C15) >> shift)
        }

        /// The buffer at `address`, if cached.
        @inline(__always)
        func find(_ address: DiskAddress) -> Buffer? {
            findUnretained(address)?.takeUnretainedValue()
        }

        /// The buffer at `address`, if cached, unretained (the table keeps it).
        @inline(__always)
        func findUnretained(_ address: DiskAddress) -> Unmanaged<Buffer>? {
            if denseShift >= 0 {
                let slot = denseSlot(address.sectors)
                return slot >= 0 && slot < buffers.count ? buffers[slot] : nil
            }
            var slot = home(address.sectors)
            while true {
                let key = keys[slot]
                if key == address.sectors { return buffers[slot] }
                if key == Table.emptyKey { return nil }
                slot = (slot + 1) & mask
            }
        }

        /// Adds a buffer whose address is not in the table, retaining it.
        mutating func insert(_ buffer: Buffer) {
            insert(unretained: Unmanaged.passRetained(buffer), sectors: buffer.diskAddress.sectors)
        }

        /// Adds an already retained buffer under `sectors`.
        private mutating func insert(unretained buffer: Unmanaged<Buffer>, sectors: Int64) {
            if denseShift >= 0 {
                let slot = denseSlot(sectors)
                precondition(slot >= 0, "sector \(sectors) is not a slot boundary of this page table")
                if slot >= buffers.count {
                    var size = buffers.count
                    while size <= slot { size *= 2 }
                    buffers.append(contentsOf: repeatElement(nil, count: size - buffers.count))
                }
                assert(buffers[slot] == nil, "sector \(sectors) inserted twice")
                buffers[slot] = buffer
                count += 1
                return
            }
            if (count + 1) * 2 > keys.count { grow() }
            var slot = home(sectors)
            while keys[slot] != Table.emptyKey {
                assert(keys[slot] != sectors, "sector \(sectors) inserted twice")
                slot = (slot + 1) & mask
            }
            keys[slot] = sectors
            buffers[slot] = buffer
            count += 1
        }

        /// Removes the buffer at `address` (which must be present), closing the gap by
        /// shifting later members of the probe run back, and drops the table's reference:
        /// the buffer may be freed by this call, so callers touch it no more afterwards.
        mutating func remove(_ address: DiskAddress) {
            if denseShift >= 0 {
                let slot = denseSlot(address.sectors)
                let removed = buffers[slot]
                assert(removed != nil, "\(address) removed but not cached")
                buffers[slot] = nil
                count -= 1
                removed?.release()
                return
            }
            var hole = home(address.sectors)
            while keys[hole] != address.sectors {
                assert(keys[hole] != Table.emptyKey, "\(address) removed but not cached")
                hole = (hole + 1) & mask
            }
            let removedSlot = hole
            let removed = buffers[removedSlot]
            var next = (hole + 1) & mask
            while keys[next] != Table.emptyKey {
                // An entry may move back into the hole unless its home lies cyclically in
                // (hole, next]: then the hole is before its home and moving it would hide it.
                let wanted = home(keys[next])
                let homeAfterHole = hole <= next
                    ? (wanted > hole && wanted <= next)
                    : (wanted > hole || wanted <= next)
                if !homeAfterHole {
                    keys[hole] = keys[next]
                    buffers[hole] = buffers[next]
                    hole = next
                }
                next = (next + 1) & mask
            }
            keys[hole] = Table.emptyKey
            buffers[hole] = nil
            count -= 1
            removed?.release()
        }

        /// Drops the table's reference to every buffer and empties it (cache teardown).
        mutating func releaseAll() {
            for case let buffer? in buffers { buffer.release() }
            buffers.removeAll()
            keys.removeAll()
            count = 0
        }

        /// Doubles the slot count and reinserts every buffer.
        private mutating func grow() {
            let old = buffers
            self = Table(slots: keys.count * 2)
            for case let buffer? in old {
                insert(unretained: buffer, sectors: buffer._withUnsafeGuaranteedRef { $0.diskAddress.sectors })
            }
        }
    }
}
