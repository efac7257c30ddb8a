#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs an `ImageWritePlan` on an image file or block device, first saving everything it
/// will overwrite in an undo file that is complete and durable before the first image
/// write (the order is in XFSUndo.swift).
///
/// Thread safety: `Sendable` (a value); one `execute` at a time per image.
public struct UndoableWriter: Sendable {
    /// The image file or block device.
    public let imagePath: String
    /// Where the undo file is created; nothing may exist there yet.
    public let undoFilePath: String
    /// Where the identity bytes lie in the image (e.g. the XFS superblock UUID: 32).
    public let identityOffset: Int64
    /// How many identity bytes (e.g. 16 for a UUID).
    public let identityLength: Int
    /// The caller's bytes, kept in the undo file (e.g. the superblock as it will be after
    /// the run).
    public let blob: [UInt8]
    /// The system calls (live, or a test's).
    public let systemCalls: UndoSystemCalls

    /// A writer for `imagePath` whose undo file will be `undoFilePath`.
    ///
    /// - Precondition: `identityOffset >= 0`, `1 <= identityLength <= 256`,
    ///   `blob.count < 2^32`.
    public init(imagePath: String, undoFilePath: String, identityOffset: Int64, identityLength: Int,
                blob: [UInt8], systemCalls: UndoSystemCalls = .live) {
        precondition(identityOffset >= 0, "identity offset \(identityOffset) is negative")
        precondition((1 ... UndoFormat.maxIdentityLength).contains(identityLength),
                     "identity length \(identityLength) is not in 1...\(UndoFormat.maxIdentityLength)")
        precondition(blob.count <= Int(UInt32.max), "a blob of \(blob.count) bytes is too large")
        self.imagePath = imagePath
        self.undoFilePath = undoFilePath
        self.identityOffset = identityOffset
        self.identityLength = identityLength
        self.blob = blob
        self.systemCalls = systemCalls
    }

    /// What a finished run did.
    public struct Summary: Equatable, Sendable {
        /// How many distinct regions the undo file saved.
        public let regionCount: Int
        /// The undo file's size in bytes.
        public let undoFileSize: Int
        /// How many writes reached the image.
        public let imageWrites: Int
    }

    /// Runs `plan`: saves the old contents in a new undo file (fsynced, with its directory,
    /// and marked prepared), then writes the phases in order with an fsync of the image
    /// after each, then marks the undo file finished.
    ///
    /// `inUseCheck` is called first with the image path; it returns why the image must
    /// not be written (e.g. "mounted on /mnt"), or nil. This is where the caller refuses a
    /// mounted image.
    ///
    /// - Throws: before the undo file exists, the error itself (nothing was created or
    ///   written); from then on `.runStopped`, saying how far the run got and in which
    ///   state it left the undo file (which stays in place).
    /// - Precondition: the plan has at least one phase.
    @discardableResult
    public func execute(_ plan: ImageWritePlan,
                        inUseCheck: (_ imagePath: String) -> String?) throws(UndoError) -> Summary {
        precondition(!plan.phases.isEmpty, "the plan has no phases")
        if let reason = inUseCheck(imagePath) { throw .imageInUse(path: imagePath, reason: reason) }
        let image = try OpenFile.image(path: imagePath, writable: true, system: systemCalls)
        let imageSize = try image.status().size
        let identity = try readIdentity(image, imageSize: imageSize)
        try checkPlan(plan, imageSize: imageSize, identity: identity)

        // The table, before the undo file exists: every region's old contents are read
        // once for their CRCs and let go (a rebuild's regions can be tens of megabytes);
        // they are read again below, checked against these CRCs, and saved.
        let planned = plan.regions
        var regions: [UndoRegion] = []
        regions.reserveCapacity(planned.count)
        let sectorCRCCount = planned.reduce(0) { $0 + $1.length / UndoFormat.sectorSize * (1 + $1.sources.count) }
        let dataLength = planned.reduce(0) { $0 + $1.length }
        guard let layout = UndoLayout(blobLength: blob.count, regionCount: planned.count,
                                      sectorCRCCount: sectorCRCCount, dataLength: dataLength) else {
            preconditionFailure("a plan held in memory cannot overflow the undo file's layout")
        }
        var dataOffset = layout.dataOffset
        for region in planned {
            let old = try readImage(image, count: region.length, at: region.offset)
            regions.append(UndoRegion(region, oldContents: old, dataOffset: dataOffset))
            dataOffset += region.length
        }
        let table = UndoRegion.encodeTable(regions)
        let header = UndoHeader(
            state: .writing, imageSize: imageSize, identityOffset: identityOffset, identity: identity,
            blobLength: blob.count, blobCRC: RawBytes.crc32c(blob[...]), tableCRC: RawBytes.crc32c(table[...]),
            regionCount: regions.count, sectorCRCCount: sectorCRCCount, dataLength: dataLength)

        let undo = try OpenFile(path: undoFilePath, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600,
                                system: systemCalls)
        // The undo file exists: from here every error says how far the run got.
        var state = UndoState.writing
        var writesDone = 0
        do {
            // A header that says WRITING, durable with its directory entry before anything
            // else: a crash from here on leaves a file that says "image untouched".
            try undo.write(header.encoded()[...], at: 0)
            try undo.sync()
            try syncDirectory(of: undoFilePath)
            try undo.write(blob.complemented()[...], at: Int64(layout.blobOffset))
            try undo.write(table[...], at: Int64(layout.tableOffset))
            for region in regions {
                let old = try readImage(image, count: region.length, at: region.offset)
                try Self.checkUnchanged(old, region)
                try undo.write(old.complemented()[...], at: Int64(region.dataOffset))
            }
            try undo.sync()
            try mark(undo, .prepared)
            state = .prepared

            for phase in plan.phases {
                for write in phase {
                    try image.write(write.bytes[...], at: write.offset)
                    writesDone += 1
                }
                try image.sync()
            }
            try mark(undo, .finished)
        } catch {
            throw .runStopped(cause: error, undoFileState: state, imageWritesCompleted: writesDone)
        }
        return Summary(regionCount: regions.count, undoFileSize: layout.fileLength, imageWrites: writesDone)
    }

