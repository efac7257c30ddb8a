// swift-tools-version: 6.1
//
// Reads the reverse-mapping (rmap) records of an XFS image through XFSInMemoryBTrees and
// prints, per owner, how many records and blocks it has.
//
//     swift run --package-path Examples/RmapOwners rmap-owners IMAGE
//
// It depends on the library by path, two folders up. A package elsewhere names it by URL
// instead, as the README shows.
import PackageDescription

/// SwiftPM names a path dependency after its folder (lowercased): the folder this
/// repository was cloned into, two levels up from this file.
let library = String(Context.packageDirectory.split(separator: "/").dropLast(2).last ?? "xfs-inmemory-btrees").lowercased()

let package = Package(
    name: "RmapOwners",
    products: [.executable(name: "rmap-owners", targets: ["RmapOwners"])],
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(
            name: "RmapOwners",
            dependencies: [.product(name: "XFSInMemoryBTrees", package: library)]),
    ],
    swiftLanguageModes: [.v6]
)
