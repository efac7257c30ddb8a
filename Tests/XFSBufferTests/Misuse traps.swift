import Testing
import XFSBuffer

/// Misuse of buffers is a precondition failure that stops the process (each case runs in
/// a child process), with a control case.
@Suite("Buffer misuse traps")
struct BufferMisuseTrapTests {
    @Test("releasing a buffer twice traps")
    func doubleRelease() async {
        await #expect(processExitsWith: .failure) {
            let target = try MemoryTarget(name: "trap", maximumSize: 16 * MemoryTarget.blockSize)
            let buffer = try target.getBuffer(at: DiskAddress(0), length: MemoryTarget.blockSize)
            target.release(buffer)
            target.release(buffer)
        }
    }

    @Test("asking a memory target for less than a page is an error, not a trap")
    func misalignedIsAnError() async {
        await #expect(processExitsWith: .success) {
            let target = try MemoryTarget(name: "trap", maximumSize: 16 * MemoryTarget.blockSize)
            do {
                _ = try target.getBuffer(at: DiskAddress(0), length: 512)
                fatalError("a 512-byte memory buffer was handed out")
            } catch BufferError.misalignedMemoryBuffer {
            }
        }
    }

    @Test("one get and one release do not trap (the control case)")
    func controlCase() async {
        await #expect(processExitsWith: .success) {
            let target = try MemoryTarget(name: "trap", maximumSize: 16 * MemoryTarget.blockSize)
            let buffer = try target.getBuffer(at: DiskAddress(0), length: MemoryTarget.blockSize)
            target.release(buffer)
        }
    }
}
