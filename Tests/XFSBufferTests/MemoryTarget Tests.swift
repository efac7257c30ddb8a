import Testing
import XFSMemoryFile
@testable import XFSBuffer

@Suite("Memory target")
struct MemoryTargetTests {
    let pageSize = MemoryFile.pageSize

    @Test("a buffer is the memory file's page: no copy, no I/O")
    func bufferIsThePage() throws {
        let file = try MemoryFile(name: "xmbuf", maximumSize: 1 << 24)
        let target = MemoryTarget(file: file)
        let buffer = try target.getBuffer(at: block(3), length: pageSize)
        #expect(buffer.unsafeMutableBytes.baseAddress == (try file.unsafePageAddress(at: 3 * pageSize)))
        buffer.withUnsafeMutableBytes { $0[17] = 0xC3 }
        buffer.markDirty()
        #expect(try file.load(count: 1, at: 3 * pageSize + 17) == [0xC3])
        target.release(buffer)
        #expect(buffer.holdCount == 0)
    }

    @Test("only one page at a page-aligned address inside the target")
    func shapeAndBounds() throws {
        let target = try MemoryTarget(name: "shape", maximumSize: 16 * pageSize)
        let misaligned = #expect(throws: BufferError.self) { _ = try target.getBuffer(at: DiskAddress(1), length: pageSize) }
        #expect(misaligned == .misalignedMemoryBuffer(address: DiskAddress(1), length: pageSize, pageSize: pageSize))
        #expect(throws: BufferError.self) { _ = try target.getBuffer(at: block(0), length: 2 * pageSize) }
        let beyond = #expect(throws: BufferError.self) { _ = try target.getBuffer(at: block(16), length: pageSize) }
        #expect(beyond == .beyondTarget(address: block(16), length: pageSize, targetSize: 16 * pageSize))
        #expect(beyond?.description.contains("past the end of the target") == true)
        #expect(target.isValid(block(15)) && !target.isValid(block(16)) && !target.isValid(DiskAddress(4)))
        #expect(target.cache.statistics.cachedBuffers == 0)
    }

    @Test("a cached buffer is found again: same object, a hit")
    func hitAndMiss() throws {
        let target = try MemoryTarget(name: "hits", maximumSize: 1 << 24)
        let first = try target.getBuffer(at: block(5), length: pageSize)
        target.release(first)
        let second = try target.getBuffer(at: block(5), length: pageSize)
        #expect(first === second)
        target.release(second)
        let statistics = target.cache.statistics
        #expect(statistics.misses == 1 && statistics.hits == 1 && statistics.cachedBuffers == 1)
    }

    @Test("a length mismatch against the cached buffer is an error")
    func lengthMismatch() throws {
        let target = try MemoryTarget(name: "mismatch", maximumSize: 1 << 24)
        target.release(try target.getBuffer(at: block(2), length: pageSize))
        let error = #expect(throws: BufferError.self) { _ = try target.getBuffer(at: block(2), length: 512) }
        #expect(error == .lengthMismatch(address: block(2), cachedLength: pageSize, requestedLength: 512))
    }

