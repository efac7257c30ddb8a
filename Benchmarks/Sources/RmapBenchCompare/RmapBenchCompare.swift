import ArgumentParser
import Foundation
import XFSBTree
import XFSRmap

/// `rmap-bench-compare`: the in-memory rmap btree, SQLite and LMDB on the same seeded
/// workload (the same records inserted in the same order, the same probe keys), side by
/// side, with a check that all three returned the same lookups and scan.
@main
struct RmapBenchCompare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rmap-bench-compare",
        abstract: "Compare the in-memory rmap btree with SQLite and LMDB on one workload.",
        discussion: "Run with `swift run -c release rmap-bench-compare --records 1000000`.")

    @Option(help: "Records to insert (and probes to look up).")
    var records = 1_000_000

    @Option(help: "Seed of the workload (the same default as `xfs-rmap bench btree`).")
    var seed: UInt64 = 0x5EED

    @Option(help: "Comma-separated implementations to run: xfbtree (the kernel's growth policy), xfbtree-batched (batched shifts), sqlite, lmdb.")
    var only = "xfbtree,xfbtree-batched,sqlite,lmdb"

    mutating func run() throws {
        guard records > 0 else { throw ValidationError("--records must be positive, not \(records)") }
        let chosen = Set(only.split(separator: ",").map(String.init))
        let workload = RmapBenchWorkload(records: records, seed: seed)
        let benchRecords = workload.records.map {
            BenchRecord(startblock: $0.startBlock, blockcount: $0.blockCount, owner: $0.owner, offset: $0.packedOffset)
        }
        let probes = workload.probes.map {
            BenchRecord(startblock: $0.startBlock, blockcount: 0, owner: $0.owner, offset: $0.packedOffset)
        }

        var results: [BenchResult] = []
        for (name, policy) in [("xfbtree", BTreeGrowthPolicy.kernel), ("xfbtree-batched", .batchedShifts)]
        where chosen.contains(name) {
            let m = try RmapBenchmark.run(workload, growthPolicy: policy)
            results.append(BenchResult(
                implementation: RmapBenchmark.implementationName(policy), records: m.records,
                insertNanoseconds: m.insertNanoseconds, lookupNanoseconds: m.lookupNanoseconds,
                scanNanoseconds: m.scanNanoseconds, bytesPerRecord: m.bytesPerRecord, digest: m.digest))
        }
        if chosen.contains("sqlite") { results.append(try runSQLite(records: benchRecords, probes: probes)) }
        if chosen.contains("lmdb") { results.append(try runLMDB(records: benchRecords, probes: probes)) }

        print("\(records) records, seed \(seed)")
        print(pad("implementation", 24) + pad("insert ns", 12) + pad("lookup ns", 12) + pad("scan ns", 10)
              + pad("B/record", 10) + "digest")
        for r in results {
            print(pad(r.implementation, 24) + pad(one(r.insertNanoseconds), 12) + pad(one(r.lookupNanoseconds), 12)
                  + pad(one(r.scanNanoseconds), 10) + pad(one(r.bytesPerRecord), 10) + String(r.digest, radix: 16))
        }
        for r in results { print(r.json) }
        let digests = Set(results.map(\.digest))
        guard digests.count <= 1 else {
            throw BenchFailure(description: "the implementations disagree: \(results.map { "\($0.implementation) \(String($0.digest, radix: 16))" })")
        }
        print("digests agree")
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(1, width - text.count))
    }

    private func one(_ value: Double) -> String { String(format: "%.1f", value) }
}
