import CLMDB
import CSQLite
import Foundation
import Glibc

/// One rmap record as the competitors store it: the key (startblock, owner, offset) and the
/// length. Flags are folded into `offset` exactly as XFS folds them into its keys.
struct BenchRecord {
    var startblock: UInt32
    var blockcount: UInt32
    var owner: UInt64
    var offset: UInt64
}

/// What one implementation measured on one workload.
struct BenchResult {
    var implementation: String
    var records: Int
    var insertNanoseconds: Double
    var lookupNanoseconds: Double
    var scanNanoseconds: Double
    var bytesPerRecord: Double
    /// A digest of what the lookups and the scan returned, so that every implementation
    /// can be shown to have answered the same questions the same way.
    var digest: UInt64

    var json: String {
        func f(_ x: Double) -> String { String(format: "%.1f", x) }
        return #"{"implementation": "\#(implementation)", "records": \#(records), "insert_ns": \#(f(insertNanoseconds)), "lookup_ns": \#(f(lookupNanoseconds)), "scan_ns": \#(f(scanNanoseconds)), "bytes_per_record": \#(f(bytesPerRecord)), "digest": "\#(String(digest, radix: 16))"}"#
    }
}

/// Nanoseconds on the monotonic clock.
func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Mixes one record into a running digest (order-sensitive).
func mix(_ digest: inout UInt64, _ startblock: UInt32, _ owner: UInt64, _ offset: UInt64, _ blockcount: UInt32) {
    digest = (digest ^ UInt64(startblock)) &* 0x100_0000_01B3
    digest = (digest ^ owner) &* 0x100_0000_01B3
    digest = (digest ^ offset) &* 0x100_0000_01B3
    digest = (digest ^ UInt64(blockcount)) &* 0x100_0000_01B3
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
}

// MARK: - SQLite

