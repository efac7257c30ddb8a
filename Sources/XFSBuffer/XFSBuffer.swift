// XFSBuffer: buffers, buffer targets with caches of their own, and CRC32c.
//
//                        Buffers, Targets and Their Caches
//                        =================================
//
// XFS reads and writes metadata in buffers: a run of sectors at a disk address ("daddr",
// in 512-byte units), held by whoever uses it, locked while its bytes change, and found
// again through a cache so that every user of a block sees the same memory. A buffer says
// whether its bytes are valid (done), whether they must reach the disk (dirty), and
// whether the block was freed (stale); it may carry a verifier that checks its bytes on
// the way in, on the way out, and when an in-memory transaction commits.
//
// Buffers come from a *target*. Linux 6.9 taught each buffer target to keep its own
// cache ("teach buftargs to maintain their own buffer hashtable"), because the disk
// addresses of an in-memory btree belong to no allocation group. So here every target
// owns a `BufferCache` behind one lock: a table keyed by disk address (an open-addressed
// hash for a file target; a direct page table for a memory target, whose block numbers
// are dense), plus a least-recently-used list bounded by a memory cap. The list is lazy, as
// the kernel's is: a buffer joins it at its first clean release and keeps its place while
// it is got and released again (a hit only marks it used), and eviction passes over held,
// dirty and recently used buffers (second chance), so a cache hit touches no other buffer.
// Looking a buffer up or inserting it is one critical section; a thread that loses an
// insertion race takes the buffer that won. Held and dirty buffers are never evicted; a
// stale buffer leaves the cache when its last holder lets go.
//
// Two targets exist:
//
// - `FileTarget`: a disk image or block device. Buffers own their bytes; reads are pread
//   (interrupted or short transfers continued), then the read verifier; writes run the
//   write verifier first, then pwrite. Opened read-only unless writing is asked for.
// - `MemoryTarget` (the kernel's xmbuf): a `MemoryFile` (or a partition of one). Its block
//   size is the page size, and a buffer *is* one page of the file: its memory points into
//   the file's window, so getting a buffer copies nothing and does no I/O. Reads complete
//   at once, but verifiers still run. When a freed (stale) buffer is released for the last
//   time its page is punched out of the file, returning the memory.
//
// Locking contract: a target and its cache may be used from any number of threads. A
// memory target made `exclusive` is the exception: its owner (an in-memory btree, used one
// thread at a time under its owner's lock) serializes every use, so neither the cache nor
// its buffers take a lock, which saves four atomic operations per buffer got and released.
// `getBuffer` and `readBuffer` return the buffer held *and locked* (in an exclusive target,
// the owner's serialization is the lock); its bytes, flags and verifier belong to the
// caller until `release`. The bytes of a memory-target buffer are valid while the buffer
// is held (and stay mapped while the target lives). A memory target also tells where a
// page is without getting its buffer: `unsafeMappedPage` for a single owner that reads a
// page unheld, or `unsafePagesStart` and `mappedBytes` for such an owner that keeps its own
// page arithmetic (the in-memory btree's store, whose descents visit their nodes unheld,
// holding them only to change them, and prefetch the pages they will read). An exclusive
// target can also prefetch a cached buffer's own fields (`prefetchBuffer`): `Buffer`
// declares the ones a get, a log and a release touch first, so they share the object's
// first 64 bytes, and a caller that knows the block it will hold next asks for them
// together with the page's lines.
//
// The hot path, a cached buffer got and released, allocates nothing and makes no system
// call: two short critical sections of the cache lock (get: table probe, hold, take the
// buffer lock; release: free the buffer lock, drop the hold, count it evictable). The buffer lock's word
// changes only under the cache lock, so taking it is a plain store; a thread that finds
// it taken sleeps on it (futex) outside the cache lock and is woken by the release.
