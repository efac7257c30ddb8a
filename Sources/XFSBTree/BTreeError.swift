/// Which structural check a block or record failed (libxfs verifiers return the failing
/// check's address; we return its name).
public enum BTreeCheck: String, Sendable, Hashable, CaseIterable {
    /// The header magic is not the format's magic.
    case magic
    /// The header level is not the level the walk expected.
    case level
    /// numrecs is above maxrecs, below minrecs in a non-root block, or zero in a node.
    case numrecs
    /// The header blkno is not the block's disk address.
    case blkno
    /// The header owner is not the store's owner.
    case owner
    /// The header uuid is not the store's uuid.
    case uuid
    /// A sibling pointer is invalid, points at the block itself, or disagrees with the
    /// neighbour found through the parent.
    case siblings
    /// A child pointer is null or invalid.
    case pointer
    /// Keys or records are out of order within a block or across neighbouring blocks.
    case keyOrder
    /// A parent's low key differs from its child's first key.
    case parentKey
    /// A parent's high key differs from the largest high key in its child (overlapping).
    case highKey
    /// The tree height is zero or above the store's maximum.
    case height
    /// A block is reachable twice (a pointer cycle or shared child) or a sibling walk loops.
    case cycle
    /// A record failed the format's `check`.
    case record
    /// The store could not read the block (I/O, CRC).
    case read
}

/// One structural fault: which check failed where. The verifier returns all of them; a
/// cursor throws the first it meets as `BTreeError.corrupt`.
public struct BTreeFault: Error, Sendable, Hashable, CustomStringConvertible {
    /// The check that failed.
    public var check: BTreeCheck
    /// The block's pointer (widened to 64 bits), when a block is concerned.
    public var pointer: UInt64?
    /// The block's level (0 = leaf), when known.
    public var level: Int?
    /// The entry index within the block (0-based), when an entry is concerned.
    public var index: Int?
    /// Human-readable specifics (values found and expected).
    public var detail: String

    /// A fault with its location.
    public init(
        _ check: BTreeCheck, pointer: UInt64? = nil, level: Int? = nil, index: Int? = nil,
        detail: String
    ) {
        self.check = check
        self.pointer = pointer
        self.level = level
        self.index = index
        self.detail = detail
    }

    /// "keyOrder at block 12 level 0 index 3: ..."
    public var description: String {
        var s = check.rawValue
        if let pointer { s += " at block \(pointer)" }
        if let level { s += " level \(level)" }
        if let index { s += " index \(index)" }
        return s + ": " + detail
    }
}

/// Errors the engine throws. Corrupt blocks are reported, never trapped on; misuse of the API
/// is a precondition failure instead.
public enum BTreeError: Error, Sendable, CustomStringConvertible {
    /// A block read during an operation failed a structural check (`EFSCORRUPTED`).
    case corrupt(btree: String, BTreeFault)
    /// The store had no free block for a split or new root (`ENOSPC`).
    case noSpace(btree: String)
    /// A bulk load needs more levels than the store allows (`EOVERFLOW`).
    case tooTall(btree: String, levels: Int, maxHeight: Int)

    /// A readable summary naming the btree and the failed check.
    public var description: String {
        switch self {
        case .corrupt(let name, let fault): "\(name): corrupt btree: \(fault)"
        case .noSpace(let name): "\(name): no free block"
        case .tooTall(let name, let levels, let maxHeight):
            "\(name): \(levels) levels needed, at most \(maxHeight) allowed"
        }
    }
}
