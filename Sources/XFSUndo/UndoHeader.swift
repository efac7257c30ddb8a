/// The undo file's header, decoded (see the format in XFSUndo.swift).
struct UndoHeader: Equatable {
    /// The run's state.
    var state: UndoState
    /// The image's size in bytes when the run began.
    var imageSize: Int64
    /// Where the identity bytes lie in the image.
    var identityOffset: Int64
    /// The identity bytes as the image held them.
    var identity: [UInt8]
    /// The blob's length.
    var blobLength: Int
    /// The CRC32c of the blob (as given, not complemented).
    var blobCRC: UInt32
    /// The CRC32c of the region table (entries, then sector CRCs).
    var tableCRC: UInt32
    /// How many regions the table lists.
    var regionCount: Int
    /// How many sector CRCs follow the entries.
    var sectorCRCCount: Int
    /// The total length of the saved old contents.
    var dataLength: Int

    /// The state word as stored.
    static func stateWord(_ state: UndoState) -> [UInt8] {
        var word = Array(state.rawValue.utf8)
        word += [UInt8](repeating: 0, count: 8 - word.count)
        return word
    }

    /// The 512 header bytes, CRC included.
    func encoded() -> [UInt8] {
        typealias F = UndoFormat.Field
        var bytes = [UInt8](repeating: 0, count: UndoFormat.headerSize)
        bytes.replaceSubrange(F.magic ..< F.magic + 8, with: UndoFormat.magic)
        bytes.storeLittleEndian(UndoFormat.version, at: F.version)
        bytes.storeLittleEndian(UInt64(imageSize), at: F.imageSize)
        bytes.storeLittleEndian(UInt64(identityOffset), at: F.identityOffset)
        bytes.storeLittleEndian(UInt32(identity.count), at: F.identityLength)
        bytes.storeLittleEndian(UInt32(blobLength), at: F.blobLength)
        bytes.storeLittleEndian(blobCRC, at: F.blobCRC)
        bytes.storeLittleEndian(tableCRC, at: F.tableCRC)
        bytes.storeLittleEndian(UInt64(regionCount), at: F.regionCount)
        bytes.storeLittleEndian(UInt64(sectorCRCCount), at: F.sectorCRCCount)
        bytes.storeLittleEndian(UInt64(dataLength), at: F.dataLength)
        bytes.replaceSubrange(F.identity ..< F.identity + identity.count, with: identity)
        bytes.storeLittleEndian(Self.checksum(bytes), at: F.headerCRC)
        bytes.replaceSubrange(F.state ..< F.state + 8, with: Self.stateWord(state))
        return bytes
    }

    /// The header CRC: over the 512 bytes with the CRC field and the state word as zero.
    static func checksum(_ header: [UInt8]) -> UInt32 {
        typealias F = UndoFormat.Field
        var copy = header
        copy.replaceSubrange(F.headerCRC ..< F.state + 8, with: [UInt8](repeating: 0, count: 12))
        return RawBytes.crc32c(copy[...])
    }

    /// Decodes and checks 512 header bytes. Checks that need the file's size are the
    /// caller's (`UndoLayout`).
    static func decode(_ bytes: [UInt8], path: String) throws(UndoError) -> UndoHeader {
        typealias F = UndoFormat.Field
        func fail(_ check: UndoFileCheck, _ detail: String) -> UndoError {
            .invalidUndoFile(path: path, check: check, detail: detail)
        }
        precondition(bytes.count == UndoFormat.headerSize, "a header is \(UndoFormat.headerSize) bytes")
        guard Array(bytes[F.magic ..< F.magic + 8]) == UndoFormat.magic else {
            throw fail(.magic, "the file does not begin with \"XFS-UNDO\"; it is not an undo file")
        }
        let version: UInt32 = bytes.loadLittleEndian(at: F.version)
        guard version == UndoFormat.version else {
            throw fail(.version, "version \(version); this program reads version \(UndoFormat.version)")
        }
        let stored: UInt32 = bytes.loadLittleEndian(at: F.headerCRC)
        let computed = checksum(bytes)
        guard stored == computed else {
            throw fail(.headerCRC, "stored \(hex32(stored)), computed \(hex32(computed))")
        }
        let word = Array(bytes[F.state ..< F.state + 8])
        guard let state = [UndoState.writing, .prepared, .finished].first(where: { stateWord($0) == word }) else {
            throw fail(.state, "the state word is none of WRITING, PREPARED, FINISHED")
        }
        let imageSize: UInt64 = bytes.loadLittleEndian(at: F.imageSize)
        let identityOffset: UInt64 = bytes.loadLittleEndian(at: F.identityOffset)
        let identityLength = Int(bytes.loadLittleEndian(at: F.identityLength) as UInt32)
        guard imageSize > 0 && imageSize <= UInt64(Int64.max) else {
            throw fail(.headerFields, "image size \(imageSize)")
        }
        guard identityLength >= 1 && identityLength <= UndoFormat.maxIdentityLength,
              identityOffset <= imageSize && UInt64(identityLength) <= imageSize - identityOffset else {
            throw fail(.headerFields, "identity of \(identityLength) bytes at \(identityOffset) in an image of \(imageSize) bytes")
        }
        return UndoHeader(
            state: state,
            imageSize: Int64(imageSize),
            identityOffset: Int64(identityOffset),
            identity: Array(bytes[F.identity ..< F.identity + identityLength]),
            blobLength: Int(bytes.loadLittleEndian(at: F.blobLength) as UInt32),
            blobCRC: bytes.loadLittleEndian(at: F.blobCRC),
            tableCRC: bytes.loadLittleEndian(at: F.tableCRC),
            regionCount: try count(bytes, at: F.regionCount, "region count", fail),
            sectorCRCCount: try count(bytes, at: F.sectorCRCCount, "sector CRC count", fail),
            dataLength: try count(bytes, at: F.dataLength, "data length", fail))
    }