    /// Checks that `old`, read again to be saved, is what the table's CRCs were computed
    /// from: something else wrote the image in between otherwise (nothing has been written
    /// to it yet).
    private static func checkUnchanged(_ old: [UInt8], _ region: UndoRegion) throws(UndoError) {
        for sector in 0 ..< region.sectorCount {
            let start = sector * UndoFormat.sectorSize
            guard RawBytes.crc32c(old[start ..< start + UndoFormat.sectorSize]) == region.oldCRC(ofSector: sector) else {
                throw .imageChanged(sectorOffset: region.offset + Int64(start), undoFileState: .writing)
            }
        }
    }

    /// Reads the identity bytes, checking that they lie inside the image.
    private func readIdentity(_ image: borrowing OpenFile, imageSize: Int64) throws(UndoError) -> [UInt8] {
        guard identityOffset <= imageSize && Int64(identityLength) <= imageSize - identityOffset else {
            throw .identityOutsideImage(offset: identityOffset, length: identityLength, imageSize: imageSize)
        }
        return try readImage(image, count: identityLength, at: identityOffset)
    }

    /// Checks that every write lies inside the image and leaves the identity bytes as they are.
    private func checkPlan(_ plan: ImageWritePlan, imageSize: Int64, identity: [UInt8]) throws(UndoError) {
        let identityEnd = identityOffset + Int64(identityLength)
        for write in plan.phases.joined() {
            guard write.end <= imageSize else {
                throw .writeOutsideImage(offset: write.offset, length: write.bytes.count, imageSize: imageSize)
            }
            let start = max(write.offset, identityOffset)
            let end = min(write.end, identityEnd)
            guard start < end else { continue }
            let written = write.bytes[Int(start - write.offset) ..< Int(end - write.offset)]
            let kept = identity[Int(start - identityOffset) ..< Int(end - identityOffset)]
            guard written.elementsEqual(kept) else { throw .planChangesIdentity(writeOffset: write.offset) }
        }
    }

    /// Reads exactly `count` image bytes at `offset`.
    private func readImage(_ image: borrowing OpenFile, count: Int, at offset: Int64) throws(UndoError) -> [UInt8] {
        let bytes = try image.read(count: count, at: offset)
        guard bytes.count == count else {
            throw .unexpectedEndOfImage(path: image.path, offset: offset, length: count)
        }
        return bytes
    }

    /// Writes the state word and makes it durable.
    private func mark(_ undo: borrowing OpenFile, _ state: UndoState) throws(UndoError) {
        try undo.write(UndoHeader.stateWord(state)[...], at: Int64(UndoFormat.Field.state))
        try undo.sync()
    }

    /// fsyncs the directory holding `path`, so the new file's entry is durable.
    private func syncDirectory(of path: String) throws(UndoError) {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        let handle = try OpenFile(path: directory, flags: O_RDONLY | O_DIRECTORY, system: systemCalls)
        try handle.sync()
    }
}
