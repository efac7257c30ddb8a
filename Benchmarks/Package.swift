// swift-tools-version: 6.1
//
// Side-by-side benchmarks of the in-memory rmap btree against SQLite and LMDB, kept out of
// the library's dependencies. Run from this folder:
//
//     swift run -c release rmap-bench-compare --records 1000000
import Foundation
import PackageDescription

/// SwiftPM names a path dependency after its folder, so the library package's identity is
/// the name of this folder's parent (a worktree may not be called "xfs-inmemory-btrees").
let libraryPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "xfs-inmemory-btrees-benchmarks",
    products: [.executable(name: "rmap-bench-compare", targets: ["RmapBenchCompare"])],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .executableTarget(
            name: "RmapBenchCompare",
            dependencies: [
                "CSQLite", "CLMDB",
                .product(name: "XFSInMemoryBTrees", package: libraryPackage),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/RmapBenchCompare"),
    ],
    swiftLanguageModes: [.v6]
)
