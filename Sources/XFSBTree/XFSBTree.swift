// XFSBTree: the one generic XFS btree engine.
//
//                          One Engine, Many Btrees
//                          =======================
//
// XFS keeps nearly all of its metadata in btrees: free space by block and by size, inodes,
// free inodes, reference counts, reverse mappings, and each file's extent map. libxfs runs
// all of them through one generic engine (xfs_btree.c) parameterised by an ops table; the
// Linux 6.9 "in-memory btrees" work taught that same engine to keep blocks in pages of a
// memory file, so that online repair can collect millions of rmap records in a real,
// swappable btree and then bulk-load (xfs_btree_staging.c) a new on-disk tree from it.
//
// This module is that engine, in Swift. The ops table is split along the line libxfs'
// history drew itself (xfs_rmapbt_ops and xfs_rmapbt_mem_ops share every record function
// and differ only in storage):
//
//   BTreeRecordFormat  what records and keys are: sizes, big-endian coding, low and high
//                      keys, order, contiguity, record check, magic, overlapping or not.
//   BTreeBlockStore    where blocks live: pointer width (UInt32 = short v5 header, UInt64 =
//                      long v5 header), root and height, record limits, allocate/free,
//                      read/new/release/markDirty of held blocks, header identity.
//
// BTreeCursor<Format, Store> and the entry points around it are generic over both and are
// @inlinable, so each (format, store) pair is specialised where it is used: no existentials,
// no per-record classes, no allocation per operation once a cursor's path storage exists.
//
// Block layout
// ------------
// Everything inside a block is read and written through BTreeBlock, the only type here that
// touches raw memory (big-endian loads via loadUnaligned + byte swap):
//
//     0            hdr (56 short / 72 long)
//     +------------+----------------------------------------------------------------+
//     | v5 header  | leaf: record 0 | record 1 | ...              (i * recordSize)    |
//     +------------+----------------------------------------------------------------+
//     | v5 header  | node: key 0 | key 1 | ... key nodeMax-1 | ptr 0 | ptr 1 | ...  |
//     +------------+-----------------------------------------^----------------------+
//                                     pointers start at hdr + nodeMax * keySlot,
//                                     whatever numrecs is (as on disk)
//
//   short header: magic(4) level(2) numrecs(2) left(4) right(4) blkno(8) lsn(8) uuid(16)
//                 owner(4) crc(4)                                         = 56 bytes
//   long header:  magic(4) level(2) numrecs(2) left(8) right(8) blkno(8) lsn(8) uuid(16)
//                 owner(8) crc(4) pad(4)                                  = 72 bytes
//
// Null sibling pointers are all ones. The engine writes lsn 0 and crc 0; a store that
// persists CRC-protected blocks computes the CRC, and a disk store verifies it on read.
//
// The cursor
// ----------
// A cursor is a path with one (block, index) per level, path[0] being the leaf:
//
//     level 2 (root)   [ k0 | k1 | k2 ]          index 1
//                            |
//     level 1          [ k0 | k1 | k2 | k3 ]     index 3
//                                        |
//     level 0 (leaf)   [ r0 r1 r2 r3 r4 r5 ]     index 4  -> record r4
//
// Indices are 0-BASED (libxfs is 1-based). At the leaf, -1 means "before the first record"
// and numrecs means "after the last". The path is bounded by the store's maxHeight, and
// each block read checks magic, level (a child must sit exactly one level below its parent),
// numrecs, blkno and sibling sanity, so a corrupt image — pointer cycles, absurd heights —
// makes an operation throw BTreeError.corrupt naming the check and the block, never loop,
// recurse without bound, or trap. Misuse of the API (updating an unpositioned cursor) is a
// precondition failure with the values; internal invariants are asserts, and a whole-tree
// check after every change is compiled in with -DBTREE_INTERNAL_CHECKS.
//
// The cursor is ~Copyable: it holds each block of its path through the store and releases
// the holds exactly once (close() or deinit). A store that can lend its blocks
// (peekBlock: an in-memory tree, whose one owner serializes every operation and whose
// pages stay mapped) lets a descent *visit* its blocks without holding them: every node
// above the leaf, and the leaf too for a lookup. The engine takes the holds (holdPath)
// before it changes a block, so a lookup holds nothing and an insert that changes only its
// leaf holds nothing above it. Such a store also lends whole leaves (BTreeLentLeaf): an
// ordered walk reads them in place between operations and steps by sibling pointer, as
// long as its owner's change counter says nothing moved. duplicate() makes a second cursor with its own
// holds, as xfs_btree_dup_cursor re-reads buffers; the engine uses duplicates internally to
// reach a sibling through its own parent when borrowing or joining, and when shifting into
// a sibling under another parent (a shift into the parent's next or previous child holds
// that sibling alone and updates its keys through the cursor's own path).
//
// Operations follow xfs_btree.c's decisions: lookup LE/GE/EQ by binary search per level;
// increment/decrement climb to the first level with room and descend the far edge; insert
// makes room in a full block by shifting its last entry into the right sibling, else its
// first into the left sibling, else by splitting (the odd entry goes to the half that does
// not receive the insert), and a splitting root gets a new root above it; delete leaves
// blocks at or above minrecs alone except for keys, borrows from the right then the left
// sibling when one can spare an entry, else joins with a sibling (freeing one block and
// relinking siblings) and removes the parent's entry, recursively; a root node left with a
// single child is freed and the child becomes the root.
//
// A store may choose a different growth policy (BTreeGrowthPolicy.batchedShifts): the same
// order of preference, but a shift moves several entries (into the left sibling, every
// entry before the insert position it has room for; into the right, up to half its room).
// Ascending inserts then shift once per blockful, and random inserts leave fuller blocks;
// every block stays within its minimum and maximum, so the tree is a valid XFS btree.
//
// Lookups near the last one (the rmap `map` operation makes up to four) reuse the held
// path when two key comparisons per level show that a descent would choose the same
// blocks. Searching a block is a binary search over its capacity, not its count (empty
// slots compare as larger than any key), without a branch on the comparison: its first
// three probes then sit at fixed places, whose seven cache lines are asked for together
// with the header, and the lines left after them are asked for at once. A store that knows
// where a block is before getting it (a memory target) lets a descent ask for the child's
// header and probe lines as soon as the parent names it, while the buffer is looked up.
//
// A format whose keys spread about evenly along a number (interpolationPosition: the
// rmapbt's start block) lets the leaf's parent guess where in the leaf the key sits, from
// the key range its entry gives the leaf. The descent then asks for the lines around that
// place only, and the leaf search looks in a window of ±8 records there first; the records
// just outside the window say whether the answer is inside, and when it is not, the binary
// search runs as above. The answer never depends on the guess, only the number of waits
// for memory does: one instead of two. An insert asks, for writing, for the lines from the
// guessed place to the leaf's end, which its shift moves.
//
// Overlapping keys
// ----------------
// In an overlapping btree (the rmapbt) a record covers an interval, and records may overlap.
// Each node slot holds a low key and a high key (two keySize halves of one slot):
//
//     node  [ (lo0,hi0) (lo1,hi1) ... ]      lo_i = first low key in child i
//                                            hi_i = MAX high key anywhere in child i
//
// The high key of a child is the maximum over all its records, not the last record's (a
// long extent early in a leaf may end after every later one). Every change therefore
// recomputes the keys of the changed block and walks toward the root, stopping as soon as a
// parent slot already agrees (__xfs_btree_updkeys); a pure insertion uses the cheaper rule
// that the low key changes only at index 0 and the high key only grows. Range queries on
// such trees are the interval-tree walk (CLRS 14.3): descend into a slot only when its high
// key >= the query's low key and its low key <= the query's high key, and stop scanning a
// block once a low key passes the query's high key. Plain trees do an LE lookup and walk.
//
// Whole-tree work
// ---------------
// BTreeBulkLoader builds a tree bottom-up from records in order (geometry with slack,
// claim-block callback, sibling links, root set last), as xfs_btree_bload does.
// BTreeVerifier walks a whole tree — in memory or on disk — and returns every fault with
// its location (pointer, level, index) and the check that failed.
