import Testing
import XFSTestSupport
@testable import XFSFormat

@Suite("rmap: largest high key of a leaf")
struct RmapMaxHighKeyTests {
    @Test("the scan equals decoding every record, ties and wrapping included")
    func matchesBruteForce() {
        var random = SeededRandom(seed: 0x4A11)
        for round in 0..<2_000 {
            let count = Int.random(in: 1...170, using: &random)
            // Few distinct start blocks, so that many records share the largest last block.
            let records = (0..<count).map { _ in
                RmapRecord(
                    startBlock: [0, 7, 8, UInt32.max - 3, UInt32.random(in: 0...40, using: &random)].randomElement(using: &random)!,
                    blockCount: [0, 1, 2, 5, UInt32.max, UInt32.random(in: 1...16, using: &random)].randomElement(using: &random)!,
                    owner: [RmapOwner.ag, RmapOwner.inodes, UInt64.random(in: 128...140, using: &random)].randomElement(using: &random)!,
                    offset: UInt64.random(in: 0..<64, using: &random),
                    isAttrFork: Bool.random(using: &random), isBmbtBlock: Bool.random(using: &random))
            }
            var bytes = [UInt8](repeating: 0, count: count * RmapFormat.recordSize)
            bytes.withUnsafeMutableBytes { raw in
                for (i, r) in records.enumerated() { RmapFormat.storeRecord(r, to: raw.baseAddress! + i * RmapFormat.recordSize) }
            }
            let expected = records.map(RmapFormat.highKey(of:)).max()!
            let fast = bytes.withUnsafeBytes { RmapFormat.maxHighKey(ofRecords: $0.baseAddress!, count: count) }
            #expect(fast == expected, "round \(round)")
            if fast != expected { return }
        }
    }
}
