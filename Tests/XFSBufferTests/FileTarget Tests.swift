import Synchronization
import Testing
import XFSTestSupport
@testable import XFSBuffer
#if canImport(Glibc)
import Glibc
#endif

/// A 64 KiB image whose byte i is (i / 512 + i) % 251: every sector differs.
func patternImage() -> [UInt8] {
    (0..<65_536).map { UInt8(($0 / 512 + $0) % 251) }
}

@Suite("File target")
struct FileTargetTests {
    @Test("a read returns the device's bytes, once, through the read verifier")
    func readsAndVerifies() throws {
        let image = TemporaryFile(contents: patternImage())
        let target = try FileTarget(path: image.path)
        let verifier = ClosureVerifier(name: "agf")
        let buffer = try target.readBuffer(at: DiskAddress(8), length: 4096, verifier: verifier)
        #expect(buffer.withUnsafeBytes { Array($0) } == Array(patternImage()[4096..<8192]))
        #expect(buffer.isDone && !buffer.isDirty)
        target.release(buffer)
        target.release(try target.readBuffer(at: DiskAddress(8), length: 4096, verifier: verifier))
        #expect(verifier.callLog == ["read"])
        #expect(!target.isWritable && target.deviceSize == 65_536)
    }

    @Test("a read verifier failure names the check and drops the buffer")
    func readVerifierFailure() throws {
        let image = TemporaryFile(contents: patternImage())
        let target = try FileTarget(path: image.path)
        let verifier = ClosureVerifier(name: "xfs_agf", read: { _ in "agf_magicnum == XAGF" })
        let error = #expect(throws: BufferError.self) {
            _ = try target.readBuffer(at: DiskAddress(2), length: 512, verifier: verifier)
        }
        #expect(error?.description == "verification failed: xfs_agf verifier: check 'agf_magicnum == XAGF' failed at daddr 0x2")
        #expect(!target.cache.contains(DiskAddress(2)))
    }

    @Test("a read past the end of the device is an error naming the address")
    func readPastEnd() throws {
        let image = TemporaryFile(contents: patternImage())
        let target = try FileTarget(path: image.path)
        let error = #expect(throws: BufferError.self) {
            _ = try target.readBuffer(at: DiskAddress(120), length: 8192, verifier: nil)
        }
        #expect(error == .readPastEnd(address: DiskAddress(120), length: 8192, bytesRead: 4096))
        #expect(error?.description.hasPrefix("read past end of device at daddr 0x78") == true)
    }

    @Test("the write verifier runs before pwrite: on failure nothing is written")
    func writeVerifierFirst() throws {
        let image = TemporaryFile(contents: patternImage())
        let target = try FileTarget(path: image.path, writable: true)
        let verifier = ClosureVerifier(name: "bnobt", write: { $0.withUnsafeBytes { $0[0] } == 0xFF ? "bb_level" : nil })
        let buffer = try target.readBuffer(at: DiskAddress(4), length: 1024, verifier: verifier)
        buffer.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xFF) }
        buffer.markDirty()
        let error = #expect(throws: BufferError.self) { try target.writeBuffer(buffer) }
        #expect(error?.description.contains("check 'bb_level' failed at daddr 0x4") == true)
        #expect(image.contents() == patternImage())
        #expect(buffer.isDirty)
        buffer.withUnsafeMutableBytes { $0[0] = 0x01 }
        try target.writeBuffer(buffer)
        try target.sync()
        #expect(!buffer.isDirty)
        target.release(buffer)
        var expected = patternImage()
        expected.replaceSubrange(2048..<3072, with: [0x01] + [UInt8](repeating: 0xFF, count: 1023))
        #expect(image.contents() == expected)
        #expect(verifier.callLog == ["read", "write", "write"])
    }

    @Test("a read-only target refuses writes and syncs")
    func readOnly() throws {
        let image = TemporaryFile(contents: patternImage())
        let target = try FileTarget(path: image.path)
        let buffer = try target.getBuffer(at: DiskAddress(0), length: 512)
        let error = #expect(throws: BufferError.self) { try target.writeBuffer(buffer) }
        #expect(error?.description.contains("opened read-only") == true)
        #expect(throws: BufferError.self) { try target.sync() }
        target.release(buffer)
        #expect(image.contents() == patternImage())
    }

    @Test("getBuffer gives a zeroed, unread buffer; a new block can be written")
    func getWithoutRead() throws {
        let image = TemporaryFile(contents: patternImage())
        let target = try FileTarget(path: image.path, writable: true)
        let buffer = try target.getBuffer(at: DiskAddress(16), length: 512)
        #expect(!buffer.isDone && buffer.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
        buffer.withUnsafeMutableBytes { $0[0] = 0xAA }
        buffer.markDirty()
        try target.writeBuffer(buffer)
        target.release(buffer)
        #expect(image.contents()[8192] == 0xAA)
    }

    @Test("opening a missing image says which path and errno")
    func openFailure() {
        let error = #expect(throws: BufferError.self) { _ = try FileTarget(path: "/nonexistent/image.img") }
        #expect(error == .openFailed(path: "/nonexistent/image.img", errno: ENOENT))
        #expect(error?.description.contains("ENOENT") == true)
    }
}

