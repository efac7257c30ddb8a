import Foundation
import Testing

/// `bench btree` as a command (not a measurement): both growth policies run the same
/// workload and agree on every lookup and the scan.
@Suite("bench btree")
struct BenchToolTests {
    @Test("--json prints one line per growth policy, with the fields the issue names, and equal digests")
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
}
