/// A btree block pointer: a 32-bit AG block number (short form) or a 64-bit block number
/// (long form). The null pointer is all ones, as on disk (`NULLAGBLOCK`, `NULLFSBLOCK`).
public protocol BTreePointer: FixedWidthInteger, UnsignedInteger, Sendable {}

extension UInt32: BTreePointer {}
extension UInt64: BTreePointer {}

extension BTreePointer {
    /// The null pointer (all ones): no sibling, no block.
    @inlinable @inline(__always)
    public static var null: Self { Self.max }

    /// Whether this is the null pointer.
    @inlinable @inline(__always)
    public var isNull: Bool { self == Self.max }

    /// The pointer for messages: its value, or "null" for the null pointer, which would
    /// otherwise print as 4294967295 or 18446744073709551615.
    public var pointerText: String { isNull ? "null" : String(self) }
}

/// Which v5 block header a btree uses; it follows from the pointer width.
public enum BTreeHeaderFormat: Sendable, Equatable {
    /// 56-byte header with 32-bit siblings (AG btrees: bnobt, cntbt, inobt, finobt, rmapbt,
    /// refcountbt). CRC at byte 52.
    case short
    /// 72-byte header with 64-bit siblings (bmbt, in-memory btrees). CRC at byte 64, pad at 68.
    case long

    /// Bytes of the header.
    @inlinable
    public var size: Int { self == .short ? 56 : 72 }

    /// Byte offset of the little-endian CRC32c field.
    @inlinable
    public var checksumOffset: Int { self == .short ? 52 : 64 }

    /// The header format of btrees whose pointers are `P`.
    @inlinable
    public static func of<P: BTreePointer>(_: P.Type) -> BTreeHeaderFormat {
        P.bitWidth == 32 ? .short : .long
    }
}

/// The 16-byte filesystem (meta) uuid stamped in every v5 btree block header, as two
/// big-endian halves: `high` is bytes 0-7, `low` is bytes 8-15.
public struct BTreeUUID: Hashable, Sendable, CustomStringConvertible {
    /// Bytes 0-7, big-endian.
    public var high: UInt64
    /// Bytes 8-15, big-endian.
    public var low: UInt64

    /// A uuid from its two big-endian halves.
    @inlinable
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A uuid from exactly 16 bytes, in on-disk order.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "a uuid has 16 bytes, not \(bytes.count)")
        var h: UInt64 = 0
        var l: UInt64 = 0
        for i in 0..<8 { h = h << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { l = l << 8 | UInt64(bytes[i]) }
        self.init(high: h, low: l)
    }

    /// The all-zero uuid.
    public static let zero = BTreeUUID(high: 0, low: 0)

    /// The usual 8-4-4-4-12 hexadecimal form.
    public var description: String {
        let h = String(high, radix: 16), l = String(low, radix: 16)
        let hex = String(repeating: "0", count: 16 - h.count) + h
            + String(repeating: "0", count: 16 - l.count) + l
        let c = Array(hex)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-"
            + String(c[16..<20]) + "-" + String(c[20..<32])
    }
}

/// How many entries a block may hold: libxfs' `maxrecs`/`minrecs`, for leaves (records) and
/// for nodes (key/pointer pairs). The root is exempt from the minimum.
public struct BTreeRecordLimits: Hashable, Sendable {
    /// Most records in a leaf.
    public var leafMax: Int
    /// Fewest records in a non-root leaf.
    public var leafMin: Int
    /// Most key/pointer entries in a node.
    public var nodeMax: Int
    /// Fewest entries in a non-root node.
    public var nodeMin: Int

    /// Limits with explicit values.
    @inlinable
    public init(leafMax: Int, leafMin: Int, nodeMax: Int, nodeMin: Int) {
        self.leafMax = leafMax
        self.leafMin = leafMin
        self.nodeMax = nodeMax
        self.nodeMin = nodeMin
    }

    /// Limits where each minimum is half the maximum, as XFS computes them.
    @inlinable
    public init(leafMax: Int, nodeMax: Int) {
        self.init(leafMax: leafMax, leafMin: leafMax / 2, nodeMax: nodeMax, nodeMin: nodeMax / 2)
    }

    /// The XFS limits for one block size: `(blockSize - header) / recordSize` for leaves and
    /// `(blockSize - header) / (keySlot + pointerSize)` for nodes, minimum half of each.
    @inlinable
    public static func computed<Format: BTreeRecordFormat, Pointer: BTreePointer>(
        blockSize: Int, format: Format.Type, pointer: Pointer.Type
    ) -> BTreeRecordLimits {
        let header = BTreeHeaderFormat.of(Pointer.self).size
        let slot = Format.isOverlapping ? 2 * Format.keySize : Format.keySize
        let room = blockSize - header
        return BTreeRecordLimits(
            leafMax: room / Format.recordSize, nodeMax: room / (slot + Pointer.bitWidth / 8))
    }

