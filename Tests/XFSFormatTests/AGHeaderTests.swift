import Testing
import XFSBuffer
import XFSFormat
import XFSTestSupport

@Suite("AG headers")
struct AGHeaderTests {
    func check(_ db: [String: String], _ expected: [(String, UInt64)], _ what: String) {
        for (field, value) in expected {
            // xfs_db prints a 32-bit NULL (0xFFFFFFFF) as "null", which parses as UInt64.max.
            let shown = XFSDB.number(db[field]).map { $0 == UInt64.max && value == 0xFFFF_FFFF ? 0xFFFF_FFFF : $0 }
            #expect(shown == value, "\(what).\(field): xfs_db says \(db[field] ?? "nothing"), we say \(value)")
        }
    }

    @Test("AGF, AGI and AGFL of every AG match xfs_db", arguments: cleanImages)
    func matchXFSDB(name: String) throws {
        let image = try TestImage(name)
        try #require(XFSDB.isAvailable, "xfs_db is not installed")
        for agno in 0 ..< image.geometry.agCount {
            let agf = try image.agf(agno)
            let db = XFSDB.fields(try XFSDB.run(image.path, ["agf \(agno)", "p"]))
            check(db, [
                ("magicnum", UInt64(agf.magicnum)), ("versionnum", UInt64(agf.versionNum)), ("seqno", UInt64(agf.seqno)),
                ("length", UInt64(agf.length)), ("bnoroot", UInt64(agf.bnoRoot)), ("cntroot", UInt64(agf.cntRoot)),
                ("rmaproot", UInt64(agf.rmapRoot)), ("refcntroot", UInt64(agf.refcountRoot)),
                ("bnolevel", UInt64(agf.bnoLevel)), ("cntlevel", UInt64(agf.cntLevel)), ("rmaplevel", UInt64(agf.rmapLevel)),
                ("refcntlevel", UInt64(agf.refcountLevel)), ("rmapblocks", UInt64(agf.rmapBlocks)),
                ("refcntblocks", UInt64(agf.refcountBlocks)), ("flfirst", UInt64(agf.flFirst)), ("fllast", UInt64(agf.flLast)),
                ("flcount", UInt64(agf.flCount)), ("freeblks", UInt64(agf.freeBlocks)), ("longest", UInt64(agf.longest)),
                ("btreeblks", UInt64(agf.btreeBlocks)), ("lsn", agf.lsn), ("crc", UInt64(agf.crc.byteSwapped)),
            ], "\(name) agf \(agno)")
            #expect(db["uuid"] == agf.uuid.description)

            let agi = try image.agi(agno)
            let idb = XFSDB.fields(try XFSDB.run(image.path, ["agi \(agno)", "p"]))
            check(idb, [
                ("magicnum", UInt64(agi.magicnum)), ("versionnum", UInt64(agi.versionNum)), ("seqno", UInt64(agi.seqno)),
                ("length", UInt64(agi.length)), ("count", UInt64(agi.count)), ("root", UInt64(agi.root)),
                ("level", UInt64(agi.level)), ("freecount", UInt64(agi.freeCount)), ("newino", UInt64(agi.newIno)),
                ("dirino", UInt64(agi.dirIno)),
                ("lsn", agi.lsn), ("crc", UInt64(agi.crc.byteSwapped)), ("free_root", UInt64(agi.freeRoot)),
                ("free_level", UInt64(agi.freeLevel)), ("ino_blocks", UInt64(agi.inobtBlocks)),
                ("fino_blocks", UInt64(agi.finobtBlocks)),
            ], "\(name) agi \(agno)")
            #expect(idb["uuid"] == agi.uuid.description)
            #expect(agi.unlinkedListsAreEmpty)

            let agfl = try image.agfl(agno)
            let fdb = XFSDB.fields(try XFSDB.run(image.path, ["agfl \(agno)", "p"]))
            check(fdb, [("magicnum", UInt64(agfl.magicnum)), ("seqno", UInt64(agfl.seqno)), ("lsn", agfl.lsn),
                        ("crc", UInt64(agfl.crc.byteSwapped))], "\(name) agfl \(agno)")
            let slotsKey = "bno[0-\(image.geometry.agflSize - 1)]"
            let printed = try #require(fdb[slotsKey], "xfs_db printed no \(slotsKey)")
            let dbSlots = printed.split(separator: " ").map { entry -> UInt64? in
                XFSDB.number(String(entry.split(separator: ":").last ?? ""))
            }
            #expect(dbSlots == agfl.slots.map { $0 == Geometry.nullAGBlock ? UInt64.max : UInt64($0) })
            let active = try agfl.activeBlocks(agf: agf, agno: agno, geometry: image.geometry)
            #expect(active.count == Int(agf.flCount))
        }
    }

