import Testing
import XFSTestSupport
@testable import XFSMemoryFile
#if canImport(Glibc)
import Glibc
#endif

let page = MemoryFile.pageSize

@Suite("Memory file: byte ranges, holes, discard")
struct MemoryFileByteRangeTests {
    @Test("a hole reads as zeros and allocates nothing")
    func holesReadAsZeros() throws {
        let file = try MemoryFile(name: "holes", maximumSize: 1 << 30)
        try file.store([1, 2, 3], at: 10 * page)
        let before = try file.residentBytes()
        let zeros = try file.load(count: 64 * page, at: 100 * page) // past every write
        #expect(zeros.allSatisfy { $0 == 0 })
        let inside = try file.load(count: 4 * page, at: 2 * page)   // below the write
        #expect(inside.allSatisfy { $0 == 0 })
        #expect(try file.residentBytes() == before)
        #expect(before == page)
    }

    @Test("stores and loads of any size and alignment, crossing pages", arguments: [
        (0, 1), (page - 3, 7), (3 * page - 1, 2 * page + 2), (5, 3 * page), (12_345, 54_321),
    ])
    func crossingPages(offset: Int, length: Int) throws {
        let file = try MemoryFile(name: "cross", maximumSize: 1 << 24)
        var random = SeededRandom(seed: UInt64(offset * 31 + length))
        let bytes = (0..<length).map { _ in UInt8.random(in: 1...255, using: &random) }
        try file.store(bytes, at: offset)
        #expect(try file.load(count: length, at: offset) == bytes)
        // The bytes around the range are untouched zeros.
        if offset > 0 { #expect(try file.load(count: 1, at: offset - 1) == [0]) }
        #expect(try file.load(count: 1, at: offset + length) == [0])
        // Read back through a misaligned window that straddles the range's start.
        let start = max(0, offset - 2)
        let window = try file.load(count: length + 2, at: start)
        #expect(Array(window[(offset - start)..<(offset - start + length)]) == bytes)
    }

    @Test("discard punches a hole, lowers resident bytes and reads back zeros")
    func discardReturnsMemory() throws {
        let file = try MemoryFile(name: "discard", maximumSize: 1 << 26)
        try file.store([UInt8](repeating: 0xAB, count: 16 * page), at: 0)
        #expect(try file.residentBytes() == 16 * page)
        try file.discard((4 * page)..<(12 * page))
        #expect(try file.residentBytes() == 8 * page)
        #expect(try file.residentBytes(in: 0..<(16 * page)) == 8 * page)
        #expect(try file.load(count: 8 * page, at: 4 * page).allSatisfy { $0 == 0 })
        #expect(try file.load(count: 1, at: 3 * page) == [0xAB])
        #expect(try file.load(count: 1, at: 12 * page) == [0xAB])
    }

    @Test("resident bytes of a range walk SEEK_DATA and SEEK_HOLE")
    func residentBytesInRange() throws {
        let file = try MemoryFile(name: "walk", maximumSize: 1 << 26)
        for pageNumber in [1, 2, 7, 40] { try file.store([9], at: pageNumber * page + 5) }
        #expect(try file.residentBytes(in: 0..<(64 * page)) == 4 * page)
        #expect(try file.residentBytes(in: (2 * page)..<(8 * page)) == 2 * page)
        #expect(try file.residentBytes(in: (41 * page)..<(60 * page)) == 0)
        #expect(try file.residentBytes(in: (1 << 25)..<(1 << 26)) == 0) // never mapped
    }

    @Test("the maximum size is enforced with an error naming the range")
    func maximumSize() throws {
        let file = try MemoryFile(name: "max", maximumSize: 64 * page)
        try file.store([1], at: 64 * page - 1)
        let error = #expect(throws: MemoryFileError.self) { try file.store([1, 2], at: 64 * page - 1) }
        #expect(error == .beyondMaximumSize(offset: 64 * page - 1, length: 2, maximumSize: 64 * page))
        #expect(error?.description.contains("maximum size of \(64 * page) bytes") == true)
        #expect(throws: MemoryFileError.self) { _ = try file.load(count: 1, at: 64 * page) }
        #expect(throws: MemoryFileError.self) { _ = try file.unsafePageAddress(at: 64 * page) }
        #expect(throws: MemoryFileError.self) { try file.discard((63 * page)..<(65 * page)) }
    }
}

@Suite("Memory file: page window")
struct MemoryFilePageTests {
    @Test("the same page mapped twice is the same memory, and stores see through it")
    func samePageSameMemory() throws {
        let file = try MemoryFile(name: "pages", maximumSize: 1 << 30)
        let first = try file.unsafePageAddress(at: 3 * page)
        let second = try file.unsafePageAddress(at: 3 * page)
        #expect(first == second)
        first.storeBytes(of: 0x5A, toByteOffset: 100, as: UInt8.self)
        #expect(second.load(fromByteOffset: 100, as: UInt8.self) == 0x5A)
        #expect(try file.load(count: 1, at: 3 * page + 100) == [0x5A]) // pread sees the page
        try file.store([0x77], at: 3 * page + 101)                      // and the page sees pwrite
        #expect(first.load(fromByteOffset: 101, as: UInt8.self) == 0x77)
    }

