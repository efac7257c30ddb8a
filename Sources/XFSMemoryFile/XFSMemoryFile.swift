// XFSMemoryFile: swappable, file-indexed memory (the kernel's "xfile").
//
//                        Swappable, File-Indexed Memory
//                        ==============================
//
// Online repair gathers far more records than it wants to keep on the Swift heap: every
// reverse mapping of an allocation group can run to gigabytes. The kernel keeps them in an
// "xfile", an unlinked shmem file used as memory. Its pages are ordinary page cache: they
// cost nothing until written, they can be swapped out under pressure, and a hole punched
// into the file hands its pages straight back to the system. Offsets into the file are the
// addresses of this memory, so a btree block number is simply a page number.
//
// Pages are 4 KiB. Transparent huge pages for the window (2 MiB-aligned, MADV_HUGEPAGE)
// made random btree lookups about 10 % faster but the tree 3 % larger (pages resident
// 2 MiB at a time), and shmem only honours them when the system's `shmem_enabled` allows:
// not used.
//
// `MemoryFile` is that file in user space. It is a memfd (`MFD_CLOEXEC`, plus
// `MFD_NOEXEC_SEAL` where the kernel knows it); where memfds are unavailable it is an
// `O_TMPFILE` in /dev/shm, then in $TMPDIR (or /tmp); for data larger than RAM the caller
// may name a directory on a real disk. The file is mode 0600 and never has a name.
//
// Byte ranges are loaded and stored with pread/pwrite: reading a hole returns zeros and
// allocates nothing, and stores may have any size and alignment. `discard` punches a hole
// and returns the memory; `residentBytes` says how much the file really holds.
//
// Buffers want pages, not copies, and they want them without a system call each time.
// xfsprogs maps and unmaps each buffer's page (a few microseconds apiece). Here the file
// reserves, once, a virtual window as large as its maximum size (PROT_NONE, no swap
// reservation, no memory), and maps the file MAP_SHARED over the front of that window as
// the file grows, in doubling chunks, extending the file with ftruncate first so no page
// of the mapping lies past end-of-file. A page's address is therefore `window + offset`,
// fixed for the life of the file: handing it out is an addition and one atomic load. The
// same page asked for twice is the same memory, and a page written through the window is
// the page pread sees.
//
// Many in-memory btrees share one descriptor through partitions (`MemoryFilePartition`):
// page-aligned ranges of one file, each bounds-checked, each addressed from zero.
//
// Every system call and raw pointer of this layer lives in one type,
// `MemoryFile._Mapping` (MemoryFile+Mapping.swift); the rest is safe Swift.