    /// The maximum for blocks at `level` (0 = leaf).
    @inlinable @inline(__always)
    public func maxRecords(level: Int) -> Int { level == 0 ? leafMax : nodeMax }

    /// The minimum for non-root blocks at `level` (0 = leaf).
    @inlinable @inline(__always)
    public func minRecords(level: Int) -> Int { level == 0 ? leafMin : nodeMin }
}

/// Where a btree's blocks live: the other half of libxfs' `xfs_btree_ops` (allocation, root,
/// limits, block addressing). The engine is generic over a `BTreeRecordFormat` and a store.
///
/// Three kinds of store are expected: the in-memory btree (pages of a memory buffer target,
/// buffers joined to a transaction, 64-bit pointers, root and height held in RAM), read-only
/// disk stores over real images (32-bit AG pointers or 64-bit fsblock pointers, root and
/// height from the AGF/AGI, CRC verified on read), and heap stores in tests.
///
/// Stores are classes: several cursors (and duplicated cursors inside one operation) share a
/// store, its root and its buffers. Make them `final` so the engine's calls are direct.
///
/// ## Contract
/// - **Handles.** `readBlock` and `newBlock` return a held handle; the engine calls
///   `release` exactly once for each. Two handles of the same pointer held at the same time
///   must show the *same memory* (a buffer cache), because the engine may hold a block
///   through two cursors and write through either. `memory(of:)` stays valid until release.
/// - **Checks.** The engine checks magic, level, numrecs, blkno and sibling sanity of every
///   block it reads, and throws `BTreeError` on failure. A disk store verifies the CRC (and
///   may verify more) inside `readBlock` and throws its own error on I/O or CRC failure.
/// - **Writes.** The engine writes block bytes directly through `memory(of:)` and reports
///   each written byte range with `markDirty`. It writes headers with lsn 0 and CRC 0; a
///   store that persists CRC-protected blocks computes the CRC when it writes them out.
/// - **Allocation.** `allocateBlock` returns a pointer not in use (nil when out of space);
///   the engine then calls `newBlock` and formats the block. `freeBlock` is called while the
///   engine still holds the block's handle (so a buffer-backed store can mark it stale); the
///   engine releases the handle right after.
/// - **Root.** `setRoot(_:height:)` is called when the root splits, collapses, or a bulk load
///   finishes; the store keeps both values (in RAM or in an AG header).
public protocol BTreeBlockStore: AnyObject {
    /// Block pointers: `UInt32` (short-form header) or `UInt64` (long-form header).
    associatedtype Pointer: BTreePointer
    /// A held block: a buffer, a page reference, or a raw address.
    associatedtype BlockHandle

    /// Bytes per block.
    var blockSize: Int { get }
    /// The root block. Every tree has a root, possibly an empty leaf.
    var root: Pointer { get }
    /// The number of levels (1 = the root is a leaf).
    var height: Int { get }
    /// Records a new root and height.
    func setRoot(_ root: Pointer, height: Int)
    /// The most levels a tree in this store may have; deeper trees are corrupt. Bounds every
    /// walk, so cycles and absurd heights never loop.
    var maxHeight: Int { get }

    /// The record limits to use, given the ones XFS computes from the block size. Defaults to
    /// `suggested`; test and memory stores may return smaller limits. The pointer array of a
    /// node starts at `header + nodeMax * keySlot`, so limits decide the node layout.
    func recordLimits(suggested: BTreeRecordLimits) -> BTreeRecordLimits

    /// The owner written in (and expected in) block headers: the AG number (short form) or
    /// the inode number / in-memory owner (long form).
    var owner: UInt64 { get }
    /// The filesystem meta uuid written in (and expected in) block headers.
    var uuid: BTreeUUID { get }
    /// The header `blkno` of the block at `pointer`: its disk address in 512-byte units.
    func diskAddress(of pointer: Pointer) -> UInt64
    /// Whether `pointer` may address a block of this tree (inside the AG, the file, ...).
    /// Never called with the null pointer.
    func isValid(_ pointer: Pointer) -> Bool

