import XFSBTree
import XFSBuffer

/// Which AG btree to walk.
public enum AGBTreeKind: String, Sendable, CaseIterable {
    case bnobt, cntbt, inobt, finobt, refcountbt, rmapbt
}

/// Everything one fork of an inode maps on disk.
public struct ForkMappings: Sendable, Equatable {
    /// The fork's extent records, in file offset order.
    public var extents: [FileExtent] = []
    /// The fsblocks of the fork's on-disk bmbt blocks (not the root in the inode).
    public var bmbtBlocks: [UInt64] = []

    /// Nothing mapped.
    public init() {}
}

/// Where one AG btree starts: its AG, kind, root block and height, as an AG header gives
/// them. Reading a tree needs only its own header (the AGF or the AGI), so a damaged AGF
/// does not stop the inode btrees from being read, nor a damaged AGI the free-space trees.
public struct AGBTreeRoot: Sendable, Equatable {
    /// The AG.
    public var agno: UInt32
    /// Which tree.
    public var kind: AGBTreeKind
    /// The root block.
    public var root: UInt32
    /// The tree's height (the header's "level").
    public var height: UInt32

    /// The root of `kind` (bnobt, cntbt, rmapbt or refcountbt) that AG `agno`'s AGF gives.
    public init(_ kind: AGBTreeKind, agno: UInt32, agf: AGF) {
        precondition(kind != .inobt && kind != .finobt, "\(kind) is rooted in the AGI")
        self.agno = agno
        self.kind = kind
        (root, height) = switch kind {
        case .bnobt: (agf.bnoRoot, agf.bnoLevel)
        case .cntbt: (agf.cntRoot, agf.cntLevel)
        case .refcountbt: (agf.refcountRoot, agf.refcountLevel)
        default: (agf.rmapRoot, agf.rmapLevel)
        }
    }

    /// The root of `kind` (inobt or finobt) that AG `agno`'s AGI gives.
    public init(_ kind: AGBTreeKind, agno: UInt32, agi: AGI) {
        precondition(kind == .inobt || kind == .finobt, "\(kind) is rooted in the AGF")
        self.agno = agno
        self.kind = kind
        (root, height) = kind == .inobt ? (agi.root, agi.level) : (agi.freeRoot, agi.freeLevel)
    }
}

extension AGHeaders {
    /// The root of one of this AG's btrees.
    public func root(_ kind: AGBTreeKind) -> AGBTreeRoot {
        kind == .inobt || kind == .finobt ? AGBTreeRoot(kind, agno: agno, agi: agi) : AGBTreeRoot(kind, agno: agno, agf: agf)
    }
}

/// The blocks of one AG btree as its nodes' child pointers reach them, and the faults met
/// on the way (`XFSImage.reachableBlocks(_:_:)`).
public struct AGBTreeBlocks: Sendable {
    /// The AG block numbers, the root first, each once. A block that cannot be read is
    /// here (its parent points at it); the blocks below it are not.
    public var blocks: [UInt32]
    /// One error per fault, each naming its block: "AG 0 bnobt block 7047: bad CRC".
    public var faults: [XFSFormatError]
}

extension XFSImage {
    /// The most levels a tree of `kind` may have in this filesystem.
    public func maxHeight(of kind: AGBTreeKind) -> Int {
        let g = geometry
        return switch kind {
        case .bnobt, .cntbt: g.maxAllocBTreeLevels
        case .inobt, .finobt: g.maxInodeBTreeLevels
        case .refcountbt: g.maxRefcountBTreeLevels
        case .rmapbt: g.maxRmapBTreeLevels
        }
    }

    /// Runs `body` on a cursor over one AG btree, with root and height from `headers`.
    public func withCursor<Format: BTreeRecordFormat, Result>(
        _ format: Format.Type, _ kind: AGBTreeKind, in headers: AGHeaders,
        _ body: (inout BTreeCursor<Format, AGBTreeStore<Format>>) throws -> Result
    ) throws -> Result {
        try withCursor(format, headers.root(kind), body)
    }

