/// Where everything sits inside a block of one btree in one store: header size, pointer
/// width, record and key slot sizes, and the record limits (which place the pointer array).
public struct BTreeLayout: Sendable, Hashable {
    /// Bytes per block.
    public let blockSize: Int
    /// Short (56-byte) or long (72-byte) v5 header.
    public let headerFormat: BTreeHeaderFormat
    /// Bytes of the header.
    public let headerSize: Int
    /// Bytes of one pointer (4 or 8).
    public let pointerSize: Int
    /// Bytes of one record.
    public let recordSize: Int
    /// Bytes of one key.
    public let keySize: Int
    /// Bytes of one node key slot: one key, or a low and a high key when overlapping.
    public let keySlotSize: Int
    /// Whether node slots carry high keys.
    public let isOverlapping: Bool
    /// Entry limits per level.
    public let limits: BTreeRecordLimits
    /// Byte offset of a node's pointer array: `header + nodeMax * keySlot`.
    public let pointerArrayOffset: Int

    /// The layout of `Format` blocks in `store`, with the store's record limits. Traps
    /// (API misuse) when the limits do not fit the block or are below 2.
    @inlinable
    public init<Format: BTreeRecordFormat, Store: BTreeBlockStore>(
        format: Format.Type, store: Store
    ) {
        let header = BTreeHeaderFormat.of(Store.Pointer.self)
        let suggested = BTreeRecordLimits.computed(
            blockSize: store.blockSize, format: Format.self, pointer: Store.Pointer.self)
        self.init(
            format: Format.self, pointer: Store.Pointer.self, blockSize: store.blockSize,
            limits: store.recordLimits(suggested: suggested), header: header)
    }

    /// A layout from explicit parts.
    @inlinable
    public init<Format: BTreeRecordFormat, Pointer: BTreePointer>(
        format: Format.Type, pointer: Pointer.Type, blockSize: Int, limits: BTreeRecordLimits,
        header: BTreeHeaderFormat? = nil
    ) {
        let header = header ?? .of(Pointer.self)
        self.blockSize = blockSize
        self.headerFormat = header
        self.headerSize = header.size
        self.pointerSize = Pointer.bitWidth / 8
        self.recordSize = Format.recordSize
        self.keySize = Format.keySize
        self.isOverlapping = Format.isOverlapping
        self.keySlotSize = Format.isOverlapping ? 2 * Format.keySize : Format.keySize
        self.limits = limits
        self.pointerArrayOffset = header.size + limits.nodeMax * keySlotSize
        precondition(
            limits.leafMax >= 2 && limits.nodeMax >= 2 && limits.leafMin >= 1
                && limits.nodeMin >= 1 && limits.leafMin <= limits.leafMax / 2
                && limits.nodeMin <= limits.nodeMax / 2,
            "btree limits \(limits) need max >= 2 and 1 <= min <= max/2")
        precondition(
            headerSize + limits.leafMax * recordSize <= blockSize
                && pointerArrayOffset + limits.nodeMax * pointerSize <= blockSize,
            "btree limits \(limits) do not fit a \(blockSize)-byte block")
    }

    /// Bytes of one entry's key slot (node) or record (leaf) at `level`.
    @inlinable @inline(__always)
    public func slotSize(level: Int) -> Int { level == 0 ? recordSize : keySlotSize }
}

/// A view of one btree block's bytes: header fields, records, keys and pointers, all
/// big-endian at any alignment. This is the only type in the engine that touches raw memory.
///
/// ```
///  leaf (level 0)                         node (level > 0)
///  +--------------------+                 +--------------------+
///  | header (56 or 72)  |                 | header (56 or 72)  |
///  +--------------------+                 +--------------------+
///  | record 0           |  hdr            | key 0 [lo | hi]    |  hdr
///  | record 1           |  + i*recsize    | key 1 [lo | hi]    |  + i*keyslot
///  | ...                |                 | ... (nodeMax slots)|
///  +--------------------+                 +--------------------+
///  | unused             |                 | ptr 0, ptr 1, ...  |  hdr + nodeMax*keyslot
///  +--------------------+                 +--------------------+  + i*ptrsize
/// ```
///
/// - Warning: the view does not own or bound-check its memory; the cursor keeps indices below
///   the limits and the block held while a view is in use.
@frozen
public struct BTreeBlock {
    /// The first byte of the block.
    public let base: UnsafeMutableRawPointer