    /// Reads (or finds cached) and holds the block at `pointer`. Throws on I/O or CRC errors.
    func readBlock(_ pointer: Pointer) throws -> BlockHandle
    /// Holds the block at `pointer` without reading it, for the engine to format afresh.
    func newBlock(_ pointer: Pointer) throws -> BlockHandle
    /// The bytes of a held block (`blockSize` of them), valid until `release`.
    func memory(of handle: BlockHandle) -> UnsafeMutableRawPointer
    /// Drops the engine's hold on a block.
    func release(_ handle: BlockHandle)
    /// Notes that the engine changed `range` (byte offsets) of a held block.
    func markDirty(_ handle: BlockHandle, range: Range<Int>)
    /// Where the bytes of the block at `pointer` are, when the store knows without reading
    /// it (a memory target's page), for prefetch hints only: the engine never loads or
    /// stores through it. Defaults to nil (no hints).
    func prefetchAddress(of pointer: Pointer) -> UnsafeRawPointer?
    /// Asks for what holding the block at `pointer` touches besides its bytes (a cached
    /// buffer's own fields), as a hint: the engine calls it when it knows the block it will
    /// hold next. Defaults to nothing.
    func prefetchHold(of pointer: Pointer)
    /// Asks the device to start reading the block at `pointer`, which a walk over the whole
    /// tree will read soon (its parent was just read): a hint for stores on a disk, which
    /// then serve many reads at once instead of one at a time. Defaults to nothing.
    func readAhead(_ pointer: Pointer)
    /// The bytes of the block at `pointer` without holding it, when the store can lend them
    /// while a cursor rests on the block: the memory stays valid as long as the store, and
    /// nothing but the tree's cursors changes it (a single-owner memory target, whose pages
    /// stay mapped). A descent then reads its nodes, and a lookup its leaf, without a hold,
    /// and the engine takes the holds (`readBlock`) before it writes to any of them. Nil
    /// (the default): every block the engine reads is held.
    func peekBlock(_ pointer: Pointer) -> UnsafeMutableRawPointer?

    /// How an insert into a full block makes room. Defaults to `.kernel` for a store that
    /// does not say (disk stores: the kernel's shapes on disk); the in-memory store defaults
    /// to `.batchedShifts`.
    var growthPolicy: BTreeGrowthPolicy { get }

    /// A free block for the tree, or nil when there is no space.
    func allocateBlock() throws -> Pointer?
    /// Returns the block at `pointer` (still held through `handle`) to free space.
    func freeBlock(_ handle: BlockHandle, at pointer: Pointer) throws
}

extension BTreeBlockStore {
    /// libxfs' order of preference.
    @inlinable
    public var growthPolicy: BTreeGrowthPolicy { .kernel }

    /// The XFS limits unchanged.
    @inlinable
    public func recordLimits(suggested: BTreeRecordLimits) -> BTreeRecordLimits { suggested }

    /// No prefetch hints.
    @inlinable
    public func prefetchAddress(of pointer: Pointer) -> UnsafeRawPointer? { nil }

    /// No prefetch hints.
    @inlinable
    public func prefetchHold(of pointer: Pointer) {}

    /// No read-ahead.
    @inlinable
    public func readAhead(_ pointer: Pointer) {}

    /// Every block is held.
    @inlinable
    public func peekBlock(_ pointer: Pointer) -> UnsafeMutableRawPointer? { nil }

    /// The header format that follows from the pointer width.
    @inlinable
    public var headerFormat: BTreeHeaderFormat { .of(Pointer.self) }
}

/// How an insert into a full block makes room for the new entry.
public enum BTreeGrowthPolicy: Sendable, Hashable {
    /// libxfs' order (`xfs_btree_make_block_unfull`): move the block's last entry into its
    /// right sibling, else its first entry into its left sibling, else split it in half.
    case kernel
    /// The kernel's order, but a shift moves several entries: into the left sibling, every
    /// entry before the insert position that the sibling has room for; into the right
    /// sibling, entries after the insert position, up to half the sibling's room. Inserts
    /// in ascending key order (at the right edge, or just before a few larger records) then
    /// shift once per blockful instead of once per insert and leave full blocks behind them;
    /// random inserts shift less often and leave blocks fuller. Every block keeps at least
    /// its minimum of entries, so the trees are valid XFS btrees either way.
    ///
    /// The right sibling is still tried first: a left shift moves the block's first
    /// entries, whose lines an insert has not asked for, and measured slower.
    ///
    /// The in-memory btree's default: on a million random rmap records, one committed
    /// transaction per insert, inserts take about 0.7 of the kernel policy's time and the
    /// tree about 0.94 of its memory (`xfs-rmap bench btree`; BENCHMARKS.md).
    case batchedShifts
}