    /// Runs `body` on a cursor over the AG btree rooted at `tree`. Inlinable, so that a
    /// caller's concrete record format specializes the walk.
    @inlinable
    public func withCursor<Format: BTreeRecordFormat, Result>(
        _ format: Format.Type, _ tree: AGBTreeRoot,
        _ body: (inout BTreeCursor<Format, AGBTreeStore<Format>>) throws -> Result
    ) throws -> Result {
        let store = AGBTreeStore<Format>(image: self, agno: tree.agno, root: tree.root, height: Int(tree.height),
                                         maxHeight: maxHeight(of: tree.kind))
        var cursor = BTreeCursor<Format, AGBTreeStore<Format>>(store: store)
        defer { cursor.close() }
        do {
            return try body(&cursor)
        } catch BTreeError.corrupt(let name, let fault) {
            throw XFSFormatError(fault, in: "AG \(tree.agno) \(name)")
        }
    }

    /// Every record of one AG btree, in key order.
    public func records<Format: BTreeRecordFormat>(
        _ format: Format.Type, _ kind: AGBTreeKind, in headers: AGHeaders
    ) throws -> [Format.Record] {
        try records(format, headers.root(kind))
    }

    /// Every record of the AG btree rooted at `tree`, in key order.
    ///
    /// - Throws: `XFSFormatError` when a record's low key does not sort strictly after the
    ///   one before it: keys out of order, or a block reached through two pointers. Stopping
    ///   there also bounds the walk of a corrupt tree whose node pointers all lead to the same
    ///   child, which would otherwise visit (entries per node)^(height − 1) leaves.
    @inlinable
    public func records<Format: BTreeRecordFormat>(_ format: Format.Type, _ tree: AGBTreeRoot) throws -> [Format.Record] {
        try withCursor(format, tree) { cursor in
            var records: [Format.Record] = []
            _ = try cursor.queryAll { record in
                if let last = records.last, !(Format.lowKey(of: last) < Format.lowKey(of: record)) {
                    throw XFSFormatError(.corrupt, "AG \(tree.agno) \(Format.name)",
                                         "record \(records.count) (\(record)) does not sort after record \(records.count - 1) "
                                             + "(\(last)): keys out of order or a block reached twice")
                }
                records.append(record)
                return .proceed
            }
            return records
        }
    }

    /// The AG block numbers of every block of one AG btree.
    public func blocks<Format: BTreeRecordFormat>(
        _ format: Format.Type, _ kind: AGBTreeKind, in headers: AGHeaders
    ) throws -> [UInt32] {
        try blocks(format, headers.root(kind))
    }

    /// The AG block numbers of every block of the AG btree rooted at `tree`.
    @inlinable
    public func blocks<Format: BTreeRecordFormat>(_ format: Format.Type, _ tree: AGBTreeRoot) throws -> [UInt32] {
        try withCursor(format, tree) { cursor in
            var blocks: [UInt32] = []
            _ = try cursor.visitBlocks { info in
                blocks.append(UInt32(truncatingIfNeeded: info.pointer))
                return .proceed
            }
            return blocks
        }
    }

    /// The blocks of the AG btree rooted at `tree` as its nodes' child pointers reach them
    /// (`BTreeCursor.reachableBlocks()`): a damaged sibling link or an unreadable leaf loses
    /// no block, only a fault to report. Nothing is thrown.
    public func reachableBlocks<Format: BTreeRecordFormat>(_ format: Format.Type, _ tree: AGBTreeRoot) -> AGBTreeBlocks {
        let store = AGBTreeStore<Format>(image: self, agno: tree.agno, root: tree.root, height: Int(tree.height),
                                         maxHeight: maxHeight(of: tree.kind))
        let cursor = BTreeCursor<Format, AGBTreeStore<Format>>(store: store)
        let walk = cursor.reachableBlocks()
        return AGBTreeBlocks(blocks: walk.pointers.map { UInt32(truncatingIfNeeded: $0) },
                             faults: walk.faults.map { XFSFormatError($0, in: "AG \(tree.agno) \(Format.name)") })
    }

