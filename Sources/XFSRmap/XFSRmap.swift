// XFSRmap: reverse-mapping records, gathered into in-memory btrees and compared with the
// rmap btrees of real XFS images.
//
// The consumer the seed was built for
// ===================================
//
// XFS's reverse-mapping btree (rmapbt) answers "who owns this block?" for every block of
// an allocation group: filesystem metadata (special owners such as OWN_AG or OWN_INODES)
// and file data (an inode number, a fork, a logical offset). Repairing it means
// recomputing the whole set from everything *else* on disk, and that set is large,
// must stay sorted, and must merge as it grows. Linux 6.9 keeps it in an in-memory btree
// built by the same engine as the one on disk; so does this module:
//
// - `RmapBTree` is an in-memory rmapbt with the kernel's `map` operation: a new mapping
//   merges with the records next to it when they belong to the same owner, carry the same
//   flags and are contiguous (physically, and logically for file data); on reflink
//   filesystems a file's written data goes through the shared-extent path, where other
//   owners' records may overlap and only a true neighbour of the same owner merges.
// - `RmapScanner` walks an image and feeds every observation into one such tree per AG,
//   committing one transaction per observation as repair does (see `RmapScanner`). Its
//   workers take inodes by the AG their data is in (`InodeLanes`), so they seldom wait
//   for the same tree, and its trees grow by batched shifts, since observations arrive
//   in ascending runs.
// - `RmapChecker` compares those trees with what the image's rmapbt holds, record by
//   record, and verifies the on-disk tree's structure with the engine's verifier.
//
// Records are `RmapRecord`s and the key order is `RmapKey`'s (XFSFormat): startblock,
// then owner, then offset with the attr and bmbt flags.
