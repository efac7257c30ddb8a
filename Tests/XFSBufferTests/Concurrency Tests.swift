import Dispatch
import Synchronization
import Testing
import XFSMemoryFile
@testable import XFSBuffer

@Suite("Buffer cache: concurrent use")
struct ConcurrencyTests {
    let pageSize = MemoryFile.pageSize

    /// Four threads get and release overlapping buffers; inside the lock each checks that
    /// nobody else is inside, then bumps a plain (non-atomic) counter in the page.
    func hammer(target: MemoryTarget, blocks: Int, iterations: Int) throws -> [UInt64] {
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            var state = UInt64(worker + 1) &* 0x9E37_79B9_7F4A_7C15
            for _ in 0..<iterations {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let number = Int(state >> 33) % blocks
                do {
                    let buffer = try target.getBuffer(at: block(number), length: pageSize)
                    let bytes = buffer.unsafeMutableBytes
                    let owner = bytes.load(fromByteOffset: 8, as: UInt64.self)
                    if owner != 0 { failures.withLock { $0.append("block \(number) owned by \(owner) and \(worker + 1)") } }
                    bytes.storeBytes(of: UInt64(worker + 1), toByteOffset: 8, as: UInt64.self)
                    bytes.storeBytes(of: bytes.load(as: UInt64.self) + 1, as: UInt64.self)
                    bytes.storeBytes(of: 0, toByteOffset: 8, as: UInt64.self)
                    target.release(buffer)
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        return try (0..<blocks).map { number in
            try target.file.load(count: 8, at: number * pageSize).withUnsafeBytes { $0.load(as: UInt64.self) }
        }
    }

    @Test("4 threads on 8 shared buffers: mutual exclusion, no lost update, holds back to 0")
    func sharedHotBuffers() throws {
        let target = try MemoryTarget(name: "hot", maximumSize: 1 << 24)
        let counts = try hammer(target: target, blocks: 8, iterations: 20_000)
        #expect(counts.reduce(0, +) == 4 * 20_000)
        for number in 0..<8 {
            let buffer = try target.getBuffer(at: block(number), length: pageSize)
            #expect(buffer.holdCount == 1)
            target.release(buffer)
            #expect(buffer.holdCount == 0)
        }
        #expect(target.cache.statistics.cachedBuffers == 8)
    }

    @Test("4 threads under a tiny cap: racing inserts and evictions stay consistent")
    func racingInsertAndEvict() throws {
        let target = try MemoryTarget(name: "evict", maximumSize: 1 << 24, cacheCapacity: 3 * MemoryFile.pageSize)
        let counts = try hammer(target: target, blocks: 64, iterations: 10_000)
        #expect(counts.reduce(0, +) == 4 * 10_000)
        let statistics = target.cache.statistics
        #expect(statistics.cachedBuffers <= 3 && statistics.evictions > 0)
        #expect(statistics.cachedBuffers == statistics.evictableBuffers) // nobody holds anything
    }
}