    @Test("a stale buffer is punched out of the file at its last release")
    func staleIsPunched() throws {
        let file = try MemoryFile(name: "stale", maximumSize: 1 << 24)
        let target = MemoryTarget(file: file)
        let buffer = try target.getBuffer(at: block(4), length: pageSize)
        buffer.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0x66) }
        buffer.markDirty()
        target.release(buffer)
        #expect(try target.residentBytes() == pageSize)
        let again = try target.getBuffer(at: block(4), length: pageSize)
        target.hold(again) // a second holder: the first release must not drop it
        again.markStale()
        #expect(again.isStale && !again.isDirty && !again.isDone)
        target.release(again)
        #expect(target.cache.contains(block(4)))
        #expect(try target.residentBytes() == pageSize)
        target.releaseHold(again)
        #expect(!target.cache.contains(block(4)))
        #expect(try target.residentBytes() == 0)
        #expect(target.cache.statistics.staleDrops == 1)
        let reused = try target.getBuffer(at: block(4), length: pageSize)
        #expect(reused !== buffer)
        #expect(firstByte(reused) == 0)
        target.release(reused)
    }

    @Test("a stale buffer found again while held is reset for its new use")
    func staleReuse() throws {
        let target = try MemoryTarget(name: "reuse", maximumSize: 1 << 24)
        let verifier = ClosureVerifier(name: "test")
        let buffer = try target.readBuffer(at: block(1), length: pageSize, verifier: verifier)
        target.hold(buffer)
        buffer.markStale()
        target.release(buffer) // still held once (without the lock)
        let again = try target.getBuffer(at: block(1), length: pageSize)
        #expect(again === buffer)
        #expect(again.flags.isEmpty && again.verifier == nil)
        target.release(again)
        target.releaseHold(again)
        #expect(target.cache.contains(block(1)))
    }

    @Test("reads complete at once and run the read verifier once; failures name the check")
    func readVerifier() throws {
        let target = try MemoryTarget(name: "verify", maximumSize: 1 << 24)
        let verifier = ClosureVerifier(name: "rmapbt-mem")
        let buffer = try target.readBuffer(at: block(0), length: pageSize, verifier: verifier)
        #expect(buffer.isDone && buffer.verifier != nil)
        target.release(buffer)
        target.release(try target.readBuffer(at: block(0), length: pageSize, verifier: verifier))
        #expect(verifier.callLog == ["read"])

        let picky = ClosureVerifier(name: "rmapbt-mem", read: { $0.withUnsafeBytes { $0[0] } == 0x52 ? nil : "magic" })
        let error = #expect(throws: BufferError.self) {
            _ = try target.readBuffer(at: block(9), length: pageSize, verifier: picky)
        }
        #expect(error == .verificationFailed(VerificationFailure(verifier: "rmapbt-mem", check: "magic", diskAddress: block(9))))
        #expect(error?.description == "verification failed: rmapbt-mem verifier: check 'magic' failed at daddr 0x48")
        #expect(!target.cache.contains(block(9)))
    }

    @Test("the structure verifier runs on demand and surfaces as a verification error")
    func structureVerifier() throws {
        let target = try MemoryTarget(name: "structure", maximumSize: 1 << 24)
        let verifier = ClosureVerifier(name: "xfbtree", read: { $0.withUnsafeBytes { $0[1] } == 0 ? nil : "numrecs <= maxrecs" })
        let buffer = try target.readBuffer(at: block(2), length: pageSize, verifier: verifier)
        try buffer.verifyStructure()
        buffer.withUnsafeMutableBytes { $0[1] = 9 }
        let error = #expect(throws: BufferError.self) { try buffer.verifyStructure() }
        #expect(error?.description.contains("check 'numrecs <= maxrecs' failed at daddr 0x10") == true)
        target.release(buffer)
    }

    @Test("a target on a partition addresses the partition from zero")
    func partitionTarget() throws {
        let file = try MemoryFile(name: "shared", maximumSize: 1 << 26)
        let first = try file.makePartition(size: 64 * pageSize)
        let second = try file.makePartition(size: 64 * pageSize)
        let target = MemoryTarget(partition: second)
        let buffer = try target.getBuffer(at: block(0), length: pageSize)
        #expect(buffer.unsafeMutableBytes.baseAddress == (try file.unsafePageAddress(at: second.base)))
        buffer.withUnsafeMutableBytes { $0[0] = 1 }
        target.release(buffer)
        #expect(try second.residentBytes() == pageSize)
        #expect(try first.residentBytes() == 0)
        #expect(throws: BufferError.self) { _ = try target.getBuffer(at: block(64), length: pageSize) }
    }

    @Test("the pages' start and mapped length agree with the page lookup, whole file or partition")
    func pagesStartAndMappedBytes() throws {
        let file = try MemoryFile(name: "window", maximumSize: 1 << 26)
        _ = try file.makePartition(size: 1024 * pageSize)
        let partition = try file.makePartition(size: 1024 * pageSize)
        for target in [MemoryTarget(file: file), MemoryTarget(partition: partition)] {
            for page in [0, 5, 700] {
                let buffer = try target.getBuffer(at: block(page), length: pageSize)
                #expect(target.mappedBytes > page * pageSize && target.mappedBytes <= target.size)
                #expect(target.unsafePagesStart + page * pageSize == buffer.unsafeMutableBytes.baseAddress)
                #expect(target.unsafeMappedPage(of: block(page)) == target.unsafePagesStart + page * pageSize)
                target.release(buffer)
            }
            let mapped = target.mappedBytes
            #expect(mapped % pageSize == 0)
            if mapped < target.size {
                #expect(target.unsafeMappedPage(of: block(mapped / pageSize)) == nil)
            }
        }
    }
}
