import Synchronization
import XFSBTree
import XFSBuffer

/// The buffers one disk store currently holds, so that a block read again while held is
/// handed out again instead of locked twice.
///
/// The file target hands out buffers locked, and its lock is not recursive. The engine can
/// ask for a block it already holds: `BTreeCursor.duplicate()` re-reads the original's
/// path, and a corrupt tree can point a child pointer back at an ancestor on the path. A
/// second locking read would wait on itself forever; instead the store adds a hold to the
/// buffer it already has (libxfs finds such a buffer already locked by the transaction).
/// A block reached at the wrong level then fails the engine's level check, naming it.
final class HeldBuffers: Sendable {
    private let buffers = Mutex<[Int64: (buffer: Buffer, holds: Int)]>([:])

    /// The buffer at `address`: one more hold on it when this store already holds it,
    /// otherwise what `read` returns (a locked, held buffer).
    func acquire(_ address: DiskAddress, on target: FileTarget, read: () throws -> Buffer) throws -> Buffer {
        let again = buffers.withLock { held -> Buffer? in
            guard let entry = held[address.sectors] else { return nil }
            held[address.sectors] = (entry.buffer, entry.holds + 1)
            target.hold(entry.buffer)
            return entry.buffer
        }
        if let again { return again }
        let buffer = try read()
        buffers.withLock { $0[address.sectors] = (buffer, 1) }
        return buffer
    }

    /// Drops one hold; the last one also unlocks the buffer.
    func release(_ buffer: Buffer, on target: FileTarget) {
        let last = buffers.withLock { held -> Bool in
            guard let entry = held[buffer.diskAddress.sectors], entry.holds > 1 else {
                held[buffer.diskAddress.sectors] = nil
                return true
            }
            held[buffer.diskAddress.sectors] = (entry.buffer, entry.holds - 1)
            return false
        }
        if last { target.release(buffer) } else { target.releaseHold(buffer) }
    }
}

/// Checks a btree block's CRC32c when it is read from disk (the CRC half of libxfs'
/// `*_read_verify`; the engine checks the header fields).
struct BTreeBlockCRCVerifier: BufferVerifier {
    let name: String
    let crcOffset: Int

    func verifyRead(_ buffer: Buffer) throws(VerificationFailure) {
        guard buffer.withUnsafeBytes({ CRC32C.verify($0, crcFieldAt: crcOffset) }) else {
            throw failure("bad CRC", in: buffer)
        }
    }

    /// Stamps the CRC over the block as it is about to be written.
    func verifyWrite(_ buffer: Buffer) throws(VerificationFailure) {
        CRC32C.update(buffer.unsafeMutableBytes, crcFieldAt: crcOffset)
    }
}

/// The header fields the kernel's read verifiers check besides the CRC and what the engine
/// checks: the filesystem's uuid and the block's owner (its AG, or its inode). A block with
/// another uuid or owner belongs to another filesystem, AG or file. Checked on every read,
/// not only the first (the buffer cache is shared by every store of an image), so a block
/// claimed by two trees is refused by the one it does not belong to. Nil when both match.
func ownershipProblem(_ buffer: Buffer, _ header: BTreeHeaderFormat, owner: UInt64, uuid: BTreeUUID) -> String? {
    let block = BTreeBlock(buffer.unsafeMutableBytes.baseAddress.unsafelyUnwrapped)
    let found = block.uuid(header)
    if found != uuid { return "uuid \(found) does not match the filesystem's \(uuid)" }
    let foundOwner = block.owner(header)
    if foundOwner != owner { return "owner \(foundOwner), expected \(header == .short ? "AG " : "inode ")\(owner)" }
    return nil
}

/// A read-only store for one AG btree of an image (bnobt, cntbt, inobt, finobt,
/// refcountbt, rmapbt): 32-bit AG block pointers, short v5 headers owned by the AG, CRC
/// checked as each block is read. Root and height come from the AG header.
///
/// Thread safety: a store (and its cursor) belongs to one thread; stores of one image on
/// several threads share its thread-safe buffer cache.
public final class AGBTreeStore<Format: BTreeRecordFormat>: BTreeBlockStore {
    public typealias Pointer = UInt32
    public typealias BlockHandle = Buffer

    /// The image the tree is read from.
    public let image: XFSImage
    /// The AG number (and so the header owner).
    public let agno: UInt32
    public let root: UInt32
    public let height: Int
    public let maxHeight: Int
    public let blockSize: Int
    public let uuid: BTreeUUID
    private let agLength: UInt32
    private let firstBlock: UInt32
    private let verifier: BTreeBlockCRCVerifier
    private let held = HeldBuffers()

