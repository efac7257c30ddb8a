/// A region of the image an undo file covers: its place, and the CRC32c of every content
/// each of its 512-byte sectors may hold.
public struct UndoRegion: Equatable, Sendable {
    /// The region's byte offset in the image (a multiple of 512).
    public let offset: Int64
    /// Its length in bytes (a positive multiple of 512).
    public let length: Int
    /// How many contents each sector may hold: the old contents, then one per planned
    /// write covering the region, in plan order.
    public let contentCount: Int
    /// Sector-major CRCs: `contentCount` per sector, the old contents' first.
    let sectorCRCs: [UInt32]
    /// Where the region's old contents lie in the undo file.
    let dataOffset: Int

    /// The byte just past the region.
    public var end: Int64 { offset + Int64(length) }

    /// How many 512-byte sectors the region spans.
    var sectorCount: Int { length / UndoFormat.sectorSize }

    /// The CRCs of the contents sector `sector` may hold, the old contents' first.
    func crcs(ofSector sector: Int) -> ArraySlice<UInt32> {
        sectorCRCs[sector * contentCount ..< (sector + 1) * contentCount]
    }

    /// The CRC of sector `sector`'s old contents.
    func oldCRC(ofSector sector: Int) -> UInt32 { sectorCRCs[sector * contentCount] }

    /// The region of a plan, with its old contents as read from the image.
    init(_ planned: PlannedRegion, oldContents: [UInt8], dataOffset: Int) {
        precondition(oldContents.count == planned.length, "old contents do not fill the region")
        offset = planned.offset
        length = planned.length
        contentCount = 1 + planned.sources.count
        self.dataOffset = dataOffset
        var crcs: [UInt32] = []
        crcs.reserveCapacity(length / UndoFormat.sectorSize * contentCount)
        let contents = [oldContents[...]] + planned.sources.map { planned.bytes(of: $0) }
        for start in stride(from: 0, to: length, by: UndoFormat.sectorSize) {
            for content in contents {
                let first = content.startIndex + start
                crcs.append(RawBytes.crc32c(content[first ..< first + UndoFormat.sectorSize]))
            }
        }
        sectorCRCs = crcs
    }

    /// A region as read from a table, already checked.
    private init(offset: Int64, length: Int, contentCount: Int, sectorCRCs: [UInt32], dataOffset: Int) {
        self.offset = offset
        self.length = length
        self.contentCount = contentCount
        self.sectorCRCs = sectorCRCs
        self.dataOffset = dataOffset
    }

    /// The region table's bytes: the entries, then every region's sector CRCs.
    static func encodeTable(_ regions: [UndoRegion]) -> [UInt8] {
        var bytes: [UInt8] = []
        for region in regions {
            bytes.appendLittleEndian(UInt64(region.offset))
            bytes.appendLittleEndian(UInt64(region.length))
            bytes.appendLittleEndian(UInt32(region.contentCount))
            bytes.appendLittleEndian(UInt32(0))
        }
        for region in regions {
            for crc in region.sectorCRCs { bytes.appendLittleEndian(crc) }
        }
        return bytes
    }

    /// Decodes and checks a region table of `header`'s counts.
    ///
    /// - Precondition: `table` holds `layout.tableLength` bytes (the layout was checked
    ///   against the file's size, so the counts are bounded by it).
    static func decodeTable(_ table: [UInt8], header: UndoHeader, layout: UndoLayout,
                            path: String) throws(UndoError) -> [UndoRegion] {
        precondition(table.count == layout.tableLength, "the table must be read whole")
        func fail(_ detail: String) -> UndoError {
            .invalidUndoFile(path: path, check: .regionTable, detail: detail)
        }
        let sector = UndoFormat.sectorSize
        var regions: [UndoRegion] = []
        regions.reserveCapacity(header.regionCount)
        var crcPosition = header.regionCount * UndoFormat.regionEntrySize
        var crcsLeft = header.sectorCRCCount
        var dataLeft = header.dataLength
        var previousEnd: UInt64 = 0
        for index in 0 ..< header.regionCount {
            let entry = index * UndoFormat.regionEntrySize
            let offset: UInt64 = table.loadLittleEndian(at: entry)
            let length: UInt64 = table.loadLittleEndian(at: entry + 8)
            let contentCount: UInt32 = table.loadLittleEndian(at: entry + 16)
            let reserved: UInt32 = table.loadLittleEndian(at: entry + 20)
            let imageSize = UInt64(header.imageSize)
            let place = "region \(index) (\(length) bytes at \(offset))"
            guard reserved == 0 else { throw fail("\(place): reserved field is \(reserved)") }
            guard offset % UInt64(sector) == 0, length > 0, length % UInt64(sector) == 0 else {
                throw fail("\(place) is not a nonempty run of 512-byte sectors")
            }
            guard offset >= previousEnd else {
                throw fail("\(place) starts before the previous region's end \(previousEnd)")
            }
            guard offset <= imageSize, length <= imageSize - offset else {
                throw fail("\(place) lies outside the image (\(imageSize) bytes)")
            }
            guard length <= UInt64(dataLeft) else {
                throw fail("\(place) is longer than the saved data left (\(dataLeft) bytes)")
            }
            guard contentCount >= 2 else {
                throw fail("\(place) may hold \(contentCount) contents; a written region has at least 2")
            }
            let sectors = Int(length) / sector
            let (needed, overflow) = sectors.multipliedReportingOverflow(by: Int(contentCount))
            guard !overflow, needed <= crcsLeft else {
                throw fail("\(place) needs \(sectors) × \(contentCount) sector CRCs, \(crcsLeft) are left")
            }
            var crcs: [UInt32] = []
            crcs.reserveCapacity(needed)
            for position in stride(from: crcPosition, to: crcPosition + needed * 4, by: 4) {
                crcs.append(table.loadLittleEndian(at: position))
            }
            regions.append(UndoRegion(
                offset: Int64(offset), length: Int(length), contentCount: Int(contentCount), sectorCRCs: crcs,
                dataOffset: layout.dataOffset + (header.dataLength - dataLeft)))
            crcPosition += needed * 4
            crcsLeft -= needed
            dataLeft -= Int(length)
            previousEnd = offset + length
        }
        guard crcsLeft == 0 else { throw fail("\(crcsLeft) sector CRCs belong to no region") }
        guard dataLeft == 0 else { throw fail("\(dataLeft) bytes of saved data belong to no region") }
        return regions
    }
}
