import Synchronization
import XFSBTree
import XFSBuffer

/// The disk addresses of the blocks one disk store currently holds.
///
/// The file target hands out buffers locked, and a lock is not recursive: a corrupt tree
/// whose pointer leads back to a block the walk already holds on its path (a child pointer
/// naming its own parent or ancestor) would make the walk wait on itself forever. Each disk
/// store therefore refuses to read a block it still holds and reports a pointer cycle.
final class HeldBlocks: Sendable {
    private let addresses = Mutex<Set<UInt64>>([])

    /// Records that `daddr` is now held; false when it already was.
    func take(_ daddr: UInt64) -> Bool {
        addresses.withLock { $0.insert(daddr).inserted }
    }

    /// Records that `daddr` is no longer held.
    func drop(_ daddr: UInt64) {
        _ = addresses.withLock { $0.remove(daddr) }
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
}

/// A read-only store for one AG btree of an image (bnobt, cntbt, inobt, finobt,
/// refcountbt, rmapbt): 32-bit AG block pointers, short v5 headers owned by the AG, CRC
/// checked as each block is read. Root and height come from the AG header.
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
    private let held = HeldBlocks()

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

    /// Reads the block (CRC checked). Throws `XFSFormatError` naming the AG and block for a
    /// bad CRC, or when the walk already holds the block (a pointer cycle).
    public func readBlock(_ pointer: UInt32) throws -> Buffer {
        let daddr = diskAddress(of: pointer)
        guard held.take(daddr) else {
            throw XFSFormatError(.corrupt, "AG \(agno) \(Format.name) block \(pointer)",
                                 "reached again while the walk holds it: a pointer cycle")
        }
        do {
            return try image.target.readBuffer(at: DiskAddress(Int64(daddr)), length: blockSize, verifier: verifier)
        } catch .verificationFailed(let failure) {
            held.drop(daddr)
            throw XFSFormatError(.badCRC, "AG \(agno) \(Format.name) block \(pointer)", failure.check)
        } catch .readPastEnd(_, _, let got) {
            held.drop(daddr)
            throw XFSFormatError(.truncated, "AG \(agno) \(Format.name) block \(pointer)", "the image ends inside the block (\(got) bytes read)")
        } catch {
            held.drop(daddr)
            throw error
        }
    }

    public func memory(of handle: Buffer) -> UnsafeMutableRawPointer { handle.unsafeMutableBytes.baseAddress.unsafelyUnwrapped }

    public func release(_ handle: Buffer) {
        held.drop(UInt64(truncatingIfNeeded: handle.diskAddress.sectors))
        image.target.release(handle)
    }

    // A disk tree read for checking is never changed.
    public func setRoot(_ root: UInt32, height: Int) { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
    public func newBlock(_ pointer: UInt32) throws -> Buffer { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
    public func markDirty(_ handle: Buffer, range: Range<Int>) { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
    public func allocateBlock() throws -> UInt32? { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
    public func freeBlock(_ handle: Buffer, at pointer: UInt32) throws { preconditionFailure("\(Format.name) of AG \(agno) is read-only") }
}

/// A read-only store for the on-disk part of one inode fork's bmbt, below the root that
/// lives in the inode: the subtree under one of the root's pointers. 64-bit fsblock
/// pointers, long v5 headers owned by the inode, CRC checked as each block is read.
///
/// The engine runs on each subtree in turn (their leaves are also linked by siblings
/// across subtrees, which the engine does not need to follow).
public final class BmbtSubtreeStore: BTreeBlockStore {
    public typealias Pointer = UInt64
    public typealias BlockHandle = Buffer

    public let image: XFSImage
    /// The inode that owns the fork.
    public let inode: UInt64
    public let root: UInt64
    public let height: Int
    public let maxHeight: Int
    public let blockSize: Int
    public let uuid: BTreeUUID
    private let verifier: BTreeBlockCRCVerifier
    private let held = HeldBlocks()

    /// The subtree whose top block is `child` at `height` levels (the inode root's level).
    public init(image: XFSImage, inode: UInt64, child: UInt64, height: Int) {
        self.image = image
        self.inode = inode
        self.root = child
        self.height = height
        self.maxHeight = 9 // a bmbt of 2^54 blocks at the minimum fill stays below this
        self.blockSize = Int(image.geometry.blockSize)
        self.uuid = image.metadataUUID
        self.verifier = BTreeBlockCRCVerifier(name: BmbtFormat.name, crcOffset: BTreeHeaderFormat.long.checksumOffset)
    }

    public var owner: UInt64 { inode }
    public func diskAddress(of pointer: UInt64) -> UInt64 { image.geometry.daddr(fsBlock: pointer) }
    public func isValid(_ pointer: UInt64) -> Bool { image.geometry.isValidFSBlock(pointer) }

    /// Reads the block (CRC checked). Throws `XFSFormatError` naming the inode and block for
    /// a bad CRC, or when the walk already holds the block (a pointer cycle).
    public func readBlock(_ pointer: UInt64) throws -> Buffer {
        let daddr = diskAddress(of: pointer)
        guard held.take(daddr) else {
            throw XFSFormatError(.corrupt, "inode \(inode) bmbt block \(pointer)",
                                 "reached again while the walk holds it: a pointer cycle")
        }
        do {
            return try image.target.readBuffer(at: DiskAddress(Int64(daddr)), length: blockSize, verifier: verifier)
        } catch .verificationFailed(let failure) {
            held.drop(daddr)
            throw XFSFormatError(.badCRC, "inode \(inode) bmbt block \(pointer)", failure.check)
        } catch .readPastEnd(_, _, let got) {
            held.drop(daddr)
            throw XFSFormatError(.truncated, "inode \(inode) bmbt block \(pointer)", "the image ends inside the block (\(got) bytes read)")
        } catch {
            held.drop(daddr)
            throw error
        }
    }

    public func memory(of handle: Buffer) -> UnsafeMutableRawPointer { handle.unsafeMutableBytes.baseAddress.unsafelyUnwrapped }

    public func release(_ handle: Buffer) {
        held.drop(UInt64(truncatingIfNeeded: handle.diskAddress.sectors))
        image.target.release(handle)
    }

    public func setRoot(_ root: UInt64, height: Int) { preconditionFailure("bmbt of inode \(inode) is read-only") }
    public func newBlock(_ pointer: UInt64) throws -> Buffer { preconditionFailure("bmbt of inode \(inode) is read-only") }
    public func markDirty(_ handle: Buffer, range: Range<Int>) { preconditionFailure("bmbt of inode \(inode) is read-only") }
    public func allocateBlock() throws -> UInt64? { preconditionFailure("bmbt of inode \(inode) is read-only") }
    public func freeBlock(_ handle: Buffer, at pointer: UInt64) throws { preconditionFailure("bmbt of inode \(inode) is read-only") }
}
