// XFSInMemoryBTree: XFS btrees whose blocks are pages of a memory file (the kernel's
// "xfbtree", Linux 6.9).
//
// In-memory btrees
// ================
//
// Online repair needs a large sorted index that it can search and update while it scans
// a live filesystem, and that does not live on the kernel heap. Linux 6.9 answered with
// the btree code XFS already trusted: the same generic engine, running on a buffer target
// whose "disk" is a memfd. This module is that answer in Swift.
//
// - Blocks are pages of a `MemoryTarget`: one page per block, addressed by a 64-bit block
//   number (so the block header is the v5 *long* form, like a bmbt block) whose disk
//   address is `block * sectorsPerPage`. A block's buffer *is* its page: no copy, no I/O.
// - Block headers carry the format's magic, the block's disk address, an owner and the
//   filesystem uuid, but no CRC: the memory file is as trustworthy as RAM, as the kernel's
//   authors reasoned, and checksumming every page at every commit would cost more than the
//   whole insert.
// - The root pointer and height live in RAM, in the tree object, never in a block.
// - Blocks are allocated by a bump pointer *and a free list*: going beyond the kernel,
//   whose freed blocks below the top are never reused, a tree that shrinks and grows again
//   reuses its blocks. A freed block's page is punched when its transaction commits, so
//   the memory goes back at once; the block number becomes reusable after that commit.
// - Every operation runs in a `Transaction`. `commit` launders: dirty blocks pass the
//   structure verifier and freed pages are punched. `cancel` with an undoable transaction
//   restores every changed page *and* the root, height and allocator, so the tree is
//   exactly as before (the kernel's cancel leaves its tree unusable).
//
// Callers serialise operations on one tree (the kernel's callers hold a mutex); a tree's
// cursors all run on the calling thread.
