import ArgumentParser
import XFSBTree
import XFSRmap

/// `xfs-rmap bench btree`: the in-memory rmap btree on a seeded random workload, once with
/// the kernel's growth policy and once with batched shifts: inserts, each in its own
/// committed transaction; "greatest record <= key" lookups; one full scan; memory per
/// record; then bulk loads of the same records (default slack and full leaves),
/// checked to read back unchanged.
struct BenchBTree: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "btree",
        abstract: "Measure insert, lookup, scan and memory of the in-memory rmap btree.",
        discussion: """
            Build with `swift build -c release`. The same workload (and the comparison with \
            SQLite and LMDB) runs in the Benchmarks package: `swift run -c release \
            rmap-bench-compare --records N`.
            """)

    @Option(help: "Records to insert (and probes to look up).")
    var records = 1_000_000

    @Option(help: "Seed of the workload.")
    var seed: UInt64 = 0x5EED

    @Flag(help: "Print one JSON line.")
    var json = false

    mutating func run() throws {
        guard records > 0 else { throw ValidationError("--records must be positive, not \(records)") }
        let workload = RmapBenchWorkload(records: records, seed: seed)
        // The kernel's growth policy, then batched shifts, on the same workload.
        let measured = try [BTreeGrowthPolicy.kernel, .batchedShifts].map { policy in
            (policy, try RmapBenchmark.run(workload, growthPolicy: policy))
        }
        // Both trees must have answered every lookup and the scan alike.
        if Set(measured.map(\.1.digest)).count > 1 { throw ToolFailure(description: "the growth policies' digests differ") }
        let sorted = workload.sortedRecords()
        let bulkDefault = try RmapBenchmark.bulkLoad(sorted, leafSlack: nil)
        let bulkFull = try RmapBenchmark.bulkLoad(sorted, leafSlack: 0)

        if json {
            for (policy, m) in measured {
                print(#"{"implementation": "\#(RmapBenchmark.implementationName(policy))", "records": \#(records), "insert_ns": \#(fixed(m.insertNanoseconds)), "lookup_ns": \#(fixed(m.lookupNanoseconds)), "scan_ns": \#(fixed(m.scanNanoseconds)), "bytes_per_record": \#(fixed(m.bytesPerRecord)), "bulk_bytes_per_record": \#(fixed(bulkDefault.bytesPerRecord)), "bulk_full_bytes_per_record": \#(fixed(bulkFull.bytesPerRecord)), "digest": "\#(String(m.digest, radix: 16))"}"#)
            }
            return
        }
        print("xfs-rmap bench btree: \(records) random rmap records, seed \(seed)")
        var rows: [(String, String)] = []
        for (policy, m) in measured {
            let growth = policy == .kernel ? "kernel's growth policy" : "batched shifts"
            rows += [
                ("\(growth):", ""),
                ("  insert (own transaction each)", "\(fixed(m.insertNanoseconds)) ns/record"),
                ("  lookup LE + read record", "\(fixed(m.lookupNanoseconds)) ns/lookup"),
                ("  full scan", "\(fixed(m.scanNanoseconds)) ns/record"),
                ("  memory after inserts", "\(fixed(m.bytesPerRecord)) B/record (height \(m.height), \(m.blocks) blocks)"),
                ("  digest (lookups + scan)", String(m.digest, radix: 16)),
            ]
        }
        rows += [
            ("bulk load, default slack", "\(fixed(bulkDefault.bytesPerRecord)) B/record, \(fixed(bulkDefault.loadNanoseconds)) ns/record (\(bulkDefault.blocks) blocks)"),
            ("bulk load, full leaves (slack 0)", "\(fixed(bulkFull.bytesPerRecord)) B/record, \(fixed(bulkFull.loadNanoseconds)) ns/record (\(bulkFull.blocks) blocks)"),
        ]
        for (name, value) in rows {
            print(value.isEmpty ? name : name + String(repeating: " ", count: max(1, 36 - name.count)) + value)
        }
    }

    /// One decimal place.
    private func fixed(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        guard tenths.isFinite, abs(tenths) < 1e15 else { return "\(value)" }
        let whole = Int(tenths) / 10, fraction = abs(Int(tenths) % 10)
        return "\(tenths < 0 && whole == 0 ? "-" : "")\(whole).\(fraction)"
    }
}