/// Counts system calls across threads.
final class CallCounter: Sendable {
    private let calls = Mutex(0)
    /// Counts one call and returns its number, from 1.
    func next() -> Int { calls.withLock { $0 += 1; return $0 } }
    /// Calls counted so far.
    var count: Int { calls.withLock { $0 } }
}

/// System calls that interrupt every other call and move at most `chunk` bytes a time.
func flakySystemCalls(chunk: Int, counter: CallCounter) -> FileTargetSystemCalls {
    var calls = FileTargetSystemCalls.live
    let live = FileTargetSystemCalls.live
    calls.pread = { descriptor, buffer, offset in
        let call = counter.next()
        if call % 2 == 1 { return .failure(.interrupted) }
        let short = UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(chunk, buffer.count)])
        return live.pread(descriptor, short, offset)
    }
    calls.pwrite = { descriptor, buffer, offset in
        let call = counter.next()
        if call % 2 == 1 { return .failure(.interrupted) }
        let short = UnsafeRawBufferPointer(rebasing: buffer[..<min(chunk, buffer.count)])
        return live.pwrite(descriptor, short, offset)
    }
    calls.fsync = { descriptor in
        let call = counter.next()
        return call % 2 == 1 ? .failure(.interrupted) : live.fsync(descriptor)
    }
    return calls
}

@Suite("File target: injected interruptions, short transfers and errors")
struct FileTargetFaultTests {
    @Test("EINTR and short reads are retried and continued", arguments: [1, 100, 511, 4096])
    func interruptedShortReads(chunk: Int) throws {
        let image = TemporaryFile(contents: patternImage())
        let counter = CallCounter()
        let target = try FileTarget(path: image.path, systemCalls: flakySystemCalls(chunk: chunk, counter: counter))
        let buffer = try target.readBuffer(at: DiskAddress(24), length: 4096, verifier: nil)
        #expect(buffer.withUnsafeBytes { Array($0) } == Array(patternImage()[12_288..<16_384]))
        target.release(buffer)
        #expect(counter.count == 2 * ((4096 + chunk - 1) / chunk))
    }

    @Test("EINTR and short writes are retried and continued", arguments: [1, 300, 4096])
    func interruptedShortWrites(chunk: Int) throws {
        let image = TemporaryFile(contents: patternImage())
        let counter = CallCounter()
        let target = try FileTarget(path: image.path, writable: true,
                                    systemCalls: flakySystemCalls(chunk: chunk, counter: counter))
        let buffer = try target.getBuffer(at: DiskAddress(64), length: 4096)
        buffer.withUnsafeMutableBytes { bytes in for index in bytes.indices { bytes[index] = UInt8(index % 7) } }
        try target.writeBuffer(buffer)
        try target.sync()
        target.release(buffer)
        var expected = patternImage()
        expected.replaceSubrange(32_768..<36_864, with: (0..<4096).map { UInt8($0 % 7) })
        #expect(image.contents() == expected)
    }

    @Test("an I/O error is reported with the call, errno and address")
    func ioError() throws {
        let image = TemporaryFile(contents: patternImage())
        var calls = FileTargetSystemCalls.live
        calls.pread = { _, _, _ in .failure(.ioError) }
        calls.pwrite = { _, _, _ in .failure(.noSpace) }
        let target = try FileTarget(path: image.path, writable: true, systemCalls: calls)
        let readError = #expect(throws: BufferError.self) { _ = try target.readBuffer(at: DiskAddress(8), length: 512, verifier: nil) }
        #expect(readError == .systemCallFailed(call: "pread", errno: EIO, address: DiskAddress(8), length: 512))
        #expect(readError?.description.contains("pread failed at daddr 0x8, length 512: EIO") == true)
        let buffer = try target.getBuffer(at: DiskAddress(8), length: 512)
        let writeError = #expect(throws: BufferError.self) { try target.writeBuffer(buffer) }
        #expect(writeError?.description.contains("ENOSPC") == true)
        target.release(buffer)
    }
}
