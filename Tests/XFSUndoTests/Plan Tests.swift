import Testing
@testable import XFSUndo

/// A write of `sectors` sectors of `fill` at sector `sector`.
private func write(atSector sector: Int64, sectors: Int, fill: UInt8) -> ImageWritePlan.Write {
    ImageWritePlan.Write(offset: sector * 512, bytes: [UInt8](repeating: fill, count: sectors * 512))
}

@Suite("Image write plan")
struct ImageWritePlanTests {
    @Test("regions: writes of different phases that overlap are cut into pieces covered by the same writes")
    func regions() {
        // Phase 1: sectors 0..<8 and 20..<22; phase 2: 4..<12 (overlaps the first);
        // phase 3: 0..<1 and 21..<22.
        let plan = ImageWritePlan(phases: [
            [write(atSector: 20, sectors: 2, fill: 2), write(atSector: 0, sectors: 8, fill: 1)],
            [write(atSector: 4, sectors: 8, fill: 3)],
            [write(atSector: 0, sectors: 1, fill: 4), write(atSector: 21, sectors: 1, fill: 5)],
        ])
        #expect(plan.writeCount == 5)
        let regions = plan.regions
        #expect(regions.map { [$0.offset / 512, Int64($0.length / 512)] }
            == [[0, 1], [1, 3], [4, 4], [8, 4], [20, 1], [21, 1]])
        // The covering writes, by their fill byte, in plan order.
        #expect(regions.map { region in region.sources.map { region.bytes(of: $0).first! } }
            == [[1, 4], [1], [1, 3], [3], [2], [2, 5]])
        #expect(regions.allSatisfy { region in region.sources.allSatisfy { region.bytes(of: $0).count == region.length } })
    }

    @Test("a region's table entry and sector CRCs survive encoding and decoding")
    func tableRoundTrip() throws {
        let plan = ImageWritePlan(phases: [
            [write(atSector: 2, sectors: 3, fill: 7)], [write(atSector: 3, sectors: 1, fill: 9)],
        ])
        let old = [UInt8](repeating: 0x5A, count: 512)
        var dataOffset = 4096
        var regions: [UndoRegion] = []
        for planned in plan.regions {
            regions.append(UndoRegion(planned, oldContents: Array(repeating: 0x5A, count: planned.length),
                                      dataOffset: dataOffset))
            dataOffset += planned.length
        }
        #expect(regions.map(\.contentCount) == [2, 3, 2])
        #expect(regions[1].crcs(ofSector: 0) == [RawBytes.crc32c(old[...]),
                                                 RawBytes.crc32c([UInt8](repeating: 7, count: 512)[...]),
                                                 RawBytes.crc32c([UInt8](repeating: 9, count: 512)[...])])
        let table = UndoRegion.encodeTable(regions)
        let sectorCRCs = regions.reduce(0) { $0 + $1.sectorCRCs.count }
        let header = UndoHeader(state: .prepared, imageSize: 1 << 20, identityOffset: 0, identity: [1],
                                blobLength: 0, blobCRC: 0, tableCRC: 0, regionCount: 3,
                                sectorCRCCount: sectorCRCs, dataLength: 3 * 512)
        let layout = try #require(UndoLayout(blobLength: 0, regionCount: 3, sectorCRCCount: sectorCRCs,
                                             dataLength: 3 * 512))
        #expect(layout.tableLength == table.count)
        let decoded = try UndoRegion.decodeTable(table, header: header, layout: layout, path: "t")
        #expect(decoded.map(\.offset) == regions.map(\.offset))
        #expect(decoded.map(\.sectorCRCs) == regions.map(\.sectorCRCs))
        #expect(decoded.map(\.dataOffset) == [layout.dataOffset, layout.dataOffset + 512, layout.dataOffset + 1024])
    }

    @Test("the header survives encoding and decoding, and its CRC leaves out the state word")
    func headerRoundTrip() throws {
        let header = UndoHeader(state: .writing, imageSize: 1 << 30, identityOffset: 32, identity: Array(0 ..< 16),
                                blobLength: 512, blobCRC: 0x1234_5678, tableCRC: 0x9ABC_DEF0, regionCount: 8,
                                sectorCRCCount: 99, dataLength: 40960)
        var bytes = header.encoded()
        #expect(try UndoHeader.decode(bytes, path: "h") == header)
        bytes.replaceSubrange(16 ..< 24, with: UndoHeader.stateWord(.finished))
        var finished = header
        finished.state = .finished
        #expect(try UndoHeader.decode(bytes, path: "h") == finished)
    }

    @Test("overlapping writes in one phase trap")
    func overlapTraps() async {
        await #expect(processExitsWith: .failure) {
            _ = ImageWritePlan(phases: [[write(atSector: 0, sectors: 4, fill: 1), write(atSector: 3, sectors: 1, fill: 2)]])
        }
    }

    @Test("a write not made of whole 512-byte sectors traps")
    func misalignedTraps() async {
        await #expect(processExitsWith: .failure) {
            _ = ImageWritePlan.Write(offset: 512, bytes: [UInt8](repeating: 0, count: 100))
        }
        await #expect(processExitsWith: .failure) {
            _ = ImageWritePlan.Write(offset: 100, bytes: [UInt8](repeating: 0, count: 512))
        }
    }

    @Test("adjacent writes in one phase do not trap (the control case)")
    func adjacentIsFine() async {
        await #expect(processExitsWith: .success) {
            _ = ImageWritePlan(phases: [[write(atSector: 0, sectors: 4, fill: 1), write(atSector: 4, sectors: 1, fill: 2)]])
        }
    }
}
