import CXFSShims
import Glibc
import XFSFormat
import XFSMemoryFile

/// An AG's observations as an offline scan gathers them, in anonymous memory of their own
/// (`mmap`), outside the Swift heap: appended a worker's chunk at a time, sorted and merged
/// in place, then drained into the bulk loader, which hands each page back to the system
/// (`MADV_DONTNEED`) as soon as it has read past it.
///
/// That is what keeps the scan's peak memory near one copy of the observations: nothing is
/// copied into a second array to be sorted, the sort needs no scratch space (an in-place
/// introsort: `PackedObservation.precedes` is a total order, so stability buys nothing), and
/// an AG's tree grows while its observations shrink. Growing moves the mapping with
/// `mremap`, which copies no bytes.
///
/// This is the one type of the rmap layer that touches raw memory. Not thread-safe: the
/// scanner appends under the AG's lock and loads one AG on one thread.
final class ObservationStore {
    private var base: UnsafeMutablePointer<PackedObservation>? = nil
    /// Elements the mapping holds room for.
    private var capacity = 0
    /// Observations held.
    private(set) var count = 0

    fileprivate static var recordBytes: Int { MemoryLayout<PackedObservation>.stride }
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    init() {}

    deinit { unmap() }

    /// Appends `chunk`, growing the mapping (to twice its size, at least 1 MiB) when full.
    ///
    /// - Throws: `MemoryFileError.systemCallFailed` when the system has no memory to give.
    func append(_ chunk: UnsafeBufferPointer<PackedObservation>) throws {
        guard let source = chunk.baseAddress, chunk.count > 0 else { return }
        if count + chunk.count > capacity { try grow(toHold: count + chunk.count) }
        (base.unsafelyUnwrapped + count).update(from: source, count: chunk.count)
        count += chunk.count
    }

    /// Sorts the observations by `PackedObservation.precedes` and merges them by the kernel's
    /// rules (``ObservationMerge``); afterwards the store holds just the records kept.
    func sortAndMerge(allowsSharing: Bool, collision: (RmapMapError) -> Void) {
        guard let base, count > 0 else { return }
        let all = UnsafeMutableBufferPointer(start: base, count: count)
        Self.introsort(all)
        count = ObservationMerge.merge(sorted: all, allowsSharing: allowsSharing, collision: collision)
    }

    /// Calls `body` with the held records in order, once each; every page the walk has read
    /// past goes back to the system, and the store is empty afterwards (even when `body`
    /// throws).
    func drain(_ body: (DrainingObservations) throws -> Void) rethrows {
        defer { unmap() }
        try body(DrainingObservations(store: self))
    }

    /// The records of a draining store, as the bulk loader reads them.
    struct DrainingObservations: Sequence {
        typealias Element = RmapRecord
        fileprivate let store: ObservationStore

        /// The number of records.
        var count: Int { store.count }

        func makeIterator() -> Iterator { Iterator(store: store) }

        /// Reads the records in order, giving pages back behind itself.
        struct Iterator: IteratorProtocol {
            fileprivate let store: ObservationStore
            private var position = 0
            /// Records before this index lie on pages already given back.
            private var released = 0

            fileprivate init(store: ObservationStore) { self.store = store }

            mutating func next() -> RmapRecord? {
                guard position < store.count, let base = store.base else { return nil }
                defer { position += 1 }
                // Every 1 MiB read, give back the whole pages before the record being read.
                if position - released >= (1 << 20) / ObservationStore.recordBytes {
                    store.release(upTo: position)
                    released = position
                }
                return base[position].record
            }
        }
    }

    // MARK: Memory