    /// `reachableBlocks(_:_:)` of the inobt (or finobt) rooted at `tree`.
    public func inodeBTreeReachableBlocks(_ tree: AGBTreeRoot) -> AGBTreeBlocks {
        switch (tree.kind, geometry.hasSparseInodes) {
        case (.inobt, true): return reachableBlocks(SparseInodeBTreeFormat.self, tree)
        case (.inobt, false): return reachableBlocks(InodeBTreeFormat.self, tree)
        case (.finobt, true): return reachableBlocks(SparseFreeInodeBTreeFormat.self, tree)
        case (.finobt, false): return reachableBlocks(FreeInodeBTreeFormat.self, tree)
        default: preconditionFailure("\(tree.kind) is not an inode btree")
        }
    }

    /// The on-disk rmap records of AG `agno`, in key order.
    public func rmapRecords(in headers: AGHeaders) throws -> [RmapRecord] {
        try records(RmapFormat.self, .rmapbt, in: headers)
    }

    /// The inobt (or finobt) records of an AG, in the record form the filesystem uses.
    public func inodeBTreeRecords(_ kind: AGBTreeKind, in headers: AGHeaders) throws -> [InodeBTreeRecord] {
        try inodeBTreeRecords(headers.root(kind))
    }

    /// The records of the inobt (or finobt) rooted at `tree`.
    public func inodeBTreeRecords(_ tree: AGBTreeRoot) throws -> [InodeBTreeRecord] {
        switch (tree.kind, geometry.hasSparseInodes) {
        case (.inobt, true): return try records(SparseInodeBTreeFormat.self, tree)
        case (.inobt, false): return try records(InodeBTreeFormat.self, tree)
        case (.finobt, true): return try records(SparseFreeInodeBTreeFormat.self, tree)
        case (.finobt, false): return try records(FreeInodeBTreeFormat.self, tree)
        default: preconditionFailure("\(tree.kind) is not an inode btree")
        }
    }

    /// The AG block numbers of every block of the inobt (or finobt).
    public func inodeBTreeBlocks(_ kind: AGBTreeKind, in headers: AGHeaders) throws -> [UInt32] {
        try inodeBTreeBlocks(headers.root(kind))
    }

    /// The AG block numbers of every block of the inobt (or finobt) rooted at `tree`.
    public func inodeBTreeBlocks(_ tree: AGBTreeRoot) throws -> [UInt32] {
        switch (tree.kind, geometry.hasSparseInodes) {
        case (.inobt, true): return try blocks(SparseInodeBTreeFormat.self, tree)
        case (.inobt, false): return try blocks(InodeBTreeFormat.self, tree)
        case (.finobt, true): return try blocks(SparseFreeInodeBTreeFormat.self, tree)
        case (.finobt, false): return try blocks(FreeInodeBTreeFormat.self, tree)
        default: preconditionFailure("\(tree.kind) is not an inode btree")
        }
    }

    /// Reads and verifies inode `ino` (core CRC, fields, forks).
    public func inode(_ ino: UInt64) throws -> Inode {
        guard let location = geometry.location(ofInode: ino) else {
            throw XFSFormatError(.corrupt, "inode \(ino)", "inode number is outside the filesystem")
        }
        guard location.agbno > geometry.agflBlock else {
            throw XFSFormatError(.corrupt, "inode \(ino)", "inode number lies in AG \(location.agno)'s header blocks")
        }
        let address = DiskAddress(Int64(geometry.daddr(agno: location.agno, agbno: location.agbno)))
        let buffer = try target.readBuffer(at: address, length: Int(geometry.blockSize), verifier: nil)
        defer { target.release(buffer) }
        let g = geometry
        return try buffer.withUnsafeBytes { block throws(XFSFormatError) in
            let start = Int(location.offsetInBlock)
            return try Inode.load(from: UnsafeRawBufferPointer(rebasing: block[start..<(start + Int(g.inodeSize))]), ino: ino, geometry: g)
        }
    }

