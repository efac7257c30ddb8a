#define _GNU_SOURCE
#include "CXFSShims.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <string.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void cxfs_release_free_heap(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

void *cxfs_mremap_move(void *address, size_t old_size, size_t new_size) {
    void *moved = mremap(address, old_size, new_size, MREMAP_MAYMOVE);
    return moved == MAP_FAILED ? NULL : moved;
}

int cxfs_memfd_create(const char *name, unsigned int flags) {
#ifdef SYS_memfd_create
    return (int)syscall(SYS_memfd_create, name, flags);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int cxfs_open_tmpfile(const char *directory) {
#ifdef O_TMPFILE
    return open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
#else
    errno = EOPNOTSUPP;
    return -1;
#endif
}

int cxfs_fallocate(int fd, int mode, int64_t offset, int64_t length) {
    return fallocate(fd, mode, (off_t)offset, (off_t)length);
}

// ---- Buffer lock --------------------------------------------------------------------
//
// Drepper's three-state futex mutex ("Futexes Are Tricky", mutex #3). The word is 0 when
// free, 1 when taken and nobody sleeps, 2 when taken and somebody may sleep. Acquire and
// release are single atomic instructions when uncontended; contended acquirers spin
// briefly, then mark the word 2 and sleep on it.

int cxfs_lock_try(uint32_t *word) {
    uint32_t expected = 0;
    return __atomic_compare_exchange_n(word, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

void cxfs_lock_acquire(uint32_t *word) {
    uint32_t expected = 0;
    if (__atomic_compare_exchange_n(word, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        return;
    for (int spin = 0; spin < 64; spin++) {
        if (__atomic_load_n(word, __ATOMIC_RELAXED) == 0) {
            expected = 0;
            if (__atomic_compare_exchange_n(word, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return;
        }
#if defined(__x86_64__)
        __builtin_ia32_pause();
#endif
    }
    // Mark the lock contended; whoever releases it will then wake us.
    while (__atomic_exchange_n(word, 2, __ATOMIC_ACQUIRE) != 0)
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void cxfs_lock_release(uint32_t *word) {
    if (__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) == 2)
        syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

// The guarded variant: the word changes only under another lock, so relaxed accesses
// suffice (that lock orders them); they are atomic only so that the futex's read in the
// kernel and a sleeper's check see whole values. Wake-ups go to every sleeper: each one
// re-checks under the guarding lock and marks the word again before sleeping again.

int cxfs_guarded_try(uint32_t *word) {
    if (__atomic_load_n(word, __ATOMIC_RELAXED) != 0) return 0;
    __atomic_store_n(word, 1, __ATOMIC_RELAXED);
    return 1;
}

void cxfs_guarded_mark_sleeper(uint32_t *word) {
    __atomic_store_n(word, 2, __ATOMIC_RELAXED);
}

void cxfs_guarded_sleep(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

int cxfs_guarded_release(uint32_t *word) {
    uint32_t previous = __atomic_load_n(word, __ATOMIC_RELAXED);
    __atomic_store_n(word, 0, __ATOMIC_RELAXED);
    return previous == 2;
}

void cxfs_guarded_wake(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

// ---- CRC32c -------------------------------------------------------------------------
//
// Reflected polynomial 0x82F63B78. The portable path is slicing-by-8 over tables built
// once; the hardware path is the SSE4.2 / ARMv8 crc32c instruction, 8 bytes at a time in
// three independent streams (the instruction has a latency of 3 cycles and a throughput
// of 1, so three streams keep it busy), joined with a carry-less "shift" done by tables.

static uint32_t crc_table[8][256];
static uint32_t shift_table[4][256]; // multiply by x^(8*STREAM_BYTES*8) mod P, per byte lane
// Built once, by the first caller; others wait for it (two threads building the tables at
// once wrote the same bytes concurrently: a data race ThreadSanitizer reports).
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

#define STREAM_BYTES 1024 // bytes per stream per round (3 streams = 3 KiB)

static uint32_t gf2_multiply(uint32_t a, uint32_t b) {
    // Carry-less multiply of two reflected polynomials modulo P.
    uint32_t product = 0;
    for (int i = 0; i < 32; i++) {
        if (a & 0x80000000U) product ^= b;
        a <<= 1;
        b = (b >> 1) ^ ((b & 1) ? 0x82F63B78U : 0);
    }
    return product;
}

static uint32_t x_to_the_power_of_bits(uint64_t bits) {
    // x^bits mod P in reflected form, by square and multiply. x^0 is 0x80000000.
    uint32_t result = 0x80000000U, square = 0x40000000U; // x^1
    while (bits) {
        if (bits & 1) result = gf2_multiply(result, square);
        square = gf2_multiply(square, square);
        bits >>= 1;
    }
    return result;
}

static void build_tables(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ ((c & 1) ? 0x82F63B78U : 0);
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int t = 1; t < 8; t++)
            crc_table[t][n] = (crc_table[t - 1][n] >> 8) ^ crc_table[0][crc_table[t - 1][n] & 0xFF];
    // Shifting a CRC state over STREAM_BYTES zero bytes multiplies it by x^(8*STREAM_BYTES).
    uint32_t factor = x_to_the_power_of_bits(8ULL * STREAM_BYTES);
    for (int lane = 0; lane < 4; lane++)
        for (uint32_t n = 0; n < 256; n++)
            shift_table[lane][n] = gf2_multiply(n << (8 * lane), factor);
}

static inline void ensure_tables(void) {
    pthread_once(&tables_once, build_tables);
}

static inline uint32_t shift_crc(uint32_t crc) {
    return shift_table[0][crc & 0xFF] ^ shift_table[1][(crc >> 8) & 0xFF] ^
           shift_table[2][(crc >> 16) & 0xFF] ^ shift_table[3][crc >> 24];
}

uint32_t cxfs_crc32c_update_portable(uint32_t crc, const void *bytes, size_t length) {
    ensure_tables();
    const unsigned char *p = bytes;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc; // little-endian hosts only; XFS tooling runs on those (checked below)
        crc = crc_table[7][word & 0xFF] ^ crc_table[6][(word >> 8) & 0xFF] ^
              crc_table[5][(word >> 16) & 0xFF] ^ crc_table[4][(word >> 24) & 0xFF] ^
              crc_table[3][(word >> 32) & 0xFF] ^ crc_table[2][(word >> 40) & 0xFF] ^
              crc_table[1][(word >> 48) & 0xFF] ^ crc_table[0][word >> 56];
        p += 8;
        length -= 8;
    }
    while (length--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFF];
    return crc;
}

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "CXFSShims' CRC32c assumes a little-endian host"
#endif

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HW_TARGET __attribute__((target("sse4.2")))
#define HW_CRC64(c, v) ((uint32_t)_mm_crc32_u64((c), (v)))
#define HW_CRC8(c, v) _mm_crc32_u8((c), (v))
static int detect_hardware(void) { return __builtin_cpu_supports("sse4.2"); }
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#define HW_TARGET
#define HW_CRC64(c, v) __crc32cd((c), (v))
#define HW_CRC8(c, v) __crc32cb((c), (v))
static int detect_hardware(void) { return 1; }
#endif

#ifdef HW_CRC64
HW_TARGET static uint32_t crc32c_hardware(uint32_t crc, const unsigned char *p, size_t length) {
    while (length && ((uintptr_t)p & 7)) { crc = HW_CRC8(crc, *p++); length--; }
    while (length >= 3 * STREAM_BYTES) {
        uint32_t a = crc, b = 0, c = 0;
        const unsigned char *end = p + STREAM_BYTES;
        do {
            uint64_t va, vb, vc;
            memcpy(&va, p, 8);
            memcpy(&vb, p + STREAM_BYTES, 8);
            memcpy(&vc, p + 2 * STREAM_BYTES, 8);
            a = HW_CRC64(a, va);
            b = HW_CRC64(b, vb);
            c = HW_CRC64(c, vc);
            p += 8;
        } while (p < end);
        // crc(A||B||C) = shift(shift(a) ^ b) ^ c, where shift appends STREAM_BYTES zeros.
        crc = shift_crc(shift_crc(a) ^ b) ^ c;
        p += 2 * STREAM_BYTES;
        length -= 3 * STREAM_BYTES;
    }
    while (length >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        crc = HW_CRC64(crc, v);
        p += 8;
        length -= 8;
    }
    while (length--) crc = HW_CRC8(crc, *p++);
    return crc;
}
#endif

static int hardware_state = -1; // -1 unknown, 0 no, 1 yes

int cxfs_crc32c_is_hardware(void) {
#ifdef HW_CRC64
    int state = __atomic_load_n(&hardware_state, __ATOMIC_RELAXED);
    if (state < 0) {
        state = detect_hardware() ? 1 : 0;
        __atomic_store_n(&hardware_state, state, __ATOMIC_RELAXED);
    }
    return state;
#else
    return 0;
#endif
}

uint32_t cxfs_crc32c_update(uint32_t crc, const void *bytes, size_t length) {
#ifdef HW_CRC64
    if (cxfs_crc32c_is_hardware()) {
        ensure_tables();
        return crc32c_hardware(crc, bytes, length);
    }
#endif
    return cxfs_crc32c_update_portable(crc, bytes, length);
}

int cxfs_ioctl(int fd, unsigned long request, void *argument) {
    return ioctl(fd, request, argument);
}

int cxfs_fs_magic(int fd, uint64_t *magic) {
    struct statfs info;
    if (fstatfs(fd, &info) != 0) return -1;
    *magic = (uint64_t)info.f_type;
    return 0;
}

int cxfs_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0UL, 0UL, 0UL);
}

int cxfs_background_priority(void) {
    struct sched_param param = { .sched_priority = 0 };
    if (sched_setscheduler(0, SCHED_IDLE, &param) != 0) return -1;
#ifdef SYS_ioprio_set
    /* IOPRIO_WHO_PROCESS (1) of the calling thread (0), IOPRIO_CLASS_IDLE (3) << 13. */
    if (syscall(SYS_ioprio_set, 1, 0, 3 << 13) != 0) return -1;
#endif
    return 0;
}
