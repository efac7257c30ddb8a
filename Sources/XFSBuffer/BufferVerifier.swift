/// Checks a buffer's bytes: the `xfs_buf_ops` of XFS.
///
/// Each method throws a `VerificationFailure` naming the verifier, the check that failed and
/// the disk address (use `failure(_:in:)` to make one); returning means the bytes passed.
/// Verifiers run with the buffer held and locked.
public protocol BufferVerifier: Sendable {
    /// The structure this verifier knows, e.g. "rmapbt" or "xfs_agf".
    var name: String { get }

    /// Checks bytes just read (or, on a memory target, just mapped).
    func verifyRead(_ buffer: Buffer) throws(VerificationFailure)

    /// Checks bytes about to be written, and may update their checksum first.
    /// Runs before any byte reaches the device.
    func verifyWrite(_ buffer: Buffer) throws(VerificationFailure)

    /// Checks the structure of a buffer whose in-memory transaction is committing (the
    /// in-memory btree's blocks are never written; this is where they are checked).
    func verifyStructure(_ buffer: Buffer) throws(VerificationFailure)
}

extension BufferVerifier {
    /// By default the write checks are the read checks.
    public func verifyWrite(_ buffer: Buffer) throws(VerificationFailure) {
        try verifyRead(buffer)
    }

    /// By default the structure checks are the read checks.
    public func verifyStructure(_ buffer: Buffer) throws(VerificationFailure) {
        try verifyRead(buffer)
    }

    /// The failure of `check` on `buffer`, to throw from a verify method.
    public func failure(_ check: String, in buffer: Buffer) -> VerificationFailure {
        VerificationFailure(verifier: name, check: check, diskAddress: buffer.diskAddress)
    }
}

/// Which verifier rejected which buffer, and why.
public struct VerificationFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The verifier's name.
    public var verifier: String
    /// The check that failed, e.g. "magic" or "numrecs <= maxrecs".
    public var check: String
    /// The buffer's disk address.
    public var diskAddress: DiskAddress

    /// A failure of `check` by `verifier` at `diskAddress`.
    public init(verifier: String, check: String, diskAddress: DiskAddress) {
        self.verifier = verifier
        self.check = check
        self.diskAddress = diskAddress
    }

    /// "rmapbt verifier: check 'magic' failed at daddr 0x…".
    public var description: String {
        "\(verifier) verifier: check '\(check)' failed at \(diskAddress)"
    }
}

/// A verifier boxed once, to attach to many buffers (`Buffer.attach(_:)`) without copying
/// the existential at each verification or allocating per buffer.
public final class BufferVerifierBox: Sendable {
    /// The verifier.
    public let verifier: any BufferVerifier

    /// Boxes `verifier`.
    public init(_ verifier: any BufferVerifier) {
        self.verifier = verifier
    }
}
