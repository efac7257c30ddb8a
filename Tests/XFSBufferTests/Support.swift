import Synchronization
@testable import XFSBuffer

/// A verifier whose checks are closures returning the name of the failed check (or nil),
/// and which counts its calls.
final class ClosureVerifier: BufferVerifier {
    let name: String
    let readCheck: @Sendable (Buffer) -> String?
    let writeCheck: @Sendable (Buffer) -> String?
    let calls = Mutex<[String]>([])

    init(name: String, read: @escaping @Sendable (Buffer) -> String? = { _ in nil },
         write: @escaping @Sendable (Buffer) -> String? = { _ in nil }) {
        self.name = name
        self.readCheck = read
        self.writeCheck = write
    }

    func verifyRead(_ buffer: Buffer) throws(VerificationFailure) {
        calls.withLock { $0.append("read") }
        if let check = readCheck(buffer) { throw failure(check, in: buffer) }
    }

    func verifyWrite(_ buffer: Buffer) throws(VerificationFailure) {
        calls.withLock { $0.append("write") }
        if let check = writeCheck(buffer) { throw failure(check, in: buffer) }
    }

    var callLog: [String] { calls.withLock { $0 } }
}

/// The first byte of a buffer.
func firstByte(_ buffer: Buffer) -> UInt8 {
    buffer.withUnsafeBytes { $0[0] }
}

/// A page-sized disk address: block `number` of a memory target.
func block(_ number: Int) -> DiskAddress {
    DiskAddress(Int64(number * MemoryTarget.sectorsPerBlock))
}