    private func grow(toHold needed: Int) throws {
        let minimum = (1 << 20) / Self.recordBytes
        var newCapacity = max(capacity * 2, minimum)
        while newCapacity < needed { newCapacity *= 2 }
        let oldBytes = capacity * Self.recordBytes, newBytes = newCapacity * Self.recordBytes
        let moved: UnsafeMutableRawPointer?
        if let base {
            moved = cxfs_mremap_move(UnsafeMutableRawPointer(base), oldBytes, newBytes)
        } else {
            let result = mmap(nil, newBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            moved = result == MAP_FAILED ? nil : result
        }
        guard let moved else {
            throw MemoryFileError.systemCallFailed(call: base == nil ? "mmap(observations)" : "mremap(observations)",
                                                  errno: errno, offset: 0, length: newBytes)
        }
        base = moved.bindMemory(to: PackedObservation.self, capacity: newCapacity)
        capacity = newCapacity
    }

    /// Gives back the whole pages before record `index` (their contents are gone).
    private func release(upTo index: Int) {
        guard let base else { return }
        let bytes = index * Self.recordBytes / Self.pageSize * Self.pageSize
        if bytes > 0 { _ = madvise(UnsafeMutableRawPointer(base), bytes, MADV_DONTNEED) }
    }

    private func unmap() {
        if let base { munmap(UnsafeMutableRawPointer(base), capacity * Self.recordBytes) }
        base = nil
        capacity = 0
        count = 0
    }

    // MARK: Sorting in place

    /// Sorts `a` by `PackedObservation.precedes`: quicksort with a median-of-three pivot,
    /// heapsort past a depth of 2·log₂(n) (so never quadratic), insertion sort for short
    /// ranges; no extra memory.
    static func introsort(_ a: UnsafeMutableBufferPointer<PackedObservation>) {
        guard a.count > 1 else { return }
        sortRange(a, 0, a.count, depthLimit: 2 * (Int.bitWidth - a.count.leadingZeroBitCount))
        insertionSort(a, 0, a.count)
    }

    private static func sortRange(_ a: UnsafeMutableBufferPointer<PackedObservation>, _ low: Int, _ high: Int,
                                  depthLimit: Int) {
        var low = low, high = high, depth = depthLimit
        // Ranges of 16 or fewer are left for the final insertion sort.
        while high - low > 16 {
            if depth == 0 {
                heapsort(UnsafeMutableBufferPointer(rebasing: a[low..<high]))
                return
            }
            depth -= 1
            let split = partition(a, low, high)
            // Recurse into the smaller side, loop on the larger: the stack stays O(log n).
            if split - low < high - split {
                sortRange(a, low, split, depthLimit: depth)
                low = split
            } else {
                sortRange(a, split, high, depthLimit: depth)
                high = split
            }
        }
    }

    /// Hoare partition of `a[low..<high]` around the median of its first, middle and last
    /// elements; returns `split` with `a[low..<split]` ≤ pivot ≤ `a[split..<high]`, both
    /// sides non-empty.
    private static func partition(_ a: UnsafeMutableBufferPointer<PackedObservation>, _ low: Int, _ high: Int) -> Int {
        let precedes = PackedObservation.precedes
        let mid = low + (high - low) / 2
        if precedes(a[mid], a[low]) { a.swapAt(mid, low) }
        if precedes(a[high - 1], a[mid]) {
            a.swapAt(high - 1, mid)
            if precedes(a[mid], a[low]) { a.swapAt(mid, low) }
        }
        // a[low] ≤ pivot ≤ a[high - 1]: each scan stops before leaving the range.
        let pivot = a[mid]
        var i = low, j = high - 1
        while true {
            repeat { i += 1 } while precedes(a[i], pivot)
            repeat { j -= 1 } while precedes(pivot, a[j])
            if i >= j { return j + 1 }
            a.swapAt(i, j)
        }
    }

    private static func insertionSort(_ a: UnsafeMutableBufferPointer<PackedObservation>, _ low: Int, _ high: Int) {
        guard high - low > 1 else { return }
        for i in (low + 1)..<high {
            let x = a[i]
            var j = i
            while j > low, PackedObservation.precedes(x, a[j - 1]) {
                a[j] = a[j - 1]
                j -= 1
            }
            a[j] = x
        }
    }

    private static func heapsort(_ a: UnsafeMutableBufferPointer<PackedObservation>) {
        func siftDown(_ start: Int, _ end: Int) {
            var root = start
            while 2 * root + 1 < end {
                var child = 2 * root + 1
                if child + 1 < end, PackedObservation.precedes(a[child], a[child + 1]) { child += 1 }
                guard PackedObservation.precedes(a[root], a[child]) else { return }
                a.swapAt(root, child)
                root = child
            }
        }
        let n = a.count
        for start in stride(from: n / 2 - 1, through: 0, by: -1) { siftDown(start, n) }
        for end in stride(from: n - 1, to: 0, by: -1) {
            a.swapAt(0, end)
            siftDown(0, end)
        }
    }
}