    /// A view of the block at `base`.
    @inlinable @inline(__always)
    public init(_ base: UnsafeMutableRawPointer) { self.base = base }

    // MARK: Big-endian field access

    @inlinable @inline(__always)
    func load<T: FixedWidthInteger>(_ offset: Int, as: T.Type) -> T {
        T(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    @inlinable @inline(__always)
    func store<T: FixedWidthInteger>(_ value: T, _ offset: Int) {
        base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }

    // MARK: Header

    /// The magic number.
    @inlinable
    public var magic: UInt32 {
        @inline(__always) get { load(0, as: UInt32.self) }
        nonmutating set { store(newValue, 0) }
    }

    /// The level (0 = leaf).
    @inlinable
    public var level: Int {
        @inline(__always) get { Int(load(4, as: UInt16.self)) }
        nonmutating set { store(UInt16(truncatingIfNeeded: newValue), 4) }
    }

    /// The number of records (leaf) or key/pointer entries (node).
    @inlinable
    public var numrecs: Int {
        @inline(__always) get { Int(load(6, as: UInt16.self)) }
        nonmutating set { store(UInt16(truncatingIfNeeded: newValue), 6) }
    }

    /// The left sibling (null at the left edge).
    @inlinable @inline(__always)
    public func leftSibling<P: BTreePointer>(_: P.Type) -> P { load(8, as: P.self) }

    /// The right sibling (null at the right edge).
    @inlinable @inline(__always)
    public func rightSibling<P: BTreePointer>(_: P.Type) -> P {
        load(P.bitWidth == 32 ? 12 : 16, as: P.self)
    }

    /// Sets the left sibling.
    @inlinable @inline(__always)
    public func setLeftSibling<P: BTreePointer>(_ p: P) { store(p, 8) }

    /// Sets the right sibling.
    @inlinable @inline(__always)
    public func setRightSibling<P: BTreePointer>(_ p: P) { store(p, P.bitWidth == 32 ? 12 : 16) }

    /// The header's disk address of this block (512-byte units).
    @inlinable @inline(__always)
    public func blkno(_ header: BTreeHeaderFormat) -> UInt64 {
        load(header == .short ? 16 : 24, as: UInt64.self)
    }

    /// The header's owner (AG number in short headers, 64-bit owner in long headers).
    @inlinable
    public func owner(_ header: BTreeHeaderFormat) -> UInt64 {
        header == .short ? UInt64(load(48, as: UInt32.self)) : load(56, as: UInt64.self)
    }

    /// The header's uuid.
    @inlinable
    public func uuid(_ header: BTreeHeaderFormat) -> BTreeUUID {
        let o = header == .short ? 32 : 40
        return BTreeUUID(high: load(o, as: UInt64.self), low: load(o + 8, as: UInt64.self))
    }

    /// Writes a complete v5 header: magic, level, numrecs, siblings, blkno, lsn 0, uuid,
    /// owner, CRC 0 (and pad 0 in long headers).
    @inlinable
    public func formatHeader<P: BTreePointer>(
        magic: UInt32, level: Int, numrecs: Int, left: P, right: P, blkno: UInt64,
        owner: UInt64, uuid: BTreeUUID
    ) {
        let header = BTreeHeaderFormat.of(P.self)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: header.size)
        self.magic = magic
        self.level = level
        self.numrecs = numrecs
        setLeftSibling(left)
        setRightSibling(right)
        if header == .short {
            store(blkno, 16)
            store(uuid.high, 32)
            store(uuid.low, 40)
            store(UInt32(truncatingIfNeeded: owner), 48)
        } else {
            store(blkno, 24)
            store(uuid.high, 40)
            store(uuid.low, 48)
            store(owner, 56)
        }
    }

    // MARK: Entries

    /// The address of record `i` (leaf).
    @inlinable @inline(__always)
    public func record(_ i: Int, _ layout: BTreeLayout) -> UnsafeMutableRawPointer {
        base + (layout.headerSize &+ i &* layout.recordSize)
    }

    /// The address of key slot `i` (node); its low key.
    @inlinable @inline(__always)
    public func key(_ i: Int, _ layout: BTreeLayout) -> UnsafeMutableRawPointer {
        base + (layout.headerSize &+ i &* layout.keySlotSize)
    }

    /// The address of the high key in slot `i` (overlapping nodes).
    @inlinable @inline(__always)
    public func highKey(_ i: Int, _ layout: BTreeLayout) -> UnsafeMutableRawPointer {
        base + (layout.headerSize &+ i &* layout.keySlotSize &+ layout.keySize)
    }

    /// The child pointer of node entry `i`.
    @inlinable @inline(__always)
    public func pointer<P: BTreePointer>(_ i: Int, _ layout: BTreeLayout, as _: P.Type) -> P {
        load(layout.pointerArrayOffset &+ i &* (P.bitWidth / 8), as: P.self)
    }

    /// Sets the child pointer of node entry `i`.
    @inlinable @inline(__always)
    public func setPointer<P: BTreePointer>(_ p: P, _ i: Int, _ layout: BTreeLayout) {
        store(p, layout.pointerArrayOffset &+ i &* (P.bitWidth / 8))
    }

    /// Moves entries `[from, from + count)` to start at `to` within this block (records, or
    /// key slots and pointers), overlapping ranges allowed.
    @inlinable
    public func moveEntries(from: Int, to: Int, count: Int, level: Int, _ layout: BTreeLayout) {
        guard count > 0, from != to else { return }
        if level == 0 {
            let s = layout.recordSize
            (base + layout.headerSize + to * s).copyMemory(
                from: base + layout.headerSize + from * s, byteCount: count * s)
        } else {
            let s = layout.keySlotSize
            (base + layout.headerSize + to * s).copyMemory(
                from: base + layout.headerSize + from * s, byteCount: count * s)
            let p = layout.pointerSize
            (base + layout.pointerArrayOffset + to * p).copyMemory(
                from: base + layout.pointerArrayOffset + from * p, byteCount: count * p)
        }
    }

    /// Copies entries `[from, from + count)` of `source` into this block at `to`.
    @inlinable
    public func copyEntries(
        from source: BTreeBlock, at from: Int, to: Int, count: Int, level: Int,
        _ layout: BTreeLayout
    ) {
        guard count > 0 else { return }
        if level == 0 {
            let s = layout.recordSize
            (base + layout.headerSize + to * s).copyMemory(
                from: source.base + layout.headerSize + from * s, byteCount: count * s)
        } else {
            let s = layout.keySlotSize
            (base + layout.headerSize + to * s).copyMemory(
                from: source.base + layout.headerSize + from * s, byteCount: count * s)
            let p = layout.pointerSize
            (base + layout.pointerArrayOffset + to * p).copyMemory(
                from: source.base + layout.pointerArrayOffset + from * p, byteCount: count * p)
        }
    }

    /// Byte range of the slots (records or key slots) of entries `[from, to)`.
    @inlinable @inline(__always)
    public static func slotRange(from: Int, to: Int, level: Int, _ layout: BTreeLayout) -> Range<Int> {
        let s = layout.slotSize(level: level)
        return (layout.headerSize + from * s)..<(layout.headerSize + to * s)
    }

    /// Byte range of the pointers of node entries `[from, to)`.
    @inlinable @inline(__always)
    public static func pointerRange(from: Int, to: Int, _ layout: BTreeLayout) -> Range<Int> {
        (layout.pointerArrayOffset + from * layout.pointerSize)..<(layout.pointerArrayOffset + to * layout.pointerSize)
    }
}
