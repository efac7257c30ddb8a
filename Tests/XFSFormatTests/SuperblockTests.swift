import Testing
import XFSBuffer
import XFSFormat
import XFSTestSupport

/// The clean fixture images every real-image test runs on.
let cleanImages = ["empty-4k", "mixed-4k", "mixed-1k"]

@Suite("Superblock")
struct SuperblockTests {
    @Test("every numeric field matches xfs_db", arguments: cleanImages)
    func matchesXFSDB(name: String) throws {
        let image = try TestImage(name)
        let sb = image.superblock
        try #require(XFSDB.isAvailable, "xfs_db is not installed")
        let db = XFSDB.fields(try XFSDB.run(image.path, ["sb 0", "p"]))
        let expected: [(String, UInt64)] = [
            ("magicnum", UInt64(sb.magicnum)), ("blocksize", UInt64(sb.blockSize)), ("dblocks", sb.dataBlocks),
            ("rblocks", sb.rtBlocks), ("rextents", sb.rtExtents), ("logstart", sb.logStart), ("rootino", sb.rootIno),
            ("rbmino", sb.rbmIno), ("rsumino", sb.rsumIno), ("rextsize", UInt64(sb.rtExtSize)),
            ("agblocks", UInt64(sb.agBlocks)), ("agcount", UInt64(sb.agCount)), ("rbmblocks", UInt64(sb.rbmBlocks)),
            ("logblocks", UInt64(sb.logBlocks)), ("versionnum", UInt64(sb.versionNum)), ("sectsize", UInt64(sb.sectorSize)),
            ("inodesize", UInt64(sb.inodeSize)), ("inopblock", UInt64(sb.inodesPerBlock)), ("blocklog", UInt64(sb.blockLog)),
            ("sectlog", UInt64(sb.sectorLog)), ("inodelog", UInt64(sb.inodeLog)), ("inopblog", UInt64(sb.inodesPerBlockLog)),
            ("agblklog", UInt64(sb.agBlockLog)), ("rextslog", UInt64(sb.rtExtentsLog)), ("inprogress", UInt64(sb.inProgress)),
            ("imax_pct", UInt64(sb.imaxPct)), ("icount", sb.icount), ("ifree", sb.ifree), ("fdblocks", sb.freeDataBlocks),
            ("frextents", sb.freeRtExtents), ("uquotino", sb.uquotIno == 0 ? UInt64.max : sb.uquotIno),
            ("gquotino", sb.gquotIno == 0 ? UInt64.max : sb.gquotIno), ("qflags", UInt64(sb.qflags)),
            ("flags", UInt64(sb.flags)), ("shared_vn", UInt64(sb.sharedVN)), ("inoalignmt", UInt64(sb.inodeAlignment)),
            ("unit", UInt64(sb.stripeUnit)), ("width", UInt64(sb.stripeWidth)), ("dirblklog", UInt64(sb.dirBlockLog)),
            ("logsectlog", UInt64(sb.logSectorLog)), ("logsectsize", UInt64(sb.logSectorSize)),
            ("logsunit", UInt64(sb.logStripeUnit)), ("features2", UInt64(sb.features2)),
            ("bad_features2", UInt64(sb.badFeatures2)), ("features_compat", UInt64(sb.featuresCompat)),
            ("features_ro_compat", UInt64(sb.featuresROCompat)), ("features_incompat", UInt64(sb.featuresIncompat)),
            ("features_log_incompat", UInt64(sb.featuresLogIncompat)), ("crc", UInt64(sb.crc.byteSwapped)),
            ("spino_align", UInt64(sb.sparseInodeAlignment)),
            ("pquotino", sb.pquotIno == 0 ? UInt64.max : sb.pquotIno), ("lsn", sb.lsn),
        ]
        for (field, value) in expected {
            #expect(XFSDB.number(db[field]) == value, "\(name) sb.\(field): xfs_db says \(db[field] ?? "nothing")")
        }
        #expect(db["uuid"] == sb.uuid.description)
        #expect(db["meta_uuid"] == sb.metaUUIDField.description)
        #expect(db["crc"]?.hasSuffix("(correct)") == true)
    }

    @Test("feature accessors and derived geometry of the fixtures", arguments: cleanImages)
    func features(name: String) throws {
        let sb = try TestImage(name).superblock
        #expect(sb.hasRmapBT && sb.hasReflink && sb.hasFinobt && sb.hasSparseInodes && sb.hasInobtCounts)
        #expect(!sb.hasMetaUUID)
        #expect(sb.metaUUID == sb.uuid)
        let g = sb.geometry
        #expect(g.agflSize == (g.sectorSize - 36) / 4)
        #expect(g.ownFSLength == 3 * g.sectorSize / g.blockSize + 1)
        #expect(g.agBlockMask == (UInt64(1) << sb.agBlockLog) - 1)
    }

    @Test("every AG's superblock copy verifies", arguments: cleanImages)
    func secondaryCopies(name: String) throws {
        let image = try TestImage(name)
        for agno in 0 ..< image.geometry.agCount {
            let sector = try image.sector(image.geometry.superblockByteOffset(agno))
            let copy = try sector.withUnsafeBytes { try Superblock.load(from: $0, agno: agno) }
            #expect(copy.uuid == image.superblock.uuid)
            #expect(copy.agBlocks == image.superblock.agBlocks)
        }
    }
}

/// Bad superblocks: each gives a clear error and never a crash.
@Suite("Superblock: bad input")
struct SuperblockBadInputTests {
    /// The primary superblock sector of mixed-4k.
    func goodSector() throws -> [UInt8] {
        let image = try TestImage("mixed-4k")
        return try image.sector(0)
    }

