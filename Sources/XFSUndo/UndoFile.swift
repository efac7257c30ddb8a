#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An undo file, opened and checked: what it saved, and the means to put it back.
///
/// `open` checks everything the file holds (see XFSUndo.swift); a file in state
/// `writing` may legitimately stop short, so for it a missing or partly written blob or
/// table is not an error (they are then nil).
///
/// Thread safety: `Sendable` (a value); a restore writes the image, so run one at a time per image.
public struct UndoFile: Sendable {
    /// The undo file's path.
    public let path: String
    /// How far the run got.
    public let state: UndoState
    /// The image's size when the run began.
    public let imageSize: Int64
    /// Where the identity bytes lie in the image.
    public let identityOffset: Int64
    /// The identity bytes the image held.
    public let identity: [UInt8]
    /// The caller's blob (nil only in state `writing`, when it was not completely written).
    public let blob: [UInt8]?
    /// The regions the run writes (nil only in state `writing`, when the table was not
    /// completely written).
    public let regions: [UndoRegion]?
    /// The system calls.
    let systemCalls: UndoSystemCalls

    /// Opens and checks the undo file at `path`: magic, version, header CRC, state, every
    /// count and length against the file's size, the file's exact size, the blob and table
    /// CRCs, the table's consistency and every saved sector's CRC.
    ///
    /// - Throws: `.invalidUndoFile` naming the failed check, or `.systemCallFailed`.
    public static func open(path: String, systemCalls: UndoSystemCalls = .live) throws(UndoError) -> UndoFile {
        func fail(_ check: UndoFileCheck, _ detail: String) -> UndoError {
            .invalidUndoFile(path: path, check: check, detail: detail)
        }
        let file = try OpenFile(path: path, flags: O_RDONLY, system: systemCalls)
        let fileSize = try file.status().size
        let headerBytes = try file.read(count: UndoFormat.headerSize, at: 0)
        guard headerBytes.count == UndoFormat.headerSize else {
            throw fail(.truncated, "the file has \(fileSize) bytes, fewer than its \(UndoFormat.headerSize)-byte header")
        }
        let header = try UndoHeader.decode(headerBytes, path: path)
        let complete = header.state != .writing
        let layout = try UndoLayout.checked(header, fileSize: fileSize, requireExactSize: complete, path: path)

        /// A section's bytes, or nil when a file still being written stops before its end
        /// (then nothing is read: its counts are bounded by nothing).
        func section(at offset: Int, length: Int) throws(UndoError) -> [UInt8]? {
            guard length <= Int(clamping: fileSize) - offset else {
                if complete { throw fail(.truncated, "the file ends inside the section at \(offset)") }
                return nil
            }
            let bytes = try file.read(count: length, at: Int64(offset))
            if bytes.count == length { return bytes }
            if complete { throw fail(.truncated, "the file ends inside the section at \(offset)") }
            return nil
        }

        var blob = try section(at: layout.blobOffset, length: header.blobLength).map { $0.complemented() }
        if let bytes = blob, RawBytes.crc32c(bytes[...]) != header.blobCRC {
            if complete {
                throw fail(.blobCRC, "stored \(hex32(header.blobCRC)), computed \(hex32(RawBytes.crc32c(bytes[...])))")
            }
            blob = nil
        }
        var regions: [UndoRegion]?
        if let table = try section(at: layout.tableOffset, length: layout.tableLength) {
            let crc = RawBytes.crc32c(table[...])
            if crc == header.tableCRC {
                regions = try UndoRegion.decodeTable(table, header: header, layout: layout, path: path)
            } else if complete {
                throw fail(.tableCRC, "stored \(hex32(header.tableCRC)), computed \(hex32(crc))")
            }
        }
        let undo = UndoFile(
            path: path, state: header.state, imageSize: header.imageSize, identityOffset: header.identityOffset,
            identity: header.identity, blob: blob, regions: regions, systemCalls: systemCalls)
        if complete, let regions {
            for (index, region) in regions.enumerated() {
                _ = try undo.oldContents(of: region, number: index, from: file)
            }
        }
        return undo
    }

    /// The saved old contents of `region` (the `number`-th), checked sector by sector
    /// against their CRCs.
    func oldContents(of region: UndoRegion, number: Int, from file: borrowing OpenFile) throws(UndoError) -> [UInt8] {
        let stored = try file.read(count: region.length, at: Int64(region.dataOffset))
        guard stored.count == region.length else {
            throw .invalidUndoFile(path: path, check: .truncated,
                                   detail: "the file ends inside region \(number)'s saved data")
        }
        let old = stored.complemented()
        for sector in 0 ..< region.sectorCount {
            let start = sector * UndoFormat.sectorSize
            let crc = RawBytes.crc32c(old[start ..< start + UndoFormat.sectorSize])
            guard crc == region.oldCRC(ofSector: sector) else {
                throw .invalidUndoFile(
                    path: path, check: .dataCRC,
                    detail: "region \(number) (\(region.length) bytes at image byte \(region.offset)), saved sector "
                        + "for image byte \(region.offset + Int64(start)): stored \(hex32(region.oldCRC(ofSector: sector))), "
                        + "computed \(hex32(crc))")
            }
        }
        return old
    }
}
