import Testing
import XFSBuffer
@testable import XFSTransaction

/// Rejects any block whose first byte is 0xFF.
private struct FirstByteVerifier: BufferVerifier {
    var name: String { "first-byte" }
    func verifyRead(_ buffer: Buffer) throws(VerificationFailure) {
        if buffer.withUnsafeBytes({ $0[0] }) == 0xFF { throw failure("first byte is 0xFF", in: buffer) }
    }
}

@Suite("Transactions on a memory target")
struct TransactionTests {
    let page = MemoryTarget.blockSize
    let sectorsPerPage = Int64(MemoryTarget.sectorsPerBlock)

    func makeTarget() throws -> MemoryTarget {
        try MemoryTarget(name: "transaction-test", maximumSize: 64 * MemoryTarget.blockSize)
    }

    func address(_ block: Int64) -> DiskAddress { DiskAddress(block * sectorsPerPage) }

    @Test("a buffer got twice through one transaction is the same buffer, held and locked once")
    func joinTwice() throws {
        let target = try makeTarget()
        let tx = Transaction()
        let a = try tx.getBuffer(target, at: address(3), length: page)
        let b = try tx.readBuffer(target, at: address(3), length: page, verifier: nil)
        #expect(a === b)
        #expect(a.holdCount == 1)
        #expect(tx.joinedCount == 1)
        tx.join(a, from: target)
        #expect(tx.joinedCount == 1)
        try tx.commit()
        #expect(a.holdCount == 0)
    }

    @Test("a transaction keeps its one target between operations, and drops it for others")
    func keptTarget() throws {
        let tx = Transaction()
        weak var first: MemoryTarget?
        do {
            let target = try makeTarget()
            first = target
            let buffer = try tx.getBuffer(target, at: address(2), length: page)
            try tx.commit()
            #expect(buffer.holdCount == 0)
        }
        #expect(first != nil, "kept for the next operation")
        // One operation each on more targets than a transaction may join at once: each
        // empty transaction drops the target it kept.
        for number in 0..<(Transaction.maximumTargets + 3) {
            let target = try makeTarget()
            let buffer = try tx.getBuffer(target, at: address(Int64(number)), length: page)
            tx.log(buffer, range: 0..<1)
            try tx.commit()
            #expect(buffer.holdCount == 0 && !buffer.isDirty)
        }
        #expect(first == nil, "dropped once the transaction joined another target")
        // Two targets in one transaction: both are dropped at its end.
        weak var second: MemoryTarget?
        do {
            let a = try makeTarget(), b = try makeTarget()
            second = b
            _ = try tx.getBuffer(a, at: address(0), length: page)
            _ = try tx.getBuffer(b, at: address(0), length: page)
            tx.cancel()
        }
        #expect(second == nil)
    }

    @Test("logging marks a buffer dirty; commit verifies, cleans and releases it; changes stay")
    func logAndCommit() throws {
        let target = try makeTarget()
        let tx = Transaction()
        let buffer = try tx.readBuffer(target, at: address(1), length: page, verifier: FirstByteVerifier())
        buffer.withUnsafeMutableBytes { $0[10] = 42 }
        tx.log(buffer, range: 10..<11)
        #expect(buffer.isDirty)
        #expect(tx.isDirty)
        try tx.commit()
        #expect(!buffer.isDirty)
        #expect(buffer.holdCount == 0)
        #expect(tx.joinedCount == 0)
        let again = try tx.readBuffer(target, at: address(1), length: page, verifier: nil)
        #expect(again.withUnsafeBytes { $0[10] } == 42)
        try tx.commit()
    }