    func load(_ bytes: [UInt8]) -> Result<Superblock, XFSFormatError> {
        bytes.withUnsafeBytes { raw in Result { () throws(XFSFormatError) in try Superblock.load(from: raw) } }
    }

    /// Applies `edit` to a good sector, refreshes the CRC, and loads it.
    func loadEdited(_ edit: (inout [UInt8]) -> Void) throws -> Result<Superblock, XFSFormatError> {
        var bytes = try goodSector()
        edit(&bytes)
        bytes.withUnsafeMutableBytes { CRC32C.update($0, crcFieldAt: Superblock.crcOffset) }
        return load(bytes)
    }

    func error(_ r: Result<Superblock, XFSFormatError>) -> XFSFormatError? {
        if case let .failure(e) = r { return e }
        return nil
    }

    @Test func zeroed() {
        let e = error(load([UInt8](repeating: 0, count: 512)))
        #expect(e?.kind == .badMagic)
        #expect(e?.description.hasPrefix("superblock: bad magic") == true)
    }

    @Test func randomBytes() {
        var rng = SeededRandom(seed: 7)
        for _ in 0 ..< 200 {
            let bytes = (0 ..< 512).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            #expect(error(load(bytes)) != nil)
        }
    }

    @Test func randomBytesWithMagic() {
        var rng = SeededRandom(seed: 8)
        for _ in 0 ..< 200 {
            var bytes = (0 ..< 4096).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
            bytes.replaceSubrange(0 ..< 4, with: [0x58, 0x46, 0x53, 0x42])
            bytes[100] = 0xB4; bytes[101] = 0xB5
            bytes.withUnsafeMutableBytes { CRC32C.update(UnsafeMutableRawBufferPointer(rebasing: $0[0 ..< 512]), crcFieldAt: 224) }
            #expect(error(load(bytes)) != nil)
        }
    }

    @Test func flippedCRCByte() throws {
        var bytes = try goodSector()
        bytes[224] ^= 0x01
        #expect(error(load(bytes)) == XFSFormatError(.badCRC, "superblock", "bad CRC"))
        bytes[224] ^= 0x01
        bytes[300] ^= 0x80 // a byte the CRC covers beyond the struct
        #expect(error(load(bytes))?.kind == .badCRC)
    }

    @Test func versionFour() throws {
        let e = error(try loadEdited { $0[101] = ($0[101] & 0xF0) | 4 })
        #expect(e?.description == "superblock: version 4 filesystems are not supported")
    }

    @Test func unknownIncompatBit() throws {
        let e = error(try loadEdited { $0[216] |= 0x40 }) // 0x4000_0000
        #expect(e?.kind == .unsupported)
        #expect(e?.description == "superblock: unsupported feature: unknown incompat feature bits 0x40000000")
    }

    @Test func refusedFeatures() throws {
        #expect(error(try loadEdited { $0[219] |= 0x10 })?.detail.contains("NEEDSREPAIR") == true)
        #expect(error(try loadEdited { $0[126] = 1 })?.detail.contains("inprogress") == true)
        #expect(error(try loadEdited { $0[223] = 1 })?.detail.contains("log incompat") == true)
        #expect(error(try loadEdited { $0[23] = 1 })?.description == "superblock: unsupported feature: realtime volume")
    }

    @Test("an external log (logstart 0) is accepted by the superblock; opening the image asks for its device")
    func externalLog() throws {
        let external = try loadEdited { for i in 48 ..< 56 { $0[i] = 0 } }.get()
        #expect(external.hasExternalLog && external.geometry.internalLog == nil)
        #expect(error(try loadEdited { for i in 48 ..< 56 { $0[i] = 0 }; for i in 96 ..< 100 { $0[i] = 0 } })?.description
            == "superblock: external log of logblocks 0")
    }

    @Test func badGeometry() throws {
        #expect(error(try loadEdited { $0[6] = 0x0F; $0[7] = 0xFF })?.detail.contains("blocksize") == true)
        #expect(error(try loadEdited { $0[124] += 1 })?.detail.contains("agblklog") == true)
        #expect(error(try loadEdited { $0[107] = 9 })?.detail.contains("inopblock") == true)
        #expect(error(try loadEdited { for i in 88 ..< 92 { $0[i] = 0 } })?.detail.contains("agcount") == true)
        #expect(error(try loadEdited { $0[8] = 0x10 })?.detail.contains("dblocks") == true)
    }

    /// A geometry that passes every other check but describes more than 2^63 bytes (4 GiB
    /// AGs of 4k blocks, 2^32 − 1 of them): its size in bytes does not fit in 64 bits, and
    /// opening the image trapped computing it.
    @Test func moreThan2To63Bytes() throws {
        let e = error(try loadEdited { bytes in
            func set(_ value: UInt64, at offset: Int, size: Int) {
                for i in 0 ..< size { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * (size - 1 - i))) }
            }
            let agBlocks: UInt64 = 1 << 29, agCount: UInt64 = 0xFFFF_FFFF
            set(agBlocks, at: 84, size: 4)
            set(agCount, at: 88, size: 4)
            set(agBlocks * agCount, at: 8, size: 8) // dblocks: every AG full
            bytes[124] = 29 // agblklog
        })
        #expect(e?.kind == .corrupt)
        #expect(e?.detail.contains("exceeds 2^63 bytes") == true, "\(String(describing: e))")
    }

    @Test func truncated() throws {
        let bytes = try goodSector()
        for n in [0, 1, 100, 263] {
            #expect(error(load(Array(bytes.prefix(n))))?.kind == .truncated)
        }
        // The struct fits but the CRC span (one sector) does not.
        let e = error(load(Array(bytes.prefix(300))))
        #expect(e?.kind == .truncated)
        #expect(e?.location == "superblock")
    }
}
