import Foundation
import Testing

/// `bench btree` as a command (not a measurement): both growth policies run the same
/// workload and agree on every lookup and the scan.
@Suite("bench btree")
struct BenchToolTests {
    @Test("--json prints one line per growth policy, with the benchmark's fields, and equal digests")
    func jsonLines() throws {
        let outcome = try ToolRunner.run(["bench", "btree", "--records", "3000", "--json"], timeout: 60)
        #expect(outcome.status == 0, "\(outcome)")
        let lines = outcome.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(outcome)")
        var digests: [String] = []
        var implementations: [String] = []
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for field in ["implementation", "records", "insert_ns", "lookup_ns", "scan_ns", "bytes_per_record", "digest"] {
                #expect(object[field] != nil, "\(field) missing from \(line)")
            }
            #expect(object["records"] as? Int == 3000)
            implementations.append(object["implementation"] as? String ?? "")
            digests.append(object["digest"] as? String ?? "")
        }
        #expect(implementations == ["xfbtree-swift", "xfbtree-swift-batched"])
        #expect(Set(digests).count == 1 && !(digests.first ?? "").isEmpty)
    }

    @Test("--api both runs the raw format API and the record index alternately, agreeing on every result")
    func bothAPIs() throws {
        let outcome = try ToolRunner.run(["bench", "btree", "--records", "3000", "--api", "both", "--rounds", "2", "--json"],
                                         timeout: 60)
        #expect(outcome.status == 0, "\(outcome)")
        let lines = outcome.stdout.split(separator: "\n")
        #expect(lines.count == 1, "\(outcome)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) as? [String: Any])
        for metric in ["insert_ns", "lookup_ns", "scan_ns", "bytes_per_record"] {
            for side in ["raw_", "index_", "ratio_"] {
                #expect(object[side + metric] != nil, "\(side + metric) missing from \(outcome.stdout)")
            }
        }
        #expect(object["rounds"] as? Int == 2)
        #expect((object["digest"] as? String ?? "").isEmpty == false)

        let text = try ToolRunner.run(["bench", "btree", "--records", "2000", "--api", "both", "--rounds", "1"], timeout: 60)
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("index/raw"), "\(text.stdout)")
    }
}
