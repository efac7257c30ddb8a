/// A disk address in 512-byte basic blocks (XFS's `xfs_daddr_t`), whatever the device's
/// sector or block size.
public struct DiskAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The number of 512-byte units from the start of the device.
    public var sectors: Int64

    /// Bytes per basic block: 512.
    public static let basicBlockSize = 512

    /// The address `sectors` basic blocks from the start.
    @inlinable
    public init(_ sectors: Int64) {
        self.sectors = sectors
    }

    /// The address of `byteOffset`, which must be a multiple of 512.
    @inlinable
    public init(byteOffset: Int) {
        precondition(byteOffset >= 0 && byteOffset % DiskAddress.basicBlockSize == 0,
                     "byte offset \(byteOffset) is not a non-negative multiple of 512")
        self.sectors = Int64(byteOffset / DiskAddress.basicBlockSize)
    }

    /// The address's byte offset from the start of the device.
    @inlinable
    public var byteOffset: Int { Int(sectors) * DiskAddress.basicBlockSize }

    /// Orders by position on the device.
    @inlinable
    public static func < (lhs: DiskAddress, rhs: DiskAddress) -> Bool { lhs.sectors < rhs.sectors }

    /// "daddr 0x…", as XFS prints it.
    public var description: String { "daddr 0x" + String(sectors, radix: 16) }
}
