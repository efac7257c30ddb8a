import Foundation
import Testing
import XFSFormat
import XFSRmap
import XFSTestSupport

/// Every fixture image, by name: the kernel wrote their rmapbts, so the scan must reproduce
/// them exactly and the check must find nothing.
let fixtureNames: [String] = {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.directory.path)) ?? []
    return files.filter { $0.hasSuffix(".img.zst") }.map { String($0.dropLast(".img.zst".count)) }.sorted()
}()

@Suite("Clean images")
struct CleanImageTests {
    @Test("the fixtures are all there")
    func fixturesPresent() {
        #expect(fixtureNames.count >= 9, "fixtures: \(fixtureNames)")
        #expect(fixtureNames.contains("mixed-4k"))
    }

    @Test("scan equals the kernel's records and check is consistent in every AG", arguments: fixtureNames)
    func cleanImage(_ name: String) throws {
        let image = try XFSImage(path: Fixtures.imagePath(name))
        let kernel = try RmapText.parse(document: Fixtures.rmapText(name))
        let scanner = try RmapScanner(image: image)
        let ags = Array(0..<image.geometry.agCount)
        try scanner.scan(ags: ags)
        #expect(scanner.problems.isEmpty, "\(name): \(scanner.problems.prefix(3))")
        let checker = RmapChecker(scanner: scanner)
        for agno in ags {
            let want = kernel.filter { $0.agno == agno }.map(\.record)
            let got = try scanner.tree(agno).records()
            #expect(got.count == want.count, "\(name) AG \(agno): \(got.count) records scanned, \(want.count) in .rmap.tsv")
            if got != want {
                let first = firstDifference(got, want)
                let scanned = got.dropFirst(first).first.map(RmapText.describe) ?? "none"
                let onDisk = want.dropFirst(first).first.map(RmapText.describe) ?? "none"
                Issue.record("\(name) AG \(agno): first difference at record \(first): scanned \(scanned), kernel \(onDisk)")
            }
            let (summary, findings) = try checker.check(agno)
            #expect(findings.isEmpty, "\(name): \(findings.prefix(3).map(\.description))")
            #expect(summary.isConsistent)
            #expect(summary.expectedRecords == want.count && summary.onDiskRecords == want.count)
        }
    }
}
