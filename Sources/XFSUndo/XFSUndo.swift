// XFSUndo: crash-safe, undoable writes to a filesystem image.
//
//                         Undo Files Written Before the Image
//                         ===================================
//
// A repair tool that rewrites metadata in place (here: `xfs-rmap rebuild`) needs two
// things if the machine may crash or the result may be wrong: the image must never be left
// in a state nobody can explain, and the user must be able to go back. e2undo (e2fsprogs)
// keeps an undo file for that; its weakness is ordering: it saves a block's old contents
// on the way to writing the block, with no flush between the undo file and the device, so
// after a crash the device may hold new blocks whose old contents never reached the undo
// file. This module orders things so that cannot happen.
//
// The writes are planned first (`ImageWritePlan`): an ordered list of phases, each a set
// of non-overlapping sector-aligned writes; a region may be written in several phases
// (the superblock sector first with NEEDSREPAIR set, last with it cleared). The writer
// (`UndoableWriter`) then
//
//   1. reads the old contents of every region the plan touches, and the identity bytes
//      (e.g. the superblock UUID), before creating anything;
//   2. creates the undo file (O_EXCL, mode 0600) and writes its header in state WRITING;
//      fsyncs the file and its directory, so from now on a crash leaves a recognizable
//      undo file that says "the image was never touched";
//   3. writes the blob, the region table and every region's old contents; fsyncs;
//   4. marks the file PREPARED (an 8-byte state word; a single sector write); fsyncs. Only
//      now is the image written, so every image write is covered by a durable undo file;
//   5. runs the phases in order: each write pwritten in full (short writes continued,
//      EINTR retried), then fsync of the image after each phase;
//   6. marks the file FINISHED; fsyncs.
//
// File format (all integers little-endian; every section starts on a 512-byte boundary):
//
//   0      header, 512 bytes:
//            0  magic "XFS-UNDO"           8  version (1)        12  header CRC32c
//           16  state word "WRITING\0" | "PREPARED" | "FINISHED"
//           24  image size               32  identity offset   40  identity length (1...256)
//           44  blob length              48  blob CRC32c       52  table CRC32c
//           56  region count             64  sector-CRC count  72  data length
//          112  identity bytes (256, zero-padded)
//          The header CRC covers the 512 bytes with the CRC field and the state word taken
//          as zero: the state changes without rewriting the rest of the header.
//   512    blob: the caller's bytes (e.g. the superblock as it will be after the run),
//          stored complemented (every byte inverted), as is the data below, so no XFS
//          magic appears anywhere in the file and nothing takes it for a filesystem.
//   then   region table: per region (sorted, disjoint) offset u64, length u64, content
//          count u32, zero u32; then the sector CRCs: for each region, for each of its
//          512-byte sectors, one CRC32c per content the sector may hold, the old contents
//          first, then each planned write covering it in plan order. The table CRC covers
//          the entries and the CRCs.
//   then   data: every region's old contents, in table order (complemented).
//
// Regions are the pieces the plan's writes cut the image into: two writes that overlap
// (in different phases) split into pieces covered by the same writes, so every sector of
// a region may hold the same set of contents. CRCs are kept per sector, not per region,
// because a crash in the middle of a multi-sector write leaves some sectors new and some
// old; a 512-byte sector is the unit a disk writes whole.
//
// What restore verifies (`UndoFile.open`, then `UndoFile.restore`), all before writing:
// the magic, version and header CRC; that every count and length fits the file's size
// (checked before anything is allocated) and that the file is exactly as long as they say;
// the blob and table CRCs; the table itself (aligned, sorted, disjoint, inside the image,
// content counts adding up); every data sector against its old-contents CRC; the image's
// size and identity bytes against the recorded ones; and that every sector of every region
// holds its old contents or one of the contents the plan may have left there. Anything
// else means the image changed since the run, and restore refuses. Then it writes back
// the regions that differ from their old contents and fsyncs. A file still in state
// WRITING means the run stopped before its first image write: restore writes nothing,
// says so, and checks (when the table is there) that the image still holds the old
// contents. Restoring twice is harmless: the second time every region is already old.
//
// The caller refuses a mounted image: both entry points take an `inUseCheck` closure,
// called before the image is opened. A block device is also opened with O_EXCL, which
// Linux refuses while it is mounted.
//
// Errors: a hostile or damaged undo file throws `UndoError.invalidUndoFile` naming the
// check that failed (`UndoFileCheck`); it never traps, loops or allocates beyond the
// file's size. A malformed plan is a precondition. Unsafe pointers appear only in
// `RawBytes`; the system calls go through `UndoSystemCalls`, which tests replace to fail
// the k-th write.

/// Facts of the undo-file format shared by the writer and the reader.
enum UndoFormat {
    /// The unit of alignment of every region and section: 512 bytes.
    static let sectorSize = 512
    /// The header's size.
    static let headerSize = 512
    /// "XFS-UNDO".
    static let magic: [UInt8] = Array("XFS-UNDO".utf8)
    /// The format version this module writes and reads.
    static let version: UInt32 = 1
    /// The most identity bytes a header holds.
    static let maxIdentityLength = 256
    /// The size of one region-table entry.
    static let regionEntrySize = 24

    /// Header field offsets.
    enum Field {
        static let magic = 0
        static let version = 8
        static let headerCRC = 12
        static let state = 16
        static let imageSize = 24
        static let identityOffset = 32
        static let identityLength = 40
        static let blobLength = 44
        static let blobCRC = 48
        static let tableCRC = 52
        static let regionCount = 56
        static let sectorCRCCount = 64
        static let dataLength = 72
        static let identity = 112
    }
}
