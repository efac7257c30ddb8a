// swift-tools-version: 6.1
//
// XFS in-memory btrees, in Swift: the system of the Linux 6.9 pull request
// "xfs: support in-memory btrees", put to work on real XFS images.
//
// One module per layer; dependencies point down only:
//
//   xfs-rmap (tool)
//     └─ XFSRmap            rmap observations (scan) and the check
//          ├─ XFSInMemoryBTree   btrees on a memory target (xfbtree)
//          │    └─ XFSTransaction    buffers joined, logged, laundered
//          └─ XFSFormat          on-disk structures, disk btree stores
//               └─ XFSBTree          the one generic btree engine (CXFSShims: prefetch)
//   XFSUndo                crash-safe, undoable image writes (undo file written first)
//   XFSBuffer              buffers, targets, per-target caches, CRC32c
//     └─ XFSMemoryFile     memfd-backed, sparse, mappable memory
//          └─ CXFSShims    memfd_create, fallocate flags, hardware CRC32c, prefetch

import PackageDescription

let package = Package(
    name: "xfs-inmemory-btrees",
    platforms: [.macOS(.v15)],
    products: [
        .library(
            name: "XFSInMemoryBTrees",
            targets: [
                "XFSMemoryFile", "XFSBuffer", "XFSTransaction", "XFSBTree",
                "XFSInMemoryBTree", "XFSFormat", "XFSRmap", "XFSUndo",
            ]),
        .executable(name: "xfs-rmap", targets: ["xfs-rmap"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "CXFSShims"),
        .target(name: "XFSMemoryFile", dependencies: ["CXFSShims"]),
        .target(name: "XFSBuffer", dependencies: ["XFSMemoryFile", "CXFSShims"]),
        .target(name: "XFSTransaction", dependencies: ["XFSBuffer"]),
        .target(name: "XFSBTree", dependencies: ["CXFSShims"]),
        .target(
            name: "XFSInMemoryBTree",
            dependencies: ["XFSBTree", "XFSTransaction", "XFSBuffer", "XFSMemoryFile"]),
        .target(name: "XFSFormat", dependencies: ["XFSBTree", "XFSBuffer"]),
        .target(name: "XFSRmap", dependencies: ["XFSFormat", "XFSInMemoryBTree", "CXFSShims"]),
        .target(name: "XFSUndo", dependencies: ["XFSBuffer"]),
        .executableTarget(
            name: "xfs-rmap",
            dependencies: [
                "XFSRmap", "XFSUndo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(name: "XFSTestSupport", path: "Tests/XFSTestSupport"),
        .testTarget(name: "XFSMemoryFileTests", dependencies: ["XFSMemoryFile", "XFSTestSupport"]),
        .testTarget(name: "XFSBufferTests", dependencies: ["XFSBuffer", "XFSTestSupport"]),
        .testTarget(name: "XFSTransactionTests", dependencies: ["XFSTransaction", "XFSBuffer"]),
        .testTarget(name: "XFSBTreeTests", dependencies: ["XFSBTree", "XFSTestSupport"]),
        .testTarget(
            name: "XFSInMemoryBTreeTests",
            dependencies: ["XFSInMemoryBTree", "XFSTransaction", "XFSFormat", "XFSTestSupport"]),
        .testTarget(name: "XFSFormatTests", dependencies: ["XFSFormat", "XFSBuffer", "XFSTestSupport"]),
        .testTarget(name: "XFSUndoTests", dependencies: ["XFSUndo", "XFSBuffer", "CXFSShims", "XFSTestSupport"]),
        .testTarget(name: "XFSRmapTests", dependencies: ["XFSRmap", "XFSFormat", "XFSBTree", "XFSUndo", "XFSTestSupport"]),
        // Runs the built `xfs-rmap` binary (found next to the test bundle) on real and
        // damaged images; the dependency makes `swift test` build it first.
        .testTarget(name: "XFSRmapToolTests", dependencies: ["xfs-rmap", "XFSTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