    @Test("addresses stay fixed while the mapping grows far past them")
    func addressesStableAcrossGrowth() throws {
        let file = try MemoryFile(name: "growth", maximumSize: 1 << 32)
        let early = try file.unsafePageAddress(at: 0)
        early.storeBytes(of: 42, as: UInt64.self)
        let mappedBefore = file.mappedSize
        let late = try file.unsafePageAddress(at: (1 << 31) - page) // forces growth
        #expect(file.mappedSize > mappedBefore)
        #expect(late == early + ((1 << 31) - page))
        #expect(try file.unsafePageAddress(at: 0) == early)
        #expect(early.load(as: UInt64.self) == 42)
        #expect(try file.residentBytes() == page) // a mapping allocates nothing until touched
    }

    @Test("a discarded page reads zeros through the window")
    func discardThroughWindow() throws {
        let file = try MemoryFile(name: "punch", maximumSize: 1 << 24)
        let address = try file.unsafePageAddress(at: page)
        address.initializeMemory(as: UInt8.self, repeating: 0xEE, count: page)
        #expect(try file.residentBytes() == page)
        try file.discard(page..<(2 * page))
        #expect(try file.residentBytes() == 0)
        #expect(address.load(fromByteOffset: 7, as: UInt8.self) == 0)
    }