    @Test("commit reports the first verifier failure by its check, and still detaches every buffer")
    func commitFailureDetachesAll() throws {
        let target = try makeTarget()
        let tx = Transaction()
        var buffers: [Buffer] = []
        for block in 0..<4 {
            let buffer = try tx.getBuffer(target, at: address(Int64(block)), length: page)
            buffer.verifier = FirstByteVerifier()
            buffer.withUnsafeMutableBytes { $0[0] = block == 1 || block == 2 ? 0xFF : 1 }
            tx.log(buffer, range: 0..<1)
            buffers.append(buffer)
        }
        #expect {
            try tx.commit()
        } throws: { error in
            "\(error)".contains("first byte is 0xFF") && "\(error)".contains("0x8")
        }
        #expect(tx.joinedCount == 0)
        #expect(buffers.allSatisfy { $0.holdCount == 0 && !$0.isDirty })
    }

    @Test("an unchanged buffer is released at once; a changed one stays joined until commit")
    func releaseRules() throws {
        let target = try makeTarget()
        let tx = Transaction()
        let clean = try tx.getBuffer(target, at: address(5), length: page)
        let changed = try tx.getBuffer(target, at: address(6), length: page)
        tx.log(changed, range: 0..<8)
        tx.release(clean)
        tx.release(changed)
        #expect(clean.holdCount == 0)
        #expect(changed.holdCount == 1)
        #expect(tx.joinedCount == 1)
        try tx.commit()
        #expect(changed.holdCount == 0)
    }

    @Test("a large transaction (past the lookup tables' threshold) finds, releases and logs its buffers like a small one, across removals")
    func largeTransaction() throws {
        let target = try MemoryTarget(name: "transaction-large", maximumSize: 512 * MemoryTarget.blockSize)
        let tx = Transaction()
        var buffers: [Buffer] = []
        for block in 0..<300 {
            let buffer = try tx.getBuffer(target, at: address(Int64(block)), length: page)
            if block % 3 == 0 { tx.log(buffer, range: 0..<8) }
            buffers.append(buffer)
        }
        #expect(tx.joinedCount == 300)
        // Every buffer is found again, by address and by identity, and held once.
        for (block, buffer) in buffers.enumerated() {
            let again = try tx.getBuffer(target, at: address(Int64(block)), length: page)
            #expect(again === buffer)
            tx.release(again)
        }
        #expect(tx.joinedCount == 300)
        // Releasing the unlogged ones removes them (shifting the rest); the logged stay and
        // are still found.
        for (block, buffer) in buffers.enumerated() where block % 3 != 0 { tx.release(buffer) }
        #expect(tx.joinedCount == 100)
        for (block, buffer) in buffers.enumerated() {
            #expect(buffer.holdCount == (block % 3 == 0 ? 1 : 0), "block \(block)")
        }
        for block in stride(from: 0, to: 300, by: 3) {
            let again = try tx.getBuffer(target, at: address(Int64(block)), length: page)
            #expect(again === buffers[block])
            tx.log(again, range: 8..<16)
            tx.release(again)
        }
        #expect(tx.joinedCount == 100)
        // And more joins after the removals.
        for block in 300..<400 { _ = try tx.getBuffer(target, at: address(Int64(block)), length: page) }
        #expect(tx.joinedCount == 200)
        #expect(try tx.getBuffer(target, at: address(150), length: page) === buffers[150])
        try tx.commit()
        #expect(buffers.allSatisfy { $0.holdCount == 0 })
    }

    @Test("a buffer got twice stays joined until both references are released (bli_recur)")
    func referencesCounted() throws {
        let target = try makeTarget()
        let tx = Transaction()
        let first = try tx.readBuffer(target, at: address(2), length: page, verifier: nil)
        let second = try tx.getBuffer(target, at: address(2), length: page)
        #expect(first === second)
        tx.release(first)
        #expect(tx.joinedCount == 1)
        #expect(first.holdCount == 1)
        second.withUnsafeMutableBytes { $0[0] = 9 }
        tx.log(second, range: 0..<1)
        tx.release(second)
        #expect(tx.joinedCount == 1, "a logged buffer stays until the transaction ends")
        try tx.commit()
        #expect(first.holdCount == 0)
    }

    @Test("commit punches the pages of invalidated (freed) buffers, giving the memory back")
    func invalidatePunches() throws {
        let target = try makeTarget()
        let tx = Transaction()
        for block in 0..<8 {
            let buffer = try tx.getBuffer(target, at: address(Int64(block)), length: page)
            buffer.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 7) }
            tx.log(buffer, range: 0..<page)
        }
        try tx.commit()
        let before = try target.residentBytes()
        #expect(before >= 8 * page)
        for block in 0..<4 {
            let buffer = try tx.readBuffer(target, at: address(Int64(block)), length: page, verifier: nil)
            tx.invalidate(buffer)
        }
        try tx.commit()
        #expect(try target.residentBytes() == before - 4 * page)
        let reread = try tx.readBuffer(target, at: address(0), length: page, verifier: nil)
        #expect(reread.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
        try tx.commit()
    }

    @Test("cancel of an undoable transaction puts back every changed byte, freed blocks included")
    func cancelRestores() throws {
        let target = try makeTarget()
        let setup = Transaction()
        for block in 0..<3 {
            let buffer = try setup.getBuffer(target, at: address(Int64(block)), length: page)
            buffer.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: UInt8(block + 1)) }
            setup.log(buffer, range: 0..<page)
        }
        try setup.commit()
        let residentBefore = try target.residentBytes()

        let tx = Transaction(keepingBeforeImages: true)
        let b0 = try tx.readBuffer(target, at: address(0), length: page, verifier: nil)
        tx.willChange(b0)
        b0.withUnsafeMutableBytes { $0[100] = 0xEE }
        tx.log(b0, range: 100..<101)
        let b1 = try tx.readBuffer(target, at: address(1), length: page, verifier: nil)
        tx.invalidate(b1)
        tx.cancel()

        #expect(try target.residentBytes() == residentBefore)
        let check = Transaction()
        for block in 0..<3 {
            let buffer = try check.readBuffer(target, at: address(Int64(block)), length: page, verifier: nil)
            #expect(buffer.withUnsafeBytes { $0.allSatisfy { $0 == UInt8(block + 1) } }, "block \(block)")
            #expect(!buffer.isStale && !buffer.isDirty)
        }
        try check.commit()
    }
}