    /// A 64-bit count field as an `Int` (rejecting values past `Int.max`; the layout then
    /// bounds it by the file's size).
    private static func count(_ bytes: [UInt8], at offset: Int, _ name: String,
                              _ fail: (UndoFileCheck, String) -> UndoError) throws(UndoError) -> Int {
        let value: UInt64 = bytes.loadLittleEndian(at: offset)
        guard let count = Int(exactly: value) else { throw fail(.headerFields, "\(name) \(value)") }
        return count
    }
}

/// Where each section of an undo file lies, computed from the header's counts and checked
/// against the file's size before anything is read or allocated.
struct UndoLayout: Equatable {
    /// The blob's offset (always 512).
    let blobOffset: Int
    /// The region table's offset.
    let tableOffset: Int
    /// The region table's length (entries then sector CRCs, without padding).
    let tableLength: Int
    /// The saved old contents' offset.
    let dataOffset: Int
    /// The file's length.
    let fileLength: Int

    /// Rounds up to a multiple of 512 (nil on overflow).
    private static func padded(_ length: Int) -> Int? {
        let (sum, overflow) = length.addingReportingOverflow(UndoFormat.sectorSize - 1)
        return overflow ? nil : sum / UndoFormat.sectorSize * UndoFormat.sectorSize
    }

    /// The layout for these counts (nil when any sum overflows).
    init?(blobLength: Int, regionCount: Int, sectorCRCCount: Int, dataLength: Int) {
        let (entries, o1) = regionCount.multipliedReportingOverflow(by: UndoFormat.regionEntrySize)
        let (crcs, o2) = sectorCRCCount.multipliedReportingOverflow(by: 4)
        let (table, o3) = entries.addingReportingOverflow(crcs)
        guard !o1, !o2, !o3, let blobSpace = Self.padded(blobLength), let tableSpace = Self.padded(table) else {
            return nil
        }
        let (tableOffset, o4) = UndoFormat.headerSize.addingReportingOverflow(blobSpace)
        let (dataOffset, o5) = tableOffset.addingReportingOverflow(tableSpace)
        let (fileLength, o6) = dataOffset.addingReportingOverflow(dataLength)
        guard !o4, !o5, !o6 else { return nil }
        self.blobOffset = UndoFormat.headerSize
        self.tableOffset = tableOffset
        self.tableLength = table
        self.dataOffset = dataOffset
        self.fileLength = fileLength
    }

    /// The layout of `header`'s file, checked against the file's actual size: the sections'
    /// lengths must not overflow (else `.headerFields`), and their sum must be the file's
    /// size (else `.truncated` or `.trailingBytes`), so every count is bounded by the file's
    /// size before anything is read or allocated. With `requireExactSize` false (a file
    /// whose writing stopped may be shorter) only overflow is refused; the caller then
    /// reads only the sections that lie inside the file.
    static func checked(_ header: UndoHeader, fileSize: Int64, requireExactSize: Bool,
                        path: String) throws(UndoError) -> UndoLayout {
        func fail(_ check: UndoFileCheck, _ detail: String) -> UndoError {
            .invalidUndoFile(path: path, check: check, detail: detail)
        }
        let counts = "blob \(header.blobLength) bytes, \(header.regionCount) regions, "
            + "\(header.sectorCRCCount) sector CRCs, \(header.dataLength) data bytes"
        guard let layout = UndoLayout(blobLength: header.blobLength, regionCount: header.regionCount,
                                      sectorCRCCount: header.sectorCRCCount, dataLength: header.dataLength) else {
            throw fail(.headerFields, "the sections' lengths overflow (\(counts))")
        }
        guard requireExactSize else { return layout }
        if layout.fileLength > Int(clamping: fileSize) {
            throw fail(.truncated, "the file has \(fileSize) bytes; its header (\(counts)) describes \(layout.fileLength)")
        }
        if layout.fileLength < Int(clamping: fileSize) {
            throw fail(.trailingBytes, "the file has \(fileSize) bytes; its header (\(counts)) describes \(layout.fileLength)")
        }
        return layout
    }
}

/// "0x1234abcd".
func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}

extension Array where Element == UInt8 {
    /// Stores `value` little-endian at `offset`.
    mutating func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for index in 0 ..< T.bitWidth / 8 {
            self[offset + index] = UInt8(truncatingIfNeeded: value >> (index * 8))
        }
    }

    /// Appends `value` little-endian.
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        for index in 0 ..< T.bitWidth / 8 {
            append(UInt8(truncatingIfNeeded: value >> (index * 8)))
        }
    }

    /// The little-endian integer at `offset`.
    func loadLittleEndian<T: FixedWidthInteger>(at offset: Int) -> T {
        var value: T = 0
        for index in 0 ..< T.bitWidth / 8 {
            value |= T(self[offset + index]) << (index * 8)
        }
        return value
    }

    /// The bytes, each complemented (how the blob and saved data are stored).
    func complemented() -> [UInt8] { map { ~$0 } }
}

extension ArraySlice where Element == UInt8 {
    /// The bytes, each complemented.
    func complemented() -> [UInt8] { map { ~$0 } }
}
