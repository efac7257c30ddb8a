import XFSBTree

// The two record formats a RecordIndex runs the engine with. Both take everything from the
// user's IndexRecord; they differ in how keys are made unique, since the engine (like
// libxfs) keeps keys strictly increasing:
//
//   UniqueKeyFormat     record = the user's record, key = its key. A second record with an
//                       existing key is refused before it reaches the engine.
//   DuplicateKeyFormat  record = the user's record + an 8-byte serial number, key = the
//                       user's key + the serial. Every insert takes the next serial, so
//                       equal user keys sort in insertion order and engine keys stay unique.

/// The format interface the index's engine (`IndexEngine`) works through.
@usableFromInline
protocol IndexFormat: BTreeRecordFormat {
    /// The user's record type.
    associatedtype User: IndexRecord
    /// Whether several records may share a user key.
    static var allowsDuplicates: Bool { get }
    /// The engine record for `record` with serial number `serial` (ignored when unique).
    static func entry(_ record: User, serial: UInt64) -> Record
    /// The user's record of an engine record.
    static func user(_ entry: Record) -> User
    /// The engine key for user key `key` and serial `serial` (ignored when unique).
    static func key(_ key: User.Key, serial: UInt64) -> Key
    /// The user key of an engine key.
    static func userKey(_ key: Key) -> User.Key
    /// The serial of an engine key (0 when unique).
    static func serial(_ key: Key) -> UInt64
}

/// The magic number in the headers of an index's blocks: "XIDX" for unique keys, "XIDD"
/// when duplicates are allowed.
@usableFromInline let uniqueIndexMagic: UInt32 = 0x5849_4458
@usableFromInline let duplicateIndexMagic: UInt32 = 0x5849_4444

/// Records with unique keys: the user's record and key as they are.
@usableFromInline
enum UniqueKeyFormat<User: IndexRecord>: IndexFormat {
    @usableFromInline typealias Record = User
    @usableFromInline typealias Key = User.Key

    @usableFromInline static var name: String { User.indexName }
    @usableFromInline static var magic: UInt32 { uniqueIndexMagic }
    @inlinable static var recordSize: Int { User.encodedSize }
    @inlinable static var keySize: Int { User.Key.encodedSize }
    @inlinable static var isOverlapping: Bool { User.coversKeyInterval }
    @inlinable static var allowsDuplicates: Bool { false }

    @inlinable @inline(__always)
    static func loadRecord(from bytes: UnsafeRawPointer) -> User { User.load(from: bytes) }
    @inlinable @inline(__always)
    static func storeRecord(_ record: User, to bytes: UnsafeMutableRawPointer) { User.store(record, to: bytes) }
    @inlinable @inline(__always)
    static func loadKey(from bytes: UnsafeRawPointer) -> User.Key { User.Key.load(from: bytes) }
    @inlinable @inline(__always)
    static func storeKey(_ key: User.Key, to bytes: UnsafeMutableRawPointer) { User.Key.store(key, to: bytes) }

    @inlinable @inline(__always)
    static func loadLowKey(fromRecord bytes: UnsafeRawPointer) -> User.Key { User.loadKey(from: bytes) }
    @inlinable @inline(__always)
    static func lowKey(of record: User) -> User.Key { record.key }
    @inlinable @inline(__always)
    static func highKey(of record: User) -> User.Key { User.coversKeyInterval ? record.lastKey : record.key }
    @inlinable
    static func isContiguous(_ high: User.Key, followedBy low: User.Key) -> Bool {
        User.Key.isContiguous(high, followedBy: low)
    }
    @inlinable
    static func check(_ record: User) -> String? { record.validityProblem }
    @inlinable @inline(__always)
    static func interpolationPosition(of key: User.Key) -> UInt64? { key.interpolationPosition }

    @inlinable @inline(__always)
    static func entry(_ record: User, serial: UInt64) -> User { record }
    @inlinable @inline(__always)
    static func user(_ entry: User) -> User { entry }
    @inlinable @inline(__always)
    static func key(_ key: User.Key, serial: UInt64) -> User.Key { key }
    @inlinable @inline(__always)
    static func userKey(_ key: User.Key) -> User.Key { key }
    @inlinable @inline(__always)
    static func serial(_ key: User.Key) -> UInt64 { 0 }
}

