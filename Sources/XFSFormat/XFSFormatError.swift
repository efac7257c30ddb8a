/// A problem found in on-disk bytes: what is wrong and where.
///
/// Every decoder and validator in XFSFormat throws this for bad input; none traps.
/// The description reads "`location`: `detail`", for example
/// "AG 1 AGF: bad CRC" or "inode 133: data fork extent count 40 exceeds fork size".
public struct XFSFormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The broad class of a problem, for callers that react differently to each.
    public enum Kind: String, Sendable {
        /// The buffer is shorter than the structure.
        case truncated
        /// The magic number is wrong (not this structure at all).
        case badMagic
        /// The stored CRC32c does not match the contents.
        case badCRC
        /// A format version this code does not handle (v4, unknown inode version).
        case badVersion
        /// A valid filesystem that uses a feature this code refuses to work on.
        case unsupported
        /// A field holds a value that is invalid or inconsistent.
        case corrupt
    }

    /// The class of the problem.
    public var kind: Kind
    /// The structure and its place: "superblock", "AG 2 AGI", "inode 133", "AG 0 rmapbt block 5".
    public var location: String
    /// What is wrong, naming the field or feature.
    public var detail: String

    /// An error of `kind` at `location`.
    public init(_ kind: Kind, _ location: String, _ detail: String) {
        self.kind = kind
        self.location = location
        self.detail = detail
    }

    /// "`location`: `detail`".
    public var description: String { "\(location): \(detail)" }
}
