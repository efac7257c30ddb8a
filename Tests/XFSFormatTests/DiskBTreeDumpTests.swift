import Testing
import XFSFormat
import XFSTestSupport

/// Every fixture image: the clean ones and each mkfs geometry.
let allFixtureImages = [
    "empty-4k", "mixed-4k", "mixed-1k", "geo-1k-i512-sect1k", "geo-2k-i1024-oddag",
    "geo-4k-nrext64", "geo-4k-sect4k", "geo-64k-i2048", "geo-8k", "manyag-4k",
]

@Suite("on-disk rmapbt read through the engine")
struct DiskBTreeDumpTests {
    @Test("rmapRecords of every AG, as record text, is what xfs_db btdump printed", arguments: allFixtureImages)
    func recordsMatchCorpus(name: String) throws {
        let image = try XFSImage(path: try Fixtures.imagePath(name))
        var rows: [(agno: UInt32, record: RmapRecord)] = []
        for agno in 0 ..< image.geometry.agCount {
            let headers = try image.agHeaders(agno)
            rows += try image.rmapRecords(in: headers).map { (agno, $0) }
        }
        let expected = try Fixtures.rmapText(name)
        let text = RmapText.format(rows)
        if text != expected {
            // Name the first differing line rather than dumping two large documents.
            let got = text.split(separator: "\n", omittingEmptySubsequences: false)
            let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
            let first = (0 ..< min(got.count, want.count)).first { got[$0] != want[$0] } ?? min(got.count, want.count)
            let gotLine = first < got.count ? String(got[first]) : "<end>"
            let wantLine = first < want.count ? String(want[first]) : "<end>"
            Issue.record("\(name): line \(first + 1) differs: got \(gotLine), want \(wantLine) (\(got.count) lines vs \(want.count))")
        }
        #expect(rows.count == (try Fixtures.metadata(name)["rmap_records"] as? Int))
    }

    @Test("appendLine writes the same bytes as line(agno:_:) plus a newline, extremes included")
    func appendLineMatchesLine() throws {
        var records = [
            RmapRecord(startBlock: 0, blockCount: 1, owner: UInt64(bitPattern: -3), offset: 0),
            RmapRecord(startBlock: .max, blockCount: .max, owner: UInt64(bitPattern: -9), offset: 0),
            RmapRecord(startBlock: 7, blockCount: 10, owner: UInt64(Int64.max), offset: RmapRecord.offsetMask,
                       isAttrFork: true, isBmbtBlock: false, isUnwritten: true),
            RmapRecord(startBlock: 1_000_000, blockCount: 99, owner: 131, offset: 4096, isAttrFork: false, isBmbtBlock: true),
        ]
        let image = try XFSImage(path: try Fixtures.imagePath("mixed-1k"))
        records += try image.rmapRecords(in: try image.agHeaders(1))
        for (agno, record) in zip([0, UInt32.max, 3, 17] + Array(repeating: 1, count: records.count - 4), records) {
            var bytes: [UInt8] = []
            RmapText.appendLine(agno: agno, record, to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == RmapText.line(agno: agno, record) + "\n")
        }
    }

    /// The file target's buffers are locked and the lock is not recursive: the store must
    /// hold a block again rather than lock it twice when the engine re-reads a held block
    /// (a duplicated cursor; a child pointer naming an ancestor).
    @Test("a duplicated cursor on a disk store holds the original's blocks again")
    func duplicateCursor() throws {
        let image = try XFSImage(path: try Fixtures.imagePath("mixed-4k"))
        let headers = try image.agHeaders(1)
        let all = try image.rmapRecords(in: headers)
        try image.withCursor(RmapFormat.self, .rmapbt, in: headers) { cursor in
            #expect(try cursor.moveToFirst())
            var copy = try cursor.duplicate()
            #expect(copy.record == all[0])
            for _ in 0 ..< 300 { _ = try copy.increment() } // into the next leaves, alone
            #expect(copy.record == all[300])
            #expect(cursor.record == all[0])
            copy.close()
            #expect(try cursor.increment())
            #expect(cursor.record == all[1])
        }
        // Every hold was dropped: the blocks can be read (locked) again at once.
        #expect(try image.rmapRecords(in: headers) == all)
    }

    @Test("the rmapbt blocks visited are the blocks the records come from", arguments: ["mixed-4k", "mixed-1k"])
    func blocksCoverTree(name: String) throws {
        let image = try XFSImage(path: try Fixtures.imagePath(name))
        for agno in 0 ..< image.geometry.agCount {
            let headers = try image.agHeaders(agno)
            let blocks = try image.blocks(RmapFormat.self, .rmapbt, in: headers)
            #expect(blocks.first == headers.agf.rmapRoot)
            #expect(Set(blocks).count == blocks.count, "AG \(agno): a block visited twice")
            #expect(UInt32(blocks.count) == headers.agf.rmapBlocks, "AG \(agno): \(blocks.count) blocks, AGF says \(headers.agf.rmapBlocks)")
        }
    }
}