/// A user's record and the serial number that orders it among records with its key.
@usableFromInline
struct SerialRecord<User: IndexRecord>: Equatable, Sendable {
    @usableFromInline var record: User
    @usableFromInline var serial: UInt64

    @inlinable
    init(record: User, serial: UInt64) {
        self.record = record
        self.serial = serial
    }
}

/// A user's key and a serial number, compared in that order.
@usableFromInline
struct SerialKey<UserKey: IndexKey>: Comparable, Sendable, CustomStringConvertible {
    @usableFromInline var key: UserKey
    @usableFromInline var serial: UInt64

    @inlinable
    init(key: UserKey, serial: UInt64) {
        self.key = key
        self.serial = serial
    }

    @inlinable @inline(__always)
    static func < (a: SerialKey, b: SerialKey) -> Bool {
        a.key < b.key || (a.key == b.key && a.serial < b.serial)
    }

    @usableFromInline var description: String { "\(key) #\(serial)" }
}

/// Records whose keys may repeat: each carries a serial number after its own bytes.
@usableFromInline
enum DuplicateKeyFormat<User: IndexRecord>: IndexFormat {
    @usableFromInline typealias Record = SerialRecord<User>
    @usableFromInline typealias Key = SerialKey<User.Key>

    @usableFromInline static var name: String { User.indexName }
    @usableFromInline static var magic: UInt32 { duplicateIndexMagic }
    @inlinable static var recordSize: Int { User.encodedSize + 8 }
    @inlinable static var keySize: Int { User.Key.encodedSize + 8 }
    @inlinable static var isOverlapping: Bool { User.coversKeyInterval }
    @inlinable static var allowsDuplicates: Bool { true }

    @inlinable @inline(__always)
    static func loadRecord(from bytes: UnsafeRawPointer) -> Record {
        SerialRecord(record: User.load(from: bytes), serial: loadSerial(from: bytes, at: User.encodedSize))
    }
    @inlinable @inline(__always)
    static func storeRecord(_ record: Record, to bytes: UnsafeMutableRawPointer) {
        User.store(record.record, to: bytes)
        storeSerial(record.serial, to: bytes, at: User.encodedSize)
    }
    @inlinable @inline(__always)
    static func loadKey(from bytes: UnsafeRawPointer) -> Key {
        SerialKey(key: User.Key.load(from: bytes), serial: loadSerial(from: bytes, at: User.Key.encodedSize))
    }
    @inlinable @inline(__always)
    static func storeKey(_ key: Key, to bytes: UnsafeMutableRawPointer) {
        User.Key.store(key.key, to: bytes)
        storeSerial(key.serial, to: bytes, at: User.Key.encodedSize)
    }

    @inlinable @inline(__always)
    static func loadLowKey(fromRecord bytes: UnsafeRawPointer) -> Key {
        SerialKey(key: User.loadKey(from: bytes), serial: loadSerial(from: bytes, at: User.encodedSize))
    }
    @inlinable @inline(__always)
    static func lowKey(of record: Record) -> Key { SerialKey(key: record.record.key, serial: record.serial) }
    @inlinable @inline(__always)
    static func highKey(of record: Record) -> Key {
        SerialKey(key: User.coversKeyInterval ? record.record.lastKey : record.record.key, serial: record.serial)
    }
    @inlinable
    static func isContiguous(_ high: Key, followedBy low: Key) -> Bool {
        User.Key.isContiguous(high.key, followedBy: low.key)
    }
    @inlinable
    static func check(_ record: Record) -> String? { record.record.validityProblem }
    @inlinable @inline(__always)
    static func interpolationPosition(of key: Key) -> UInt64? { key.key.interpolationPosition }

    @inlinable @inline(__always)
    static func entry(_ record: User, serial: UInt64) -> Record { SerialRecord(record: record, serial: serial) }
    @inlinable @inline(__always)
    static func user(_ entry: Record) -> User { entry.record }
    @inlinable @inline(__always)
    static func key(_ key: User.Key, serial: UInt64) -> Key { SerialKey(key: key, serial: serial) }
    @inlinable @inline(__always)
    static func userKey(_ key: Key) -> User.Key { key.key }
    @inlinable @inline(__always)
    static func serial(_ key: Key) -> UInt64 { key.serial }
}
