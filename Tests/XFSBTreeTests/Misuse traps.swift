import Testing
import XFSBTree

/// Misuse of the engine's API is a precondition failure that stops the process, not an
/// error (each case runs in a child process), with a control case that does not trap.
@Suite("Engine misuse traps")
struct EngineMisuseTrapTests {
    @Test("update on an unpositioned cursor traps")
    func unpositionedUpdate() async {
        await #expect(processExitsWith: .failure) {
            var c = try makeKVTree().makeCursor()
            try c.update(KV(key: 1, value: 1))
            c.close()
        }
    }

    @Test("delete on an unpositioned cursor traps")
    func unpositionedDelete() async {
        await #expect(processExitsWith: .failure) {
            var c = try makeKVTree().makeCursor()
            try c.delete()
            c.close()
        }
    }

    @Test("increment on an unpositioned cursor traps")
    func unpositionedIncrement() async {
        await #expect(processExitsWith: .failure) {
            var c = try makeKVTree().makeCursor()
            _ = try c.increment()
            c.close()
        }
    }

    @Test("insertAtCursor on an unpositioned cursor traps")
    func unpositionedInsertAtCursor() async {
        await #expect(processExitsWith: .failure) {
            var c = try makeKVTree().makeCursor()
            try c.insertAtCursor(KV(key: 1, value: 1))
            c.close()
        }
    }

    @Test("a reversed query range traps")
    func reversedQuery() async {
        await #expect(processExitsWith: .failure) {
            let tree = try makeKVTree()
            var c = tree.makeCursor()
            _ = try c.query(from: 9, through: 3) { _ in .proceed }
            c.close()
        }
    }

    @Test("the same operations on a positioned cursor do not trap (the control case)")
    func controlCase() async {
        await #expect(processExitsWith: .success) {
            let tree = try makeKVTree()
            var c = tree.makeCursor()
            for k: UInt64 in [1, 2, 3] { try c.insert(KV(key: k, value: k)) }
            _ = try c.lookup(2, .equal)
            try c.update(KV(key: 2, value: 20))
            _ = try c.increment()
            try c.delete()
            _ = try c.query(from: 3, through: 9) { _ in .proceed }
            c.close()
        }
    }
}