    /// The tree of AG `agno` whose root and height the AG header gives; `maxHeight` is the
    /// filesystem's limit for this tree type.
    public init(image: XFSImage, agno: UInt32, root: UInt32, height: Int, maxHeight: Int) {
        self.image = image
        self.agno = agno
        self.root = root
        self.height = height
        self.maxHeight = maxHeight
        self.blockSize = Int(image.geometry.blockSize)
        self.uuid = image.metadataUUID
        self.agLength = image.geometry.agLength(agno)
        self.firstBlock = image.geometry.agflBlock + 1
        self.verifier = BTreeBlockCRCVerifier(name: Format.name, crcOffset: BTreeHeaderFormat.short.checksumOffset)
    }

    public var owner: UInt64 { UInt64(agno) }

    public func diskAddress(of pointer: UInt32) -> UInt64 { image.geometry.daddr(agno: agno, agbno: pointer) }

    /// Inside the AG and past its header blocks.
    public func isValid(_ pointer: UInt32) -> Bool { pointer >= firstBlock && pointer < agLength }

    /// Starts reading a valid block into the page cache.
    public func readAhead(_ pointer: UInt32) {
        guard isValid(pointer) else { return }
        image.target.readAhead(at: DiskAddress(Int64(diskAddress(of: pointer))), length: blockSize)
    }

    /// Reads the block (CRC checked), or holds it again when this store already holds it.
    /// Throws `XFSFormatError` naming the AG and block for a bad CRC or a short image.
    public func readBlock(_ pointer: UInt32) throws -> Buffer {
        let address = DiskAddress(Int64(diskAddress(of: pointer)))
        let buffer = try held.acquire(address, on: image.target) {
            do {
                return try image.target.readBuffer(at: address, length: blockSize, verifier: verifier)
            } catch BufferError.verificationFailed(let failure) {
                throw XFSFormatError(.badCRC, "AG \(agno) \(Format.name) block \(pointer)", failure.check)
            } catch BufferError.readPastEnd(_, _, let got) {
                throw XFSFormatError(.truncated, "AG \(agno) \(Format.name) block \(pointer)", "the image ends inside the block (\(got) bytes read)")
            }
        }
        if let problem = ownershipProblem(buffer, .short, owner: owner, uuid: uuid) {
            release(buffer)
            throw XFSFormatError(.corrupt, "AG \(agno) \(Format.name) block \(pointer)", problem)
        }
        return buffer
    }

    public func memory(of handle: Buffer) -> UnsafeMutableRawPointer { handle.unsafeMutableBytes.baseAddress.unsafelyUnwrapped }
    public func release(_ handle: Buffer) { held.release(handle, on: image.target) }

