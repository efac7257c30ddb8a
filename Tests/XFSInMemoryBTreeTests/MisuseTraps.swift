import Testing
import XFSBTree
import XFSBuffer
import XFSFormat
import XFSTransaction
@testable import XFSInMemoryBTree

/// API misuse is a precondition failure, not an error to catch: these prove the process
/// stops (each runs in a child process).
@Suite("Misuse traps")
struct MisuseTrapTests {
    @Test("a transaction dropped with buffers still joined traps")
    func transactionDroppedWithBuffers() async {
        await #expect(processExitsWith: .failure) {
            let target = try MemoryTarget(name: "trap", maximumSize: 16 * MemoryTarget.blockSize)
            var transaction: Transaction? = Transaction()
            _ = try transaction!.getBuffer(target, at: DiskAddress(0), length: MemoryTarget.blockSize)
            transaction = nil
        }
    }

    @Test("logging a buffer that is not joined traps")
    func logUnjoined() async {
        await #expect(processExitsWith: .failure) {
            let target = try MemoryTarget(name: "trap", maximumSize: 16 * MemoryTarget.blockSize)
            let buffer = try target.getBuffer(at: DiskAddress(0), length: MemoryTarget.blockSize)
            Transaction().log(buffer, range: 0..<8)
        }
    }

    @Test("an in-memory btree used after a cancel without before-images traps")
    func lostTreeTraps() async {
        await #expect(processExitsWith: .failure) {
            let target = try MemoryTarget(name: "trap", maximumSize: 64 * MemoryTarget.blockSize)
            let tree = try InMemoryBTree<RmapFormat>(target: target)
            let transaction = Transaction()
            try tree.withCursor(in: transaction) { try $0.insert(RmapRecord(startBlock: 1, blockCount: 1, owner: 200)) }
            tree.cancel(transaction)
            try tree.withCursor(in: Transaction()) { _ = try $0.moveToFirst() }
        }
    }

    @Test("a correct cancel path does not trap (the control case)")
    func controlCase() async {
        await #expect(processExitsWith: .success) {
            let target = try MemoryTarget(name: "trap", maximumSize: 64 * MemoryTarget.blockSize)
            let tree = try InMemoryBTree<RmapFormat>(target: target)
            let transaction = Transaction(keepingBeforeImages: true)
            try tree.withCursor(in: transaction) { try $0.insert(RmapRecord(startBlock: 1, blockCount: 1, owner: 200)) }
            tree.cancel(transaction)
            let again = Transaction()
            try tree.withCursor(in: again) { _ = try $0.moveToFirst() }
            try tree.commit(again)
        }
    }
}
