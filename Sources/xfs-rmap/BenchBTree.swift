import ArgumentParser
import XFSBTree
import XFSRmap

/// `xfs-rmap bench btree`: the in-memory rmap btree on a seeded random workload, once with
/// the kernel's growth policy and once with batched shifts: inserts, each in its own
/// committed transaction; "greatest record <= key" lookups; one full scan; memory per
/// record; then bulk loads of the same records (default slack and full leaves),
/// checked to read back unchanged.
///
/// With `--api both` it measures instead what the record index (`RecordIndex`, the
/// high-level API) costs over the raw format API on the same workload: rounds alternate
/// between the two (both with batched shifts; the first API of each round alternates too),
/// and it prints each one's median and the median of the
/// rounds' ratios index / raw.
struct BenchBTree: ParsableCommand {
    /// Which API the benchmark drives.
    enum API: String, ExpressibleByArgument, CaseIterable {
        /// The raw format API (`InMemoryBTree<RmapFormat>` and its cursors), both growth policies.
        case raw
        /// The raw API and the record index, alternating, with their ratio.
        case both
    }

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

    @Option(help: "raw: the format API with both growth policies; both: the format API against the record index (RecordIndex), alternating.")
    var api: API = .raw

    @Option(help: "Rounds of each API with --api both (medians are reported).")
    var rounds = 5

    mutating func run() throws {
        guard records > 0 else { throw ValidationError("--records must be positive, not \(records)") }
        let workload = RmapBenchWorkload(records: records, seed: seed)
        if api == .both {
            guard rounds > 0 else { throw ValidationError("--rounds must be positive, not \(rounds)") }
            try compareAPIs(workload)
            return
        }
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
                print(#"{"implementation": "\#(RmapBenchmark.implementationName(policy))", "records": \#(records), "insert_ns": \#(decimal1(m.insertNanoseconds)), "lookup_ns": \#(decimal1(m.lookupNanoseconds)), "scan_ns": \#(decimal1(m.scanNanoseconds)), "bytes_per_record": \#(decimal1(m.bytesPerRecord)), "bulk_bytes_per_record": \#(decimal1(bulkDefault.bytesPerRecord)), "bulk_full_bytes_per_record": \#(decimal1(bulkFull.bytesPerRecord)), "digest": "\#(String(m.digest, radix: 16))"}"#)
            }
            return
        }
        print("xfs-rmap bench btree: \(records) random rmap records, seed \(seed)")
        var rows: [(String, String)] = []
        for (policy, m) in measured {
            let growth = policy == .kernel ? "kernel's growth policy" : "batched shifts"
            rows += [
                ("\(growth):", ""),
                ("  insert (own transaction each)", "\(decimal1(m.insertNanoseconds)) ns/record"),
                ("  lookup LE + read record", "\(decimal1(m.lookupNanoseconds)) ns/lookup"),
                ("  full scan", "\(decimal1(m.scanNanoseconds)) ns/record"),
                ("  memory after inserts", "\(decimal1(m.bytesPerRecord)) B/record (height \(m.height), \(m.blocks) blocks)"),
                ("  digest (lookups + scan)", String(m.digest, radix: 16)),
            ]
        }
        rows += [
            ("bulk load, default slack", "\(decimal1(bulkDefault.bytesPerRecord)) B/record, \(decimal1(bulkDefault.loadNanoseconds)) ns/record (\(bulkDefault.blocks) blocks)"),
            ("bulk load, full leaves (slack 0)", "\(decimal1(bulkFull.bytesPerRecord)) B/record, \(decimal1(bulkFull.loadNanoseconds)) ns/record (\(bulkFull.blocks) blocks)"),
        ]
        for (name, value) in rows {
            print(value.isEmpty ? name : name + String(repeating: " ", count: max(1, 36 - name.count)) + value)
        }
    }

    /// Alternates the raw format API and the record index, `rounds` times each, and prints
    /// the medians and the ratios index / raw.
    private func compareAPIs(_ workload: RmapBenchWorkload) throws {
        var raw: [RmapBenchMeasurement] = [], index: [RmapBenchMeasurement] = []
        // Each round swaps which API goes first, so neither always meets the memory
        // state the other left.
        for round in 0..<rounds {
            if round % 2 == 0 {
                raw.append(try RmapBenchmark.run(workload, growthPolicy: .batchedShifts))
                index.append(try IndexBenchmark.run(workload))
            } else {
                index.append(try IndexBenchmark.run(workload))
                raw.append(try RmapBenchmark.run(workload, growthPolicy: .batchedShifts))
            }
        }
        if Set((raw + index).map(\.digest)).count > 1 {
            throw ToolFailure(description: "the raw API's and the index's digests differ")
        }
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        /// The median over rounds of index / raw, each round's two runs taken minutes apart at most.
        func roundRatio(_ value: (RmapBenchMeasurement) -> Double) -> Double {
            median(zip(raw, index).map { value($1) / value($0) })
        }
        let metrics: [(name: String, key: String, unit: String, value: (RmapBenchMeasurement) -> Double)] = [
            ("insert (own transaction each)", "insert_ns", "ns/record", \.insertNanoseconds),
            ("lookup LE + read record", "lookup_ns", "ns/lookup", \.lookupNanoseconds),
            ("full scan", "scan_ns", "ns/record", \.scanNanoseconds),
            ("memory after inserts", "bytes_per_record", "B/record", \.bytesPerRecord),
        ]
        if json {
            let fields = metrics.map { m in
                let r = median(raw.map(m.value)), i = median(index.map(m.value))
                return #""raw_\#(m.key)": \#(decimal1(r)), "index_\#(m.key)": \#(decimal1(i)), "ratio_\#(m.key)": \#(decimal2(roundRatio(m.value)))"#
            }
            print(#"{"records": \#(records), "rounds": \#(rounds), \#(fields.joined(separator: ", ")), "digest": "\#(String(raw[0].digest, radix: 16))"}"#)
            return
        }
        print("xfs-rmap bench btree --api both: \(records) random rmap records, seed \(seed), \(rounds) alternating rounds, batched shifts")
        print("raw = InMemoryBTree<RmapFormat> and its cursor, index = RecordIndex<BenchExtent>; medians of the")
        print("rounds, and the median of each round's ratio index / raw (both APIs measured in the same minute)")
        print("".rightPadded(32) + "raw".leftPadded(12) + "index".leftPadded(12) + "index/raw".leftPadded(11))
        for m in metrics {
            let r = median(raw.map(m.value)), i = median(index.map(m.value))
            print(m.name.rightPadded(32) + decimal1(r).leftPadded(12) + decimal1(i).leftPadded(12)
                  + decimal2(roundRatio(m.value)).leftPadded(11) + "  " + m.unit)
        }
        print("rounds (insert ns, raw / index): " + zip(raw, index).map { "\(decimal1($0.insertNanoseconds)) / \(decimal1($1.insertNanoseconds))" }.joined(separator: ", "))
        print("digest (lookups + scan, both APIs)   \(String(raw[0].digest, radix: 16))")
    }

}


extension String {
    /// The string left-aligned in `width` characters.
    fileprivate func rightPadded(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    /// The string right-aligned in `width` characters, padded with `pad`.
    fileprivate func leftPadded(_ width: Int, with pad: Character = " ") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

/// One decimal place, as the tables print figures.
private func decimal1(_ value: Double) -> String { decimal(value, places: 1) }

/// Two decimal places, as the tables print ratios.
private func decimal2(_ value: Double) -> String { decimal(value, places: 2) }