    @Test("page access from several threads returns one address per page")
    func concurrentPageAccess() async throws {
        let file = try MemoryFile(name: "threads", maximumSize: 1 << 32)
        let base = Int(bitPattern: try file.unsafePageAddress(at: 0))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    for step in 0..<2_000 {
                        let offset = ((step * 7919 + worker * 104_729) % 500_000) * page
                        let address = try file.unsafePageAddress(at: offset)
                        #expect(Int(bitPattern: address) == base + offset)
                        address.storeBytes(of: UInt8(truncatingIfNeeded: worker), toByteOffset: worker, as: UInt8.self)
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}

@Suite("Memory file: partitions")
struct MemoryFilePartitionTests {
    @Test("partitions are page-aligned, isolated and bounded")
    func isolatedAndBounded() throws {
        let file = try MemoryFile(name: "shared", maximumSize: 1 << 30)
        let first = try file.makePartition(size: 10 * page + 1)
        let second = try file.makePartition(size: 4 * page)
        #expect(first.size == 11 * page)
        #expect(second.base == first.base + first.size)
        #expect(second.base % page == 0)
        try first.store([UInt8](repeating: 1, count: first.size), at: 0)
        try second.store([UInt8](repeating: 2, count: 100), at: 0)
        #expect(try first.load(count: 1, at: first.size - 1) == [1])
        #expect(try second.load(count: 100, at: 0) == [UInt8](repeating: 2, count: 100))
        #expect(try second.load(count: 1, at: 100) == [0])
        #expect(try first.residentBytes() == 11 * page)
        #expect(try second.residentBytes() == page)
        let error = #expect(throws: MemoryFileError.self) { try second.store([1, 2], at: 4 * page - 1) }
        #expect(error == .beyondMaximumSize(offset: 4 * page - 1, length: 2, maximumSize: 4 * page))
        #expect(throws: MemoryFileError.self) { _ = try second.unsafePageAddress(at: 4 * page) }
        #expect(throws: MemoryFileError.self) { try first.discard(0..<(12 * page)) }
        // Page addresses are partition-relative.
        #expect(try second.unsafePageAddress(at: 0) == (try file.unsafePageAddress(at: second.base)))
        // Discarding in one partition leaves the other alone.
        try second.discard(0..<(4 * page))
        #expect(try second.residentBytes() == 0)
        #expect(try first.residentBytes() == 11 * page)
    }

    @Test("a freed partition returns its memory, and the top partition's space is reused")
    func freedPartition() throws {
        let file = try MemoryFile(name: "reuse", maximumSize: 64 * page)
        var partition: MemoryFilePartition? = try file.makePartition(size: 32 * page)
        let base = partition!.base
        try partition!.store([UInt8](repeating: 3, count: 8 * page), at: 0)
        #expect(try file.residentBytes() == 8 * page)
        partition = nil
        #expect(try file.residentBytes() == 0)
        let again = try file.makePartition(size: 64 * page)
        #expect(again.base == base)
        let error = #expect(throws: MemoryFileError.self) { _ = try file.makePartition(size: page) }
        #expect(error == .partitionSpaceExhausted(requested: page, available: 0))
    }
}

@Suite("Memory file: backings")
struct MemoryFileBackingTests {
    /// The mode bits and link count of the file behind `file`.
    func modeAndLinks(_ file: MemoryFile) throws -> (mode: UInt32, links: UInt) {
        let status = try file.mapping.status()
        return (UInt32(status.st_mode) & 0o777, UInt(status.st_nlink))
    }

    @Test("the automatic choice is a memfd, mode 0600")
    func automaticIsMemfd() throws {
        let file = try MemoryFile(name: "auto")
        #expect(file.backing == .memfd)
        #expect(try modeAndLinks(file).mode == 0o600)
    }

    @Test("forced backings work and are unnamed, mode 0600", arguments: ["/dev/shm", "given"])
    func forcedTemporaryFile(directory: String) throws {
        let path = directory == "given" ? try makeTemporaryDirectory() : directory
        defer { if directory == "given" { rmdir(path) } }
        let file = try MemoryFile(name: "tmpfile", maximumSize: 1 << 26,
                                  backing: .only(.temporaryFile(directory: path)))
        #expect(file.backing == .temporaryFile(directory: path))
        let (mode, links) = try modeAndLinks(file)
        #expect(mode == 0o600)
        #expect(links == 0) // O_TMPFILE: never linked into the directory
        // Everything else works the same on this backing.
        try file.store([7, 8, 9], at: 3 * page - 1)
        #expect(try file.load(count: 3, at: 3 * page - 1) == [7, 8, 9])
        #expect(try file.load(count: 8, at: 40 * page).allSatisfy { $0 == 0 })
        let address = try file.unsafePageAddress(at: 2 * page)
        #expect(address.load(fromByteOffset: page - 1, as: UInt8.self) == 7)
        try file.discard(0..<(8 * page))
        #expect(try file.load(count: 3, at: 3 * page - 1) == [0, 0, 0])
    }

    @Test("when a backing cannot be created the next one is used")
    func fallbackChain() throws {
        let file = try MemoryFile(name: "fallback", maximumSize: 1 << 24, backing: .firstAvailable([
            .temporaryFile(directory: "/nonexistent-directory"), .temporaryFile(directory: "/dev/shm"),
        ]))
        #expect(file.backing == .temporaryFile(directory: "/dev/shm"))
    }

    @Test("when no backing can be created the error lists every attempt")
    func noBacking() throws {
        let error = #expect(throws: MemoryFileError.self) {
            _ = try MemoryFile(name: "none", backing: .only(.temporaryFile(directory: "/nonexistent-directory")))
        }
        #expect(error?.description.contains("O_TMPFILE") == true)
        #expect(error?.description.contains("ENOENT") == true)
    }
}

/// A fresh directory under $TMPDIR (or /tmp), for the "directory the caller names" backing.
func makeTemporaryDirectory() throws -> String {
    let parent = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
    var template = Array("\(parent)/xfs-memfile-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    guard made != nil else { throw MemoryFileError.systemCallFailed(call: "mkdtemp", errno: errno, offset: 0, length: 0) }
    return String(cString: template.map { UInt8(bitPattern: $0) } + [])
}
