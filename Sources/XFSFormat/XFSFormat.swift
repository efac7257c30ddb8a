// XFSFormat: the XFS v5 on-disk format.
//
// Decoding and Validating On-Disk Structures
// ==========================================
//
// This module turns raw bytes from an XFS v5 (CRC) image into Swift values and says, for
// every structure, whether those bytes are valid. It does no I/O: callers read sectors,
// blocks and inodes (through XFSBuffer) and hand the bytes here.
//
// Byte order. Every multi-byte integer on disk is big-endian, except the CRC32c fields,
// which are little-endian. All reads go through `ByteReader` (bounds-checked, throws on
// truncation) or, for the fixed-size btree records whose bounds the engine guarantees, the
// internal `BigEndian` loads; both use unaligned loads, so no alignment is assumed.
//
// Three address spaces (see `Geometry`):
//   agbno    block within an AG
//   fsblock  (agno << agblklog) | agbno; bmbt records/pointers, sb_logstart. agblklog is
//            ceil(log2 agblocks), so this space has holes when agblocks is not a power of 2.
//   daddr    (agno * agblocks + agbno) * blocksize/512; disk offsets and btree `blkno`.
// Inode numbers are (agno << (agblklog + inopblog)) | agino; inobt and AGI use agino.
//
// What is verified.
//   Superblock: magic, version 5 (v4 refused), sector size, CRC over the sector, geometry
//     consistency, and features (unknown bits, NEEDSREPAIR, inprogress, log_incompat,
//     realtime are refused by name; an external log needs its device to open the image).
//   AGF/AGI/AGFL: magic, version, CRC over the sector, seqno, length, uuid, btree roots and
//     heights (bounds computed from geometry), free-list window, counters; AGFL active
//     entries with wrap-around and the kernel's "needs reset" rule.
//   Btree blocks: header decode, expectation checks (magic, uuid, blkno, owner, level,
//     numrecs, siblings) returning which check failed, CRC at 52 or 64 over the block.
//   Records: each btree type is a `BTreeRecordFormat`; `check(_:)` validates one record.
//   Inodes: magic, version 3, CRC, ino, uuid, type/format legality, fork geometry, extent
//     counts against fork sizes (nrext64 per inode), bmbt roots.
//   Log (Log/): the head and tail, found as xfs_repair finds them, to say whether the log
//     is clean (`LogState`); nothing is replayed.
//
// Bad bytes never trap: they throw `XFSFormatError`, whose description names the structure,
// its place and the failed check ("AG 1 AGF: bad CRC"). API misuse is a precondition.
