import Foundation
import XFSInMemoryBTrees

/// Prints `message` on standard error and exits with `status`.
func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(status)
}

/// Records and blocks of one owner.
struct Totals {
    var records = 0
    var blocks: UInt64 = 0
}

let arguments = CommandLine.arguments
guard arguments.count == 2 else { fail("usage: rmap-owners IMAGE", status: 2) }

do {
    // Open the image (read-only) and walk each allocation group's on-disk rmap btree
    // through the generic btree engine.
    let image = try XFSImage(path: arguments[1])
    var totals: [UInt64: Totals] = [:]
    for agno in 0..<image.geometry.agCount {
        let agf = try image.agf(agno)
        try image.withCursor(RmapFormat.self, AGBTreeRoot(.rmapbt, agno: agno, agf: agf)) { cursor in
            _ = try cursor.queryAll { record in
                totals[record.owner, default: Totals()].records += 1
                totals[record.owner, default: Totals()].blocks += UInt64(record.blockCount)
                return .proceed
            }
        }
    }
    // Most blocks first. An owner is an inode number, or the name of a special owner
    // (FS, LOG, AG, INOBT, INODES, REFC, COW).
    print("owner\trecords\tblocks")
    for (owner, total) in totals.sorted(by: { ($0.value.blocks, $1.key) > ($1.value.blocks, $0.key) }) {
        print("\(RmapOwner.name(owner))\t\(total.records)\t\(total.blocks)")
    }
} catch {
    fail("rmap-owners: \(error)", status: 2)
}