    /// Reads and verifies inodes `inos` (best in ascending order, as a scan takes them) and
    /// calls `body` with each in turn, with the same checks and errors as ``inode(_:)``.
    /// Each run of neighbouring inode blocks (up to 256 KiB) is read with one read past the
    /// buffer cache (`FileTarget.readUncached`): a scan reads every inode block once, and a
    /// cached buffer per block cost more than its read. A run that cannot be read gives
    /// each of its inodes the read's error.
    public func forEachInode(_ inos: [UInt64], _ body: (UInt64, Result<Inode, any Error>) throws -> Void) rethrows {
        let blockSize = Int(geometry.blockSize)
        let maximumRun = 256 << 10
        let g = geometry
        /// Where each inode lies: its block's byte offset and its offset in the block, or
        /// why it lies nowhere.
        let places: [Result<(block: Int, offset: Int), XFSFormatError>] = inos.map { ino in
            guard let location = g.location(ofInode: ino) else {
                return .failure(XFSFormatError(.corrupt, "inode \(ino)", "inode number is outside the filesystem"))
            }
            guard location.agbno > g.agflBlock else {
                return .failure(XFSFormatError(.corrupt, "inode \(ino)", "inode number lies in AG \(location.agno)'s header blocks"))
            }
            let block = DiskAddress(Int64(g.daddr(agno: location.agno, agbno: location.agbno))).byteOffset
            return .success((block, Int(location.offsetInBlock)))
        }
        var scratch: [UInt8] = []
        var index = 0
        while index < inos.count {
            guard case .success(let first) = places[index] else {
                if case .failure(let error) = places[index] { try body(inos[index], .failure(error)) }
                index += 1
                continue
            }
            // The run: following inodes in the same block or the next, up to maximumRun.
            var end = index + 1, runEnd = first.block + blockSize
            while end < inos.count, case .success(let place) = places[end],
                  place.block >= first.block, place.block <= runEnd, place.block + blockSize - first.block <= maximumRun {
                runEnd = max(runEnd, place.block + blockSize)
                end += 1
            }
            let length = runEnd - first.block
            if scratch.count < length { scratch = [UInt8](repeating: 0, count: max(length, 32 << 10)) }
            let read: Result<Void, any Error> = scratch.withUnsafeMutableBytes { bytes in
                Result { try target.readUncached(into: UnsafeMutableRawBufferPointer(rebasing: bytes[0..<length]),
                                                 at: DiskAddress(byteOffset: first.block)) }
            }
            for i in index..<end {
                guard case .success(let place) = places[i] else { continue }
                if case .failure(let error) = read {
                    try body(inos[i], .failure(error))
                    continue
                }
                let start = place.block - first.block + place.offset
                let inode = scratch.withUnsafeBytes { bytes in
                    Result { () throws(XFSFormatError) in
                        try Inode.load(from: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + Int(g.inodeSize))]),
                                       ino: inos[i], geometry: g)
                    }.mapError { $0 as any Error }
                }
                try body(inos[i], inode)
            }
            index = end
        }
    }

    /// Asks the device to start reading the blocks that hold inodes `inos` (best in
    /// ascending order, as a scan takes them), one request per run of neighbouring blocks:
    /// a hint for the ``inode(_:)`` calls soon after. Inode numbers that name no inode
    /// block are skipped (``inode(_:)`` reports them). (An array, not any sequence: a
    /// generic called from another module runs unspecialized, and that was measurable.)
    public func readAheadInodes(_ inos: [UInt64]) {
        let blockSize = Int(geometry.blockSize)
        var run: (start: Int, end: Int)? = nil
        for ino in inos {
            guard let location = geometry.location(ofInode: ino), location.agbno > geometry.agflBlock else { continue }
            let offset = DiskAddress(Int64(geometry.daddr(agno: location.agno, agbno: location.agbno))).byteOffset
            if let current = run {
                if offset >= current.start && offset < current.end { continue }
                if offset == current.end {
                    run = (current.start, current.end + blockSize)
                    continue
                }
                target.readAhead(at: DiskAddress(byteOffset: current.start), length: current.end - current.start)
            }
            run = (offset, offset + blockSize)
        }
        if let run { target.readAhead(at: DiskAddress(byteOffset: run.start), length: run.end - run.start) }
    }

    /// The first mapping (lowest file offset) of one fork of `inode`, or nil when it maps
    /// nothing: for a bmbt fork, one walk down its left edge.
    public func firstMapping(of inode: Inode, fork: InodeFork.Which) throws -> FileExtent? {
        switch fork == .data ? inode.dataFork : inode.attrFork {
        case .extents(let extents)?:
            return extents.first
        case .btree(let root)?:
            let store = try BmbtStore(image: self, inode: inode.core.ino, root: root)
            var cursor = BTreeCursor<BmbtFormat, BmbtStore>(store: store)
            defer { cursor.close() }
            do {
                return try cursor.moveToFirst() ? cursor.record : nil
            } catch BTreeError.corrupt(let name, let fault) {
                throw XFSFormatError(fault, in: "inode \(inode.core.ino) \(name)")
            }
        default:
            return nil
        }
    }

    /// What one fork of `inode` maps: its extents (read through the bmbt when the fork is a
    /// btree) and its on-disk bmbt blocks.
    public func mappings(of inode: Inode, fork: InodeFork.Which) throws -> ForkMappings {
        var result = ForkMappings()
        let content = fork == .data ? inode.dataFork : inode.attrFork
        switch content {
        case .extents(let extents)?:
            result.extents = extents
        case .btree(let root)?:
            let store = try BmbtStore(image: self, inode: inode.core.ino, root: root)
            var cursor = BTreeCursor<BmbtFormat, BmbtStore>(store: store)
            defer { cursor.close() }
            do {
                _ = try cursor.visitBlocks { info in
                    if info.pointer != BmbtStore.inodeRootPointer { result.bmbtBlocks.append(info.pointer) }
                    return .proceed
                }
                // The checks an extent list in the inode gets (`InodeFork.decode`): each
                // extent sane, in file offset order without overlap, none unwritten in the
                // attr fork. Stopping at the first also bounds the walk of a tree whose node
                // pointers lead to one leaf many times.
                _ = try cursor.queryAll { extent in
                    let i = result.extents.count
                    func bad(_ s: String) -> XFSFormatError { XFSFormatError(.corrupt, "inode \(inode.core.ino) \(fork) fork bmbt", s) }
                    if let p = extent.problem { throw bad("extent \(i): \(p)") }
                    if let prev = result.extents.last, prev.startOffset + UInt64(prev.blockCount) > extent.startOffset {
                        throw bad("extent \(i) at offset \(extent.startOffset) overlaps or precedes the previous extent")
                    }
                    if extent.isUnwritten && fork == .attr { throw bad("extent \(i) is unwritten") }
                    result.extents.append(extent)
                    return .proceed
                }
            } catch BTreeError.corrupt(let name, let fault) {
                throw XFSFormatError(fault, in: "inode \(inode.core.ino) \(name)")
            }
        default:
            break
        }
        return result
    }
}

extension XFSFormatError {
    /// A structural fault the engine found in a disk btree, as a format error whose location
    /// names the tree (`tree`, e.g. "AG 1 rmapbt") and the block: "AG 1 rmapbt block 10:
    /// magic check failed at level 0: magic 0xfc6d7d51, expected 0x524d4233".
    @usableFromInline
    init(_ fault: BTreeFault, in tree: String) {
        let location = fault.pointer.map { "\(tree) block \($0)" } ?? tree
        // A read fault's detail is the store's own error, which names the block already.
        if fault.check == .read, fault.detail.hasPrefix(location + ": ") {
            self.init(.corrupt, location, String(fault.detail.dropFirst(location.count + 2)))
            return
        }
        var detail = "\(fault.check.rawValue) check failed"
        if let level = fault.level { detail += " at level \(level)" }
        if let index = fault.index { detail += ", entry \(index)" }
        self.init(.corrupt, location, detail + ": " + fault.detail)
    }
}