/// SQLite in `:memory:`, a WITHOUT ROWID table keyed on the rmap key, 1000 inserts per
/// transaction, lookups with a row-value comparison served by the primary key.
func runSQLite(records: [BenchRecord], probes: [BenchRecord]) throws -> BenchResult {
    var db: OpaquePointer?
    guard sqlite3_open(":memory:", &db) == SQLITE_OK, let db else { throw BenchFailure(description: "sqlite3_open failed") }
    defer { sqlite3_close(db) }
    func exec(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
            throw BenchFailure(description: "\(sql): \(String(cString: sqlite3_errmsg(db)))")
        }
    }
    func prepare(_ sql: String) throws -> OpaquePointer {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw BenchFailure(description: "\(sql): \(String(cString: sqlite3_errmsg(db)))")
        }
        return statement
    }
    try exec("""
        CREATE TABLE rmap(startblock INTEGER NOT NULL, owner INTEGER NOT NULL, offset INTEGER NOT NULL,
                          blockcount INTEGER NOT NULL, PRIMARY KEY(startblock, owner, offset)) WITHOUT ROWID
        """)
    let insert = try prepare("INSERT INTO rmap VALUES (?1, ?2, ?3, ?4)")
    defer { sqlite3_finalize(insert) }
    let insertStart = now()
    for (i, r) in records.enumerated() {
        if i % 1000 == 0 { try exec("BEGIN") }
        sqlite3_bind_int64(insert, 1, Int64(r.startblock))
        sqlite3_bind_int64(insert, 2, Int64(bitPattern: r.owner))
        sqlite3_bind_int64(insert, 3, Int64(bitPattern: r.offset))
        sqlite3_bind_int64(insert, 4, Int64(r.blockcount))
        guard sqlite3_step(insert) == SQLITE_DONE else {
            throw BenchFailure(description: "insert: \(String(cString: sqlite3_errmsg(db)))")
        }
        sqlite3_reset(insert)
        if i % 1000 == 999 || i == records.count - 1 { try exec("COMMIT") }
    }
    let insertTime = now() - insertStart

    let lookup = try prepare("""
        SELECT startblock, owner, offset, blockcount FROM rmap
        WHERE (startblock, owner, offset) <= (?1, ?2, ?3)
        ORDER BY startblock DESC, owner DESC, offset DESC LIMIT 1
        """)
    defer { sqlite3_finalize(lookup) }
    var digest: UInt64 = 0xCBF2_9CE4_8422_2325
    let lookupStart = now()
    for p in probes {
        sqlite3_bind_int64(lookup, 1, Int64(p.startblock))
        sqlite3_bind_int64(lookup, 2, Int64(bitPattern: p.owner))
        sqlite3_bind_int64(lookup, 3, Int64(bitPattern: p.offset))
        if sqlite3_step(lookup) == SQLITE_ROW {
            mix(&digest, UInt32(sqlite3_column_int64(lookup, 0)), UInt64(bitPattern: sqlite3_column_int64(lookup, 1)),
                UInt64(bitPattern: sqlite3_column_int64(lookup, 2)), UInt32(sqlite3_column_int64(lookup, 3)))
        }
        sqlite3_reset(lookup)
    }
    let lookupTime = now() - lookupStart

    let scan = try prepare("SELECT startblock, owner, offset, blockcount FROM rmap ORDER BY startblock, owner, offset")
    defer { sqlite3_finalize(scan) }
    let scanStart = now()
    var scanned = 0
    while sqlite3_step(scan) == SQLITE_ROW {
        mix(&digest, UInt32(sqlite3_column_int64(scan, 0)), UInt64(bitPattern: sqlite3_column_int64(scan, 1)),
            UInt64(bitPattern: sqlite3_column_int64(scan, 2)), UInt32(sqlite3_column_int64(scan, 3)))
        scanned += 1
    }
    let scanTime = now() - scanStart
    guard scanned == records.count else { throw BenchFailure(description: "sqlite scan saw \(scanned) of \(records.count)") }

    let pages = try prepare("SELECT (SELECT page_count FROM pragma_page_count) * (SELECT page_size FROM pragma_page_size)")
    defer { sqlite3_finalize(pages) }
    _ = sqlite3_step(pages)
    let bytes = Double(sqlite3_column_int64(pages, 0))
    return BenchResult(
        implementation: "sqlite", records: records.count,
        insertNanoseconds: Double(insertTime) / Double(records.count),
        lookupNanoseconds: Double(lookupTime) / Double(max(probes.count, 1)),
        scanNanoseconds: Double(scanTime) / Double(max(records.count, 1)),
        bytesPerRecord: bytes / Double(max(records.count, 1)), digest: digest)
}

// MARK: - LMDB

