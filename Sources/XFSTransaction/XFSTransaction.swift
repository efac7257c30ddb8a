// XFSTransaction: the buffers one operation touched, and what becomes of them at the end.
//
// Transactions
// ============
//
// In XFS every change to metadata happens inside a transaction. Buffers *join* the
// transaction when an operation gets or reads them through it, stay locked and held until
// the transaction ends, and are *logged* (a byte range marked dirty) when the operation
// changes them. A buffer got a second time through the same transaction comes back
// without being locked again, which is what lets a btree split duplicate a cursor without
// deadlocking on its own blocks.
//
// For disk buffers the end is a log write. For in-memory btrees (Linux 6.9) it cannot
// be: the log only knows the data device, the in-memory target may be gone before the
// log checkpoints, and recovery could never replay it. So an in-memory transaction ends
// by *laundering*: every buffer of the memory target is detached from the transaction,
// the dirty ones pass their verifier's structure check (the first failure is reported,
// but every buffer is still detached), the pages of freed (stale) buffers are punched out
// of the memory file, and nothing goes anywhere else: the pages *are* the store.
//
// Cancel, in the kernel, only detaches and releases: nothing is rolled back, and the tree
// must be thrown away. Here a transaction may instead keep *before-images*: the first
// time a buffer is changed through an undoable transaction, its bytes are copied aside,
// and `cancel` puts them back. Combined with the in-memory btree restoring its root,
// height and block allocator (XFSInMemoryBTree), a cancelled operation leaves the tree
// exactly as it was. Before-images cost a page copy per buffer changed, so they are
// asked for per transaction.
//
// Threading: a transaction belongs to one thread at a time. Callers serialise operations
// on one in-memory btree, as the kernel's callers do with a mutex.
//
// Cost: a transaction is reused from operation to operation and allocates nothing once
// warm. Its joined buffers live in storage it owns (no copy-on-write checks on the hot
// path), buffers go back through each target's cache without touching the existential
// target, and a transaction that used one target keeps it (retained) for the next
// operation, so a loop of one insert per transaction on one tree retains nothing per
// operation.
