// swift-tools-version: 6.1
//
// A program of one's own on XFSInMemoryBTrees: an index of file extents (a record type
// written here, no pointers), with lookups, range and overlap queries, and transactions.
//
//     swift run --package-path Examples/ExtentIndex
//
// It depends on the library by path, two folders up. A package elsewhere names it by URL
// instead, as the README shows.
import PackageDescription

/// SwiftPM names a path dependency after its folder (lowercased): the folder this
/// repository was cloned into, two levels up from this file.
let library = String(Context.packageDirectory.split(separator: "/").dropLast(2).last ?? "xfs-inmemory-btrees").lowercased()

let package = Package(
    name: "ExtentIndex",
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(
            name: "ExtentIndex",
            dependencies: [.product(name: "XFSInMemoryBTrees", package: library)]),
    ],
    swiftLanguageModes: [.v6]
)
