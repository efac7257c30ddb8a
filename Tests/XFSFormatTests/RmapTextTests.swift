import Testing
import XFSFormat
import XFSTestSupport

@Suite("Rmap text format")
struct RmapTextTests {
    @Test("parse then format reproduces the corpus files byte for byte", arguments: cleanImages)
    func roundTrip(name: String) throws {
        let text = try Fixtures.rmapText(name)
        let rows = try RmapText.parse(document: text)
        #expect(RmapText.format(rows) == text)
        #expect(text.hasPrefix(RmapText.header + "\n"))
    }

    @Test func lines() throws {
        let special = RmapRecord(startBlock: 0, blockCount: 1, owner: RmapOwner.fs)
        #expect(RmapText.line(agno: 0, special) == "0\t0\t1\t-3\t0\t0\t0\t0")
        let attrBmbt = RmapRecord(startBlock: 2761, blockCount: 1, owner: 68, isAttrFork: true, isBmbtBlock: true)
        #expect(RmapText.line(agno: 2, attrBmbt) == "2\t2761\t1\t68\t0\t0\t1\t1")
        let unwritten = RmapRecord(startBlock: 5, blockCount: 9, owner: 262_272, offset: 8_388_608, isUnwritten: true)
        let parsed = try RmapText.parse(line: "1\t5\t9\t262272\t8388608\t1\t0\t0")
        #expect(parsed.agno == 1 && parsed.record == unwritten)
        #expect(try RmapText.parse(line: "0\t1\t2\t-9\t0\t0\t0\t0").record.owner == RmapOwner.cow)
    }

    @Test func badLines() {
        #expect(throws: XFSFormatError(.corrupt, "rmap text line 3", "expected 8 tab-separated fields, found 2")) {
            try RmapText.parse(line: "0\t1", lineNumber: 3)
        }
        #expect(throws: XFSFormatError.self) { try RmapText.parse(line: "0\tx\t1\t1\t0\t0\t0\t0") }
        #expect(throws: XFSFormatError.self) { try RmapText.parse(line: "0\t1\t1\t1\t0\t2\t0\t0") }
        #expect(throws: XFSFormatError.self) { try RmapText.parse(line: "0\t1\t1\t1\t\(UInt64(1) << 54)\t0\t0\t0") }
        #expect(throws: XFSFormatError.self) { try RmapText.parse(document: "no header\n") }
    }
}
