extension BufferCache {
    /// An open-addressed hash table from disk address to buffer: linear probing,
    /// Fibonacci hashing, backward-shift deletion (no tombstones), kept at most half full.
    ///
    /// Not thread-safe: it lives inside the cache's lock.
    struct Table {
        /// The sector numbers in each slot; `emptyKey` marks a free slot.
        private var keys: [Int64]
        /// The buffers, parallel to `keys`.
        private var buffers: [Buffer?]
        /// Slot count minus one (slot counts are powers of two).
        private var mask: Int
        /// 64 minus log2 of the slot count: the hash's shift.
        private var shift: UInt64
        /// Buffers in the table.
        private(set) var count = 0

        /// No disk address is negative, so -1 marks an empty slot.
        private static let emptyKey: Int64 = -1

        /// An empty table with `slots` slots (a power of two).
        init(slots: Int = 1024) {
            assert(slots > 1 && slots & (slots - 1) == 0, "slot count \(slots) is not a power of two")
            keys = Array(repeating: Table.emptyKey, count: slots)
            buffers = Array(repeating: nil, count: slots)
            mask = slots - 1
            shift = UInt64(64 - slots.trailingZeroBitCount)
        }

        /// The slot where a key's probe starts.
        @inline(__always)
        private func home(_ key: Int64) -> Int {
            Int(truncatingIfNeeded: (UInt64(bitPattern: key) &* 0x9E37_79B9_7F4A_7C15) >> shift)
        }

        /// The buffer at `address`, if cached.
        @inline(__always)
        func find(_ address: DiskAddress) -> Buffer? {
            var slot = home(address.sectors)
            while true {
                let key = keys[slot]
                if key == address.sectors { return buffers[slot] }
                if key == Table.emptyKey { return nil }
                slot = (slot + 1) & mask
            }
        }

        /// Adds a buffer whose address is not in the table.
        mutating func insert(_ buffer: Buffer) {
            if (count + 1) * 2 > keys.count { grow() }
            var slot = home(buffer.diskAddress.sectors)
            while keys[slot] != Table.emptyKey {
                assert(keys[slot] != buffer.diskAddress.sectors, "\(buffer.diskAddress) inserted twice")
                slot = (slot + 1) & mask
            }
            keys[slot] = buffer.diskAddress.sectors
            buffers[slot] = buffer
            count += 1
        }

        /// Removes the buffer at `address` (which must be present), closing the gap by
        /// shifting later members of the probe run back.
        mutating func remove(_ address: DiskAddress) {
            var hole = home(address.sectors)
            while keys[hole] != address.sectors {
                assert(keys[hole] != Table.emptyKey, "\(address) removed but not cached")
                hole = (hole + 1) & mask
            }
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
        }

        /// Every buffer in the table (for purging and teardown).
        var allBuffers: [Buffer] { buffers.compactMap { $0 } }

        /// Doubles the slot count and reinserts every buffer.
        private mutating func grow() {
            let old = buffers
            self = Table(slots: keys.count * 2)
            for case let buffer? in old { insert(buffer) }
        }
    }
}