    @Test("AGF errors name the AG and the field")
    func agfErrors() throws {
        let image = try TestImage("mixed-4k")
        let good = try image.sector(image.geometry.agfByteOffset(1))
        func load(_ edit: (inout [UInt8]) -> Void, fixCRC: Bool = true) -> XFSFormatError? {
            var bytes = good
            edit(&bytes)
            if fixCRC { bytes.withUnsafeMutableBytes { CRC32C.update($0, crcFieldAt: AGF.crcOffset) } }
            return bytes.withUnsafeBytes { raw in
                formatError { () throws(XFSFormatError) in _ = try AGF.load(from: raw, agno: 1, geometry: image.geometry) }
            }
        }
        #expect(load({ $0[100] ^= 1 }, fixCRC: false)?.description == "AG 1 AGF: bad CRC")
        #expect(load({ $0[0] = 0 })?.kind == .badMagic)
        #expect(load({ $0[11] = 2 })?.description == "AG 1 AGF: seqno 2 is not the AG number 1")
        #expect(load({ $0[39] = 9 })?.description.hasPrefix("AG 1 AGF: rmapbt level 9 is outside 1...") == true)
        #expect(load({ $0[39] = 0 })?.description.hasPrefix("AG 1 AGF: rmapbt level 0") == true)
        #expect(load({ $0[43] = 200 })?.description == "AG 1 AGF: flfirst 200 is not below the AGFL size 119")
        // A null root (NULLAGBLOCK) is named null, not 4294967295.
        #expect(load({ for i in 24..<28 { $0[i] = 0xFF } })?.description == "AG 1 AGF: rmapbt root null is outside the AG")
        #expect(load({ for i in 16..<20 { $0[i] = 0xFF } })?.description == "AG 1 AGF: bnobt root null is outside the AG")
        #expect(load({ $0[64] ^= 0xFF })?.detail.hasPrefix("uuid") == true)
        #expect(load({ $0[15] = 1 })?.detail.hasPrefix("length") == true)
        #expect(load({ _ in }) == nil)
        let short = Array(good.prefix(100))
        #expect(short.withUnsafeBytes { raw in
            formatError { () throws(XFSFormatError) in _ = try AGF.load(from: raw, agno: 1, geometry: image.geometry) }
        }?.kind == .truncated)
    }

    @Test("AGI and AGFL errors name the AG and the field")
    func agiAgflErrors() throws {
        let image = try TestImage("mixed-4k")
        var agi = try image.sector(image.geometry.agiByteOffset(2))
        agi[313] ^= 0x10
        #expect(throws: XFSFormatError(.badCRC, "AG 2 AGI", "bad CRC")) {
            try agi.withUnsafeBytes { try AGI.load(from: $0, agno: 2, geometry: image.geometry) }
        }
        var agfl = try image.sector(image.geometry.agflByteOffset(3))
        agfl[7] = 1
        agfl.withUnsafeMutableBytes { CRC32C.update($0, crcFieldAt: AGFL.crcOffset) }
        #expect(throws: XFSFormatError(.corrupt, "AG 3 AGFL", "seqno 1 is not the AG number 3")) {
            try agfl.withUnsafeBytes { try AGFL.load(from: $0, agno: 3, geometry: image.geometry) }
        }
    }

    @Test("free list window: wrap-around and the needs-reset rule")
    func freeListWindow() throws {
        let image = try TestImage("mixed-4k")
        var agf = try image.agf(0)
        let size: UInt32 = 119
        agf.flFirst = 115; agf.flLast = 3; agf.flCount = 8
        #expect(!agf.freeListNeedsReset(agflSize: size))
        #expect(agf.activeFreeListSlots(agflSize: size) == [115, 116, 117, 118, 0, 1, 2, 3])
        agf.flCount = 7
        #expect(agf.freeListNeedsReset(agflSize: size))
        agf.flFirst = 1; agf.flLast = 6; agf.flCount = 6
        #expect(!agf.freeListNeedsReset(agflSize: size))
        #expect(agf.activeFreeListSlots(agflSize: size) == Array(1 ... 6))
        agf.flCount = 0
        #expect(!agf.freeListNeedsReset(agflSize: size))
        #expect(agf.activeFreeListSlots(agflSize: size).isEmpty)

        // An AGFL whose slots wrap, decoded through activeBlocks.
        var agfl = try image.agfl(0)
        agfl.slots = (0 ..< size).map { $0 >= 115 ? 1000 + $0 : ($0 <= 3 ? 2000 + $0 : Geometry.nullAGBlock) }
        agf.flFirst = 115; agf.flLast = 3; agf.flCount = 8
        #expect(try agfl.activeBlocks(agf: agf, agno: 0, geometry: image.geometry) == [1115, 1116, 1117, 1118, 2000, 2001, 2002, 2003])
        agf.flCount = 9
        #expect(throws: XFSFormatError.self) { try agfl.activeBlocks(agf: agf, agno: 0, geometry: image.geometry) }
        agf.flFirst = 10; agf.flLast = 10; agf.flCount = 1
        #expect(throws: XFSFormatError(.corrupt, "AG 0 AGFL", "active slot 10 is empty (NULLAGBLOCK)")) {
            try agfl.activeBlocks(agf: agf, agno: 0, geometry: image.geometry)
        }
    }
}
