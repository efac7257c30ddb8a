import Testing
import XFSMemoryFile
import XFSTestSupport
@testable import XFSBuffer

@Suite("Buffer cache: LRU under a memory cap")
struct BufferCacheTests {
    let pageSize = MemoryFile.pageSize

    /// A memory target whose cache holds at most `pages` unheld clean buffers (without a
    /// lock of its own when `exclusive`).
    func target(capacityInPages pages: Int, exclusive: Bool = false) throws -> MemoryTarget {
        try MemoryTarget(name: "lru", maximumSize: 1 << 24, cacheCapacity: pages * pageSize, exclusive: exclusive)
    }

    @Test("over the cap, the least recently released clean buffers are evicted (shared and single-owner caches)",
          arguments: [false, true])
    func evictsLeastRecentlyUsed(exclusive: Bool) throws {
        let target = try target(capacityInPages: 4, exclusive: exclusive)
        #expect(target.cache.isShared == !exclusive)
        for number in 0..<4 { target.release(try target.getBuffer(at: block(number), length: pageSize)) }
        target.release(try target.getBuffer(at: block(0), length: pageSize)) // 0 is now the most recent
        target.release(try target.getBuffer(at: block(4), length: pageSize))
        target.release(try target.getBuffer(at: block(5), length: pageSize))
        #expect(!target.cache.contains(block(1)) && !target.cache.contains(block(2)))
        for number in [0, 3, 4, 5] { #expect(target.cache.contains(block(number)), "block \(number)") }
        let statistics = target.cache.statistics
        #expect(statistics.evictions == 2 && statistics.cachedBuffers == 4 && statistics.evictableBuffers == 4)
        #expect(statistics.cachedBytes == 4 * pageSize)
    }

    @Test("held and dirty buffers are never evicted")
    func heldAndDirtyStay() throws {
        let target = try target(capacityInPages: 2)
        let held = try target.getBuffer(at: block(0), length: pageSize)
        let dirty = try target.getBuffer(at: block(1), length: pageSize)
        dirty.markDirty()
        target.release(dirty)
        for number in 2..<10 { target.release(try target.getBuffer(at: block(number), length: pageSize)) }
        #expect(target.cache.contains(block(0)) && target.cache.contains(block(1)))
        #expect(target.cache.statistics.evictableBuffers == 0) // over the cap: nothing clean survives
        // Once clean and released, the dirty buffer becomes evictable like any other.
        let again = try target.getBuffer(at: block(1), length: pageSize)
        again.clearDirty()
        target.release(again)
        target.release(held)
        #expect(target.cache.statistics.evictableBuffers == 2)
        for number in 2..<4 { target.release(try target.getBuffer(at: block(number), length: pageSize)) }
        #expect(!target.cache.contains(block(1)) && !target.cache.contains(block(0)))
        #expect(target.cache.statistics.cachedBuffers == 2)
    }

    @Test("a buffer got again after it was queued gets a second chance; one never got again does not")
    func secondChance() throws {
        let target = try target(capacityInPages: 3, exclusive: true)
        for number in 0..<3 { target.release(try target.getBuffer(at: block(number), length: pageSize)) }
        // 1 is used again while queued: the lazy list keeps its place, but marks it.
        target.release(try target.getBuffer(at: block(1), length: pageSize))
        target.release(try target.getBuffer(at: block(3), length: pageSize)) // evicts 0
        target.release(try target.getBuffer(at: block(4), length: pageSize)) // 1 is passed over: evicts 2
        #expect(!target.cache.contains(block(0)) && !target.cache.contains(block(2)))
        for number in [1, 3, 4] { #expect(target.cache.contains(block(number)), "block \(number)") }
        // Passed over, 1 went to the tail (behind 3 and 4) with its mark spent: it goes third.
        for number in 5..<7 { target.release(try target.getBuffer(at: block(number), length: pageSize)) }
        #expect(target.cache.contains(block(1)) && !target.cache.contains(block(3)) && !target.cache.contains(block(4)))
        target.release(try target.getBuffer(at: block(7), length: pageSize))
        #expect(!target.cache.contains(block(1)))
        #expect(target.cache.statistics.evictions == 5 && target.cache.statistics.evictableBuffers == 3)
    }

    @Test("a held buffer met by eviction leaves the list and rejoins it at its release")
    func heldBufferOnTheList() throws {
        let target = try target(capacityInPages: 2)
        target.release(try target.getBuffer(at: block(0), length: pageSize))
        target.release(try target.getBuffer(at: block(1), length: pageSize))
        let held = try target.getBuffer(at: block(0), length: pageSize) // still queued, now held
        target.release(try target.getBuffer(at: block(2), length: pageSize))
        #expect(target.cache.contains(block(0)), "held buffers are never evicted")
        #expect(!target.cache.contains(block(1)))
        #expect(target.cache.statistics.evictableBuffers == 1) // 2; 0 is held
        target.release(held)
        #expect(target.cache.statistics.evictableBuffers == 2)
        target.release(try target.getBuffer(at: block(3), length: pageSize)) // 2 is older than 0 now
        #expect(target.cache.contains(block(0)) && !target.cache.contains(block(2)))
    }

    @Test("a single-owner cache locks no buffer: a second get of a held buffer returns at once")
    func exclusiveCacheTakesNoBufferLock() throws {
        let target = try target(capacityInPages: 8, exclusive: true)
        let first = try target.getBuffer(at: block(0), length: pageSize)
        let second = try target.getBuffer(at: block(0), length: pageSize)
        #expect(first === second && first.holdCount == 2)
        target.release(second)
        target.release(first)
        #expect(first.holdCount == 0 && target.cache.statistics.evictableBuffers == 1)
    }

    @Test("a prefetch hint creates, holds and counts nothing, on single-owner and shared caches alike")
    func prefetchHintChangesNothing() throws {
        for exclusive in [true, false] {
            let target = try target(capacityInPages: 8, exclusive: exclusive)
            let buffer = try target.getBuffer(at: block(2), length: pageSize)
            target.release(buffer)
            let before = target.cache.statistics
            // Cached, uncached, past the table's end and not a page boundary.
            for address in [block(2), block(3), block(100_000), DiskAddress(1)] { target.prefetchBuffer(at: address) }
            #expect(target.cache.statistics == before, "exclusive: \(exclusive)")
            #expect(buffer.holdCount == 0 && !target.cache.contains(block(3)))
        }
    }

    @Test("an evicted memory buffer's page keeps its bytes")
    func evictionKeepsPages() throws {
        let target = try target(capacityInPages: 1)
        let buffer = try target.getBuffer(at: block(7), length: pageSize)
        buffer.withUnsafeMutableBytes { $0[0] = 0x99 }
        target.release(buffer)
        target.release(try target.getBuffer(at: block(8), length: pageSize))
        #expect(!target.cache.contains(block(7)))
        let again = try target.readBuffer(at: block(7), length: pageSize, verifier: nil)
        #expect(again !== buffer && firstByte(again) == 0x99)
        target.release(again)
    }

    @Test("purge drops every unheld clean buffer")
    func purge() throws {
        let target = try target(capacityInPages: 100)
        let held = try target.getBuffer(at: block(0), length: pageSize)
        for number in 1..<10 { target.release(try target.getBuffer(at: block(number), length: pageSize)) }
        target.cache.purge()
        #expect(target.cache.statistics.cachedBuffers == 1)
        target.release(held)
    }

    @Test("the hash table survives growth and deletion in any order", arguments: [1, 2, 3])
    func tableStress(seedOffset: UInt64) {
        var table = BufferCache.Table(slots: 4)
        var random = SeededRandom(seed: 77 + seedOffset)
        var present: [Int64: Buffer] = [:]
        for _ in 0..<5_000 {
            let sectors = Int64(random.next() % 600) * 8
            let address = DiskAddress(sectors)
            if let buffer = present[sectors] {
                #expect(table.find(address) === buffer)
                table.remove(address)
                present[sectors] = nil
                #expect(table.find(address) == nil)
            } else {
                let buffer = Buffer(diskAddress: address, ownedLength: 512)
                table.insert(buffer)
                present[sectors] = buffer
            }
        }
        #expect(table.count == present.count)
        for (sectors, buffer) in present { #expect(table.find(DiskAddress(sectors)) === buffer) }
    }
}

