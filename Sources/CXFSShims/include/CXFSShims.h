// CXFSShims: the few Linux and CPU facilities that Swift's Glibc module does not expose.
//
// - memfd_create and its flags (glibc declares it only under _GNU_SOURCE);
// - O_TMPFILE, fallocate's mode bits and lseek's SEEK_DATA/SEEK_HOLE;
// - CRC32c (Castagnoli) with the CPU's crc32 instruction where the CPU has one.
//
// Everything here is a thin wrapper; policy (fallbacks, retries, errors) lives in Swift.

#ifndef CXFSSHIMS_H
#define CXFSSHIMS_H

#include <stddef.h>
#include <stdint.h>

#define CXFS_MFD_CLOEXEC       0x0001U
#define CXFS_MFD_ALLOW_SEALING 0x0002U
#define CXFS_MFD_NOEXEC_SEAL   0x0008U

#define CXFS_FALLOC_FL_KEEP_SIZE  0x01
#define CXFS_FALLOC_FL_PUNCH_HOLE 0x02

#define CXFS_SEEK_DATA 3
#define CXFS_SEEK_HOLE 4

/// memfd_create(2) through syscall(2), so that it works whatever glibc declares.
/// Returns the descriptor, or -1 with errno set.
int cxfs_memfd_create(const char *name, unsigned int flags);

/// open(2) of an unnamed file in `directory` (O_TMPFILE | O_RDWR | O_CLOEXEC, mode 0600).
/// Returns the descriptor, or -1 with errno set.
int cxfs_open_tmpfile(const char *directory);

/// fallocate(2). Returns 0, or -1 with errno set.
int cxfs_fallocate(int fd, int mode, int64_t offset, int64_t length);

/// Gives the pages of free heap memory back to the system (glibc's malloc_trim(0), which
/// also releases free pages inside per-thread arenas); a no-op elsewhere.
void cxfs_release_free_heap(void);

/// mremap(2) with MREMAP_MAYMOVE (glibc declares it only under _GNU_SOURCE): the mapping
/// of `old_size` bytes at `address`, resized to `new_size`, possibly moved. Returns the new
/// address, or NULL with errno set.
void *cxfs_mremap_move(void *address, size_t old_size, size_t new_size);

/// Updates a CRC32c over `length` bytes. `crc` is the running value *without* the final
/// inversion: start with 0xFFFFFFFF and invert the result at the end (XFS does both).
uint32_t cxfs_crc32c_update(uint32_t crc, const void *bytes, size_t length);

/// The same, always in portable table-driven C (for tests and for the benchmark's ratio).
uint32_t cxfs_crc32c_update_portable(uint32_t crc, const void *bytes, size_t length);

/// 1 when cxfs_crc32c_update uses the CPU's crc32 instruction.
int cxfs_crc32c_is_hardware(void);

/// ioctl(2) with a pointer argument (Swift cannot call the variadic one). Returns its
/// result, or -1 with errno set.
int cxfs_ioctl(int fd, unsigned long request, void *argument);

/// The f_type of fstatfs(2) of `fd` in *magic. Returns 0, or -1 with errno set.
int cxfs_fs_magic(int fd, uint64_t *magic);

/// Names the calling thread (prctl PR_SET_NAME; the first 15 bytes count). Returns 0, or -1
/// with errno set.
int cxfs_set_thread_name(const char *name);

/// Puts the calling thread, and the threads it starts afterwards, in the idle CPU
/// scheduling class (SCHED_IDLE) and the idle I/O class (IOPRIO_CLASS_IDLE): they run
/// only when nothing else wants the CPU or the disk. Returns 0, or -1 with errno set (the
/// I/O class is left as it was when the CPU class cannot be set).
int cxfs_background_priority(void);

// ---- Buffer lock --------------------------------------------------------------------
//
// An exclusive lock in one 32-bit word (0 free, 1 taken, 2 taken with sleepers), with
// futex sleeping. Unlike pthread mutexes it may be released by a thread other than the
// one that took it, as the kernel's buffer semaphore may; buffer locks need that.

/// Takes the lock if it is free. Returns 1 when taken, 0 when it was busy.
int cxfs_lock_try(uint32_t *word);

/// Takes the lock, sleeping while another holder has it.
void cxfs_lock_acquire(uint32_t *word);

/// Releases the lock and wakes one sleeper if there is one.
void cxfs_lock_release(uint32_t *word);

// ---- Buffer lock words guarded by another lock --------------------------------------
//
// A buffer's lock word can instead be changed only while the caller holds its cache's
// lock (above): then taking and releasing a buffer costs plain stores, and the futex is
// used only to sleep. Same encoding: 0 free, 1 taken, 2 taken with sleepers.

/// With the guarding lock held: takes the word if free. Returns 1 when taken.
int cxfs_guarded_try(uint32_t *word);

/// With the guarding lock held: records that a thread is about to sleep on the word.
void cxfs_guarded_mark_sleeper(uint32_t *word);

/// Without the guarding lock: sleeps while the word still says "taken with sleepers".
void cxfs_guarded_sleep(uint32_t *word);

/// With the guarding lock held: frees the word. Returns 1 when sleepers must be woken
/// (with cxfs_guarded_wake, after dropping the guarding lock).
int cxfs_guarded_release(uint32_t *word);

/// Wakes every thread sleeping on the word; each re-checks under the guarding lock.
void cxfs_guarded_wake(uint32_t *word);

/// Asks the CPU to bring the cache line holding `address` closer, for a read soon
/// (the btree engine's leaf search issues several at once instead of waiting for each).
static inline void cxfs_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// Asks the CPU to bring the cache line holding `address` closer, to be written soon
/// (the lines an insert will shift, requested before the search that finds the place).
static inline void cxfs_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

#endif