    // A disk tree read for checking is never changed.
    public func setRoot(_ root: UInt32, height: Int) { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
    public func newBlock(_ pointer: UInt32) throws -> Buffer { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
    public func markDirty(_ handle: Buffer, range: Range<Int>) { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
    public func allocateBlock() throws -> UInt32? { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
    public func freeBlock(_ handle: Buffer, at pointer: UInt32) throws { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
}

/// A held block of a `BmbtStore`: a buffer of the image, or the root kept in the inode.
public struct BmbtBlockHandle {
    /// The image buffer; nil for the root in the inode.
    let buffer: Buffer?
    /// The block's bytes.
    let memory: UnsafeMutableRawPointer
}

/// A read-only store for one inode fork's whole bmbt, root included.
///
/// The root of a bmbt lives in the inode fork, not in a block. So that the engine can walk
/// the tree like any other (lookups, record walks, sibling-chained block visits, the
/// verifier), the store presents the root as a *synthetic block*: a node formatted in
/// memory from the fork's keys and pointers, at a pointer value no real block can have.
/// Every other block is read from the image: 64-bit fsblock pointers, long v5 headers owned
/// by the inode, CRC checked as each block is read.
///
/// Thread safety: as `AGBTreeStore`.
public final class BmbtStore: BTreeBlockStore {
    public typealias Pointer = UInt64
    public typealias BlockHandle = BmbtBlockHandle

    /// The pointer standing for the root in the inode (above every valid fsblock).
    public static let inodeRootPointer: UInt64 = .max - 1

    public let image: XFSImage
    /// The inode that owns the fork.
    public let inode: UInt64
    public let height: Int
    public let maxHeight: Int
    public let blockSize: Int
    public let uuid: BTreeUUID
    private let verifier: BTreeBlockCRCVerifier
    private let held = HeldBuffers()
    private let rootBlock: UnsafeMutableRawPointer

    /// The bmbt whose root is `root`, in a fork of `inode`.
    ///
    /// - Throws: `XFSFormatError` when the root's level is 0 or it holds more entries than
    ///   a node block can.
    public init(image: XFSImage, inode: UInt64, root: BmbtRoot) throws {
        guard root.level >= 1 else {
            throw XFSFormatError(.corrupt, "inode \(inode) bmbt root", "level 0: a bmbt root in the inode is always a node")
        }
        self.image = image
        self.inode = inode
        self.height = Int(root.level) + 1
        self.maxHeight = max(height, 9)
        self.blockSize = Int(image.geometry.blockSize)
        self.uuid = image.metadataUUID
        self.verifier = BTreeBlockCRCVerifier(name: BmbtFormat.name, crcOffset: BTreeHeaderFormat.long.checksumOffset)
        rootBlock = .allocate(byteCount: blockSize, alignment: 8)
        rootBlock.initializeMemory(as: UInt8.self, repeating: 0, count: blockSize)
        let layout = BTreeLayout(format: BmbtFormat.self, store: self)
        guard root.pointers.count <= layout.limits.nodeMax, root.keys.count == root.pointers.count else {
            rootBlock.deallocate()
            throw XFSFormatError(.corrupt, "inode \(inode) bmbt root",
                                 "\(root.pointers.count) entries do not fit a node of \(layout.limits.nodeMax)")
        }
        let block = BTreeBlock(rootBlock)
        block.formatHeader(magic: BmbtFormat.magic, level: Int(root.level), numrecs: root.pointers.count,
                           left: UInt64.null, right: UInt64.null, blkno: Self.inodeRootPointer, owner: inode, uuid: uuid)
        for (i, (key, pointer)) in zip(root.keys, root.pointers).enumerated() {
            BmbtFormat.storeKey(key, to: block.key(i, layout))
            block.setPointer(pointer, i, layout)
        }
    }

    deinit { rootBlock.deallocate() }

    public var root: UInt64 { Self.inodeRootPointer }
    public var owner: UInt64 { inode }

    public func diskAddress(of pointer: UInt64) -> UInt64 {
        pointer == Self.inodeRootPointer ? pointer : image.geometry.daddr(fsBlock: pointer)
    }

    /// The root in the inode, or a block inside an AG past its header sectors.
    public func isValid(_ pointer: UInt64) -> Bool {
        if pointer == Self.inodeRootPointer { return true }
        guard let (_, agbno) = image.geometry.split(fsBlock: pointer) else { return false }
        return agbno > image.geometry.agflBlock
    }

    /// Starts reading a valid block (not the root, which is in the inode) into the page
    /// cache.
    public func readAhead(_ pointer: UInt64) {
        guard pointer != Self.inodeRootPointer, isValid(pointer) else { return }
        image.target.readAhead(at: DiskAddress(Int64(diskAddress(of: pointer))), length: blockSize)
    }

    /// Reads the block (CRC checked), or holds it again when this store already holds it;
    /// the root comes from the inode. Throws `XFSFormatError` naming the inode and block for
    /// a bad CRC or a short image.
    public func readBlock(_ pointer: UInt64) throws -> BmbtBlockHandle {
        if pointer == Self.inodeRootPointer { return BmbtBlockHandle(buffer: nil, memory: rootBlock) }
        let address = DiskAddress(Int64(diskAddress(of: pointer)))
        let buffer = try held.acquire(address, on: image.target) {
            do {
                return try image.target.readBuffer(at: address, length: blockSize, verifier: verifier)
            } catch BufferError.verificationFailed(let failure) {
                throw XFSFormatError(.badCRC, "inode \(inode) bmbt block \(pointer)", failure.check)
            } catch BufferError.readPastEnd(_, _, let got) {
                throw XFSFormatError(.truncated, "inode \(inode) bmbt block \(pointer)", "the image ends inside the block (\(got) bytes read)")
            }
        }
        if let problem = ownershipProblem(buffer, .long, owner: inode, uuid: uuid) {
            held.release(buffer, on: image.target)
            throw XFSFormatError(.corrupt, "inode \(inode) bmbt block \(pointer)", problem)
        }
        return BmbtBlockHandle(buffer: buffer, memory: buffer.unsafeMutableBytes.baseAddress.unsafelyUnwrapped)
    }

    public func memory(of handle: BmbtBlockHandle) -> UnsafeMutableRawPointer { handle.memory }

    public func release(_ handle: BmbtBlockHandle) {
        if let buffer = handle.buffer { held.release(buffer, on: image.target) }
    }

    public func setRoot(_ root: UInt64, height: Int) { preconditionFailure("bmbt of inode \(inode) is read-only") }
    public func newBlock(_ pointer: UInt64) throws -> BmbtBlockHandle { preconditionFailure("bmbt of inode \(inode) is read-only") }
    public func markDirty(_ handle: BmbtBlockHandle, range: Range<Int>) { preconditionFailure("bmbt of inode \(inode) is read-only") }
    public func allocateBlock() throws -> UInt64? { preconditionFailure("bmbt of inode \(inode) is read-only") }
    public func freeBlock(_ handle: BmbtBlockHandle, at pointer: UInt64) throws { preconditionFailure("bmbt of inode \(inode) is read-only") }
}
