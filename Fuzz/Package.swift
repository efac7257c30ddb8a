// swift-tools-version: 6.1
//
// The libFuzzer target for the image reader and the check, kept out of the library's
// package (it needs `-sanitize=fuzzer`, which replaces `main`). Build and run it with
// `scripts/fuzz.sh` from the repository root.
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its folder, so the library package's identity is
/// the name of this folder's parent (a worktree may not be called "xfs-inmemory-btrees").
let libraryPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "xfs-rmap-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "CLibFuzzer"),
        .executableTarget(
            name: "XFSRmapFuzz",
            dependencies: ["CLibFuzzer", .product(name: "XFSInMemoryBTrees", package: libraryPackage)],
            path: "Sources/XFSRmapFuzz"),
    ],
    swiftLanguageModes: [.v6]
)