/// LMDB in a directory on /dev/shm, 24-byte big-endian keys (startblock widened to 64
/// bits, owner, offset), the length as the value, 1000 puts per write transaction.
func runLMDB(records: [BenchRecord], probes: [BenchRecord]) throws -> BenchResult {
    func check(_ rc: Int32, _ what: String) throws {
        guard rc == 0 else { throw BenchFailure(description: "\(what): \(String(cString: mdb_strerror(rc)))") }
    }
    var template = Array("/dev/shm/rmap-bench-lmdb-XXXXXX".utf8CString)
    guard let dirPointer = mkdtemp(&template) else { throw BenchFailure(description: "mkdtemp failed") }
    let directory = String(cString: dirPointer)
    defer {
        unlink(directory + "/data.mdb")
        unlink(directory + "/lock.mdb")
        rmdir(directory)
    }
    var env: OpaquePointer?
    try check(mdb_env_create(&env), "mdb_env_create")
    defer { mdb_env_close(env) }
    try check(mdb_env_set_mapsize(env, 64 << 30), "mdb_env_set_mapsize")
    try check(mdb_env_open(env, directory, UInt32(MDB_NOSYNC | MDB_NOMETASYNC), 0o600), "mdb_env_open")

    func key(_ r: BenchRecord) -> (UInt64, UInt64, UInt64) {
        (UInt64(r.startblock).bigEndian, r.owner.bigEndian, r.offset.bigEndian)
    }
    var dbi = MDB_dbi()
    var txn: OpaquePointer?
    try check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin")
    try check(mdb_dbi_open(txn, nil, 0, &dbi), "mdb_dbi_open")
    let insertStart = now()
    for (i, r) in records.enumerated() {
        var k = key(r)
        var v = r.blockcount.bigEndian
        let rc = withUnsafeMutableBytes(of: &k) { kb in
            withUnsafeMutableBytes(of: &v) { vb in
                var mk = MDB_val(mv_size: 24, mv_data: kb.baseAddress)
                var mv = MDB_val(mv_size: 4, mv_data: vb.baseAddress)
                return mdb_put(txn, dbi, &mk, &mv, 0)
            }
        }
        try check(rc, "mdb_put")
        if i % 1000 == 999 || i == records.count - 1 {
            try check(mdb_txn_commit(txn), "mdb_txn_commit")
            txn = nil
            if i != records.count - 1 { try check(mdb_txn_begin(env, nil, 0, &txn), "mdb_txn_begin") }
        }
    }
    if let txn { try check(mdb_txn_commit(txn), "mdb_txn_commit") }
    let insertTime = now() - insertStart

    func decode(_ k: MDB_val, _ v: MDB_val) -> (UInt32, UInt64, UInt64, UInt32) {
        let kb = UnsafeRawBufferPointer(start: k.mv_data, count: k.mv_size)
        let vb = UnsafeRawBufferPointer(start: v.mv_data, count: v.mv_size)
        return (UInt32(UInt64(bigEndian: kb.loadUnaligned(fromByteOffset: 0, as: UInt64.self))),
                UInt64(bigEndian: kb.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                UInt64(bigEndian: kb.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                UInt32(bigEndian: vb.loadUnaligned(as: UInt32.self)))
    }
    var readTxn: OpaquePointer?
    try check(mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &readTxn), "mdb_txn_begin(read)")
    defer { mdb_txn_abort(readTxn) }
    var cursor: OpaquePointer?
    try check(mdb_cursor_open(readTxn, dbi, &cursor), "mdb_cursor_open")
    defer { mdb_cursor_close(cursor) }
    var digest: UInt64 = 0xCBF2_9CE4_8422_2325
    let lookupStart = now()
    for p in probes {
        var k = key(p)
        withUnsafeMutableBytes(of: &k) { kb in
            var mk = MDB_val(mv_size: 24, mv_data: kb.baseAddress)
            var mv = MDB_val()
            var rc = mdb_cursor_get(cursor, &mk, &mv, MDB_SET_RANGE)
            if rc == 0 {
                // The first key >= probe: step back unless it is the probe itself.
                if mk.mv_size != 24 || memcmp(mk.mv_data, kb.baseAddress!, 24) != 0 {
                    rc = mdb_cursor_get(cursor, &mk, &mv, MDB_PREV)
                }
            } else {
                rc = mdb_cursor_get(cursor, &mk, &mv, MDB_LAST)
            }
            if rc == 0 {
                let (s, o, f, c) = decode(mk, mv)
                mix(&digest, s, o, f, c)
            }
        }
    }
    let lookupTime = now() - lookupStart

    let scanStart = now()
    var scanned = 0
    var mk = MDB_val(), mv = MDB_val()
    var rc = mdb_cursor_get(cursor, &mk, &mv, MDB_FIRST)
    while rc == 0 {
        let (s, o, f, c) = decode(mk, mv)
        mix(&digest, s, o, f, c)
        scanned += 1
        rc = mdb_cursor_get(cursor, &mk, &mv, MDB_NEXT)
    }
    let scanTime = now() - scanStart
    guard scanned == records.count else { throw BenchFailure(description: "lmdb scan saw \(scanned) of \(records.count)") }

    var info = MDB_envinfo()
    var stat = MDB_stat()
    try check(mdb_env_info(env, &info), "mdb_env_info")
    try check(mdb_env_stat(env, &stat), "mdb_env_stat")
    let bytes = Double(info.me_last_pgno + 1) * Double(stat.ms_psize)
    return BenchResult(
        implementation: "lmdb", records: records.count,
        insertNanoseconds: Double(insertTime) / Double(records.count),
        lookupNanoseconds: Double(lookupTime) / Double(max(probes.count, 1)),
        scanNanoseconds: Double(scanTime) / Double(max(records.count, 1)),
        bytesPerRecord: bytes / Double(max(records.count, 1)), digest: digest)
}
