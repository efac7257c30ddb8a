import CXFSShims
import XFSBTree
import XFSBuffer

/// A new AG btree built in memory, block by block, to be written to the image later: the
/// writing half of the disk stores.
///
/// The bulk loader formats each block through `newBlock` (v5 short header: blkno, owner =
/// the AG, the filesystem's uuid, LSN 0), and the engine can read the staged tree back
/// (`readBlock`) to verify it before a byte reaches the disk. ``takeSealedBlocks()`` then runs
/// the write verifier over every block (its CRC is stamped there, as a file target does
/// before a `pwrite`) and hands out the blocks' bytes with their byte offsets in the image,
/// neighbouring blocks in one write.
///
/// Blocks come only from the loader's claims: the store never allocates nor frees, and a
/// pointer it has not staged is not part of the tree.
///
/// Thread safety: one thread at a time (the bulk loader's, then the verifier's).
public final class StagedAGBTreeStore<Format: BTreeRecordFormat>: BTreeBlockStore {
    public typealias Pointer = UInt32
    public typealias BlockHandle = Buffer

    /// The AG number (and so the header owner).
    public let agno: UInt32
    public let blockSize: Int
    public let maxHeight: Int
    public let uuid: BTreeUUID
    public private(set) var root: UInt32 = .null
    public private(set) var height: Int = 0
    private let geometry: Geometry
    private let agLength: UInt32
    private let verifier: BTreeBlockCRCVerifier
    /// The staged blocks, by AG block number, in the order they were claimed.
    private var blocks: [UInt32: Buffer] = [:]
    private var order: [UInt32] = []

    /// An empty staged tree for AG `agno` of `image`; `maxHeight` is the filesystem's limit
    /// for this tree type.
    public init(image: XFSImage, agno: UInt32, maxHeight: Int) {
        self.agno = agno
        self.geometry = image.geometry
        self.blockSize = Int(image.geometry.blockSize)
        self.maxHeight = maxHeight
        self.uuid = image.metadataUUID
        self.agLength = image.geometry.agLength(agno)
        self.verifier = BTreeBlockCRCVerifier(name: Format.name, crcOffset: BTreeHeaderFormat.short.checksumOffset)
    }

    public var owner: UInt64 { UInt64(agno) }
    public func diskAddress(of pointer: UInt32) -> UInt64 { geometry.daddr(agno: agno, agbno: pointer) }
    public func isValid(_ pointer: UInt32) -> Bool { pointer > geometry.agflBlock && pointer < agLength }
    public func setRoot(_ root: UInt32, height: Int) {
        self.root = root
        self.height = height
    }

    /// The staged block at `pointer`.
    ///
    /// - Throws: `XFSFormatError` when the tree has no block there (a pointer the loader
    ///   never claimed: the staged tree is wrong).
    public func readBlock(_ pointer: UInt32) throws -> Buffer {
        guard let buffer = blocks[pointer] else {
            throw XFSFormatError(.corrupt, "AG \(agno) new \(Format.name)", "block \(pointer) was never staged")
        }
        return buffer
    }

    /// A zeroed block at `pointer`, staged.
    public func newBlock(_ pointer: UInt32) throws -> Buffer {
        precondition(blocks[pointer] == nil, "AG \(agno) new \(Format.name): block \(pointer) claimed twice")
        let buffer = Buffer(diskAddress: DiskAddress(Int64(diskAddress(of: pointer))), ownedLength: blockSize)
        blocks[pointer] = buffer
        order.append(pointer)
        return buffer
    }

    public func memory(of handle: Buffer) -> UnsafeMutableRawPointer { handle.unsafeMutableBytes.baseAddress.unsafelyUnwrapped }
    public func release(_ handle: Buffer) {}
    public func markDirty(_ handle: Buffer, range: Range<Int>) {}
    public func allocateBlock() throws -> UInt32? { preconditionFailure("a staged \(Format.name) takes blocks from its loader only") }
    public func freeBlock(_ handle: Buffer, at pointer: UInt32) throws {
        preconditionFailure("a staged \(Format.name) never frees a block")
    }

    /// The AG blocks staged, in the order they were claimed.
    public var stagedBlocks: [UInt32] { order }

    /// The largest write ``takeSealedBlocks()`` makes: 1 MiB (one block when blocks are
    /// larger).
    public static var largestWrite: Int { 1 << 20 }

    /// Hands out every staged block with its CRC stamped, as writes of (byte offset in the
    /// image, bytes) in ascending block order, and empties the store.
    ///
    /// Blocks that are neighbours on disk (the plan carves each tree's blocks from the end
    /// of one free extent) go out together, in writes of up to ``largestWrite`` bytes: a
    /// few large writes instead of one per block. Each block's buffer is let go once its
    /// bytes are copied, and the memory it held is given back to the system after each
    /// write, so the tree is held about once, not twice, on its way to the writer.
    public func takeSealedBlocks() -> [(byteOffset: UInt64, bytes: [UInt8])] {
        let pointers = order.sorted()
        defer {
            order = []
            root = .null
            height = 0
        }
        let blocksPerWrite = max(1, Self.largestWrite / blockSize)
        var writes: [(byteOffset: UInt64, bytes: [UInt8])] = []
        var first = 0
        while first < pointers.count {
            var end = first + 1
            while end < pointers.count && end - first < blocksPerWrite && pointers[end] == pointers[end - 1] + 1 { end += 1 }
            var bytes: [UInt8] = []
            bytes.reserveCapacity((end - first) * blockSize)
            for pointer in pointers[first..<end] {
                let buffer = blocks.removeValue(forKey: pointer)!
                // The CRC stamp cannot fail.
                try? verifier.verifyWrite(buffer)
                buffer.withUnsafeBytes { bytes.append(contentsOf: $0) }
            }
            writes.append((geometry.byteOffset(agno: agno, agbno: pointers[first]), bytes))
            cxfs_release_free_heap()
            first = end
        }
        return writes
    }
}
