import Testing
import XFSTestSupport
@testable import XFSInMemoryBTrees

private struct Abandon: Error {}

@Suite("Record index transactions")
struct IndexTransactionTests {
    @Test("Commit keeps every change; rollback restores records, count and tree exactly",
          arguments: [DuplicateKeys.refused, .allowed])
    func commitAndRollback(duplicates: DuplicateKeys) throws {
        let index = try tinyIndex(Extent.self, duplicateKeys: duplicates)
        for start in 0..<300 { try index.insert(Extent(start: UInt64(start) * 3, length: 1, owner: 1)) }
        let before = Array(index)
        let blocks = index.blockCount, height = index.height

        let transaction = index.beginTransaction()
        for start in 0..<400 { try transaction.insert(Extent(start: UInt64(start) * 3 + 1, length: 2, owner: 2)) }
        for start in 0..<150 { #expect(try transaction.delete(key: UInt64(start) * 3) != nil) }
        #expect(index.count == 550)
        #expect(Array(index).count == 550, "reads see the open transaction's changes")
        transaction.rollback()
        #expect(transaction.hasEnded)
        #expect(index.count == 300)
        #expect(Array(index) == before)
        #expect(index.blockCount == blocks && index.height == height)
        #expect(index.verify().isClean)
        #expect(throws: RecordIndexError.transactionEnded) { try transaction.insert(Extent(start: 1, length: 1, owner: 0)) }
        #expect(throws: RecordIndexError.transactionEnded) { try transaction.commit() }

        try index.withTransaction { transaction in
            for start in 0..<400 { try transaction.insert(Extent(start: UInt64(start) * 3 + 1, length: 2, owner: 2)) }
        }
        #expect(index.count == 700)
        #expect(index.verify().isClean)
        try index.insert(Extent(start: 100_000, length: 1, owner: 3)) // outside a transaction again
        #expect(index.count == 701)
    }

    @Test("A body that throws rolls its transaction back")
    func throwingBody() throws {
        let index = try tinyIndex(Extent.self)
        try index.insert(Extent(start: 1, length: 1, owner: 1))
        #expect(throws: Abandon.self) {
            try index.withTransaction { transaction in
                for start in 2..<500 { try transaction.insert(Extent(start: UInt64(start), length: 1, owner: 1)) }
                try transaction.delete(key: 1)
                throw Abandon()
            }
        }
        #expect(Array(index) == [Extent(start: 1, length: 1, owner: 1)])
        #expect(index.verify().isClean)
    }

    @Test("A refused insert inside a transaction keeps the transaction and its earlier changes")
    func refusalInTransaction() throws {
        let index = try RecordIndex<Extent>()
        try index.withTransaction { transaction in
            try transaction.insert(Extent(start: 1, length: 1, owner: 1))
            #expect(throws: RecordIndexError.duplicateKey("1")) {
                try transaction.insert(Extent(start: 1, length: 1, owner: 2))
            }
            try transaction.insert(Extent(start: 2, length: 1, owner: 1))
        }
        #expect(Array(index).map(\.start) == [1, 2])
    }

    @Test("A transaction dropped without commit is rolled back")
    func droppedTransaction() throws {
        let index = try RecordIndex<Extent>()
        do {
            let transaction = index.beginTransaction()
            try transaction.insert(Extent(start: 1, length: 1, owner: 1))
        }
        #expect(index.isEmpty)
        try index.insert(Extent(start: 2, length: 1, owner: 1))
        #expect(index.count == 1)
    }

    @Test("Changing the index beside its open transaction traps; a control case does not")
    func changeBesideTransaction() async {
        await #expect(processExitsWith: .failure) {
            let index = try RecordIndex<Extent>()
            let transaction = index.beginTransaction()
            try index.insert(Extent(start: 1, length: 1, owner: 1))
            transaction.rollback()
        }
        await #expect(processExitsWith: .success) {
            let index = try RecordIndex<Extent>()
            let transaction = index.beginTransaction()
            try transaction.insert(Extent(start: 1, length: 1, owner: 1))
            try transaction.commit()
            try index.insert(Extent(start: 2, length: 1, owner: 1))
        }
    }
}
