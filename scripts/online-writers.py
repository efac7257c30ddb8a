#!/usr/bin/env python3
"""Writers that keep changing a mounted XFS, for the live check's tests and benchmark.

    online-writers.py DIR [--seed N] [--writers W] [--seconds S | --ops N] [--stop-file PATH] [--rate R]

Each of W processes works in DIR/wNN with its own seeded random generator and does, over
and over: create, append, overwrite, fallocate (unwritten extents), write into
preallocated space (unwritten -> written conversions), punch holes, truncate, reflink
(FICLONE / FICLONERANGE) and overwrite the clone (copy on write), set and remove xattrs
(large ones go to attr-fork blocks), fsync, and unlink. It stops after S seconds, after N
operations per writer, or when PATH exists; with --rate, each writer does at most R
operations a second. When the filesystem is more than 70 % full, writers unlink files
until it is not (so that a long run does not end in ENOSPC). On exit it prints one JSON line: operations
done, bytes written, the longest single operation (the longest pause a writer saw), and
the operations per second.

The same seed gives the same sequence of operations (not the same timing).
"""
import argparse
import ctypes
import errno
import fcntl
import json
import os
import random
import sys
import time

FICLONE = 0x40049409
FICLONERANGE = 0x4020940D
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02

libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


def fallocate(fd, mode, offset, length):
    if libc.fallocate(fd, mode, offset, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Writer:
    def __init__(self, root, seed, block):
        self.root = root
        self.rng = random.Random(seed)
        self.block = block
        self.files = []
        self.serial = 0
        self.ops = 0
        self.bytes = 0
        self.longest = 0.0
        os.makedirs(root, exist_ok=True)

    def path(self):
        self.serial += 1
        return os.path.join(self.root, "f%d" % self.serial)

    def pick(self):
        return self.rng.choice(self.files) if self.files else None

    def data(self, blocks):
        n = blocks * self.block
        self.bytes += n
        return self.rng.randbytes(n)

    def op_create(self):
        p = self.path()
        with open(p, "wb") as f:
            f.write(self.data(self.rng.randint(1, 16)))
        self.files.append(p)

    def op_append(self, p):
        with open(p, "ab") as f:
            f.write(self.data(self.rng.randint(1, 8)))

    def op_overwrite(self, p):
        size = os.path.getsize(p)
        blocks = max(size // self.block, 1)
        with open(p, "r+b") as f:
            f.seek(self.rng.randrange(blocks) * self.block)
            f.write(self.data(self.rng.randint(1, 4)))
            if self.rng.random() < 0.3:
                os.fsync(f.fileno())

    def op_fallocate(self, p):
        fd = os.open(p, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            start = self.rng.randrange(max(size // self.block, 1) + 4) * self.block
            fallocate(fd, FALLOC_FL_KEEP_SIZE if self.rng.random() < 0.5 else 0, start,
                      self.rng.randint(1, 32) * self.block)
            if self.rng.random() < 0.7:
                # Write into part of the preallocated range: unwritten -> written.
                os.pwrite(fd, self.data(self.rng.randint(1, 3)), start + self.rng.randint(0, 8) * self.block)
        finally:
            os.close(fd)

    def op_punch(self, p):
        fd = os.open(p, os.O_RDWR)
        try:
            blocks = max(os.fstat(fd).st_size // self.block, 1)
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      self.rng.randrange(blocks) * self.block, self.rng.randint(1, 4) * self.block)
        finally:
            os.close(fd)

    def op_truncate(self, p):
        size = os.path.getsize(p)
        os.truncate(p, self.rng.randrange(size + 1) // self.block * self.block if size else 0)

    def op_reflink(self, p):
        q = self.path()
        with open(p, "rb") as src, open(q, "wb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        self.files.append(q)
        # Copy-on-write overwrite of part of the clone, or of the original.
        self.op_overwrite(q if self.rng.random() < 0.6 else p)

    def op_clone_range(self, p):
        q = self.pick()
        size = os.path.getsize(p)
        if size < self.block or q == p:
            return
        blocks = size // self.block
        start = self.rng.randrange(blocks)
        count = self.rng.randint(1, blocks - start)
        arg = bytearray(32)
        with open(p, "rb") as src, open(q, "r+b") as dst:
            arg[0:8] = src.fileno().to_bytes(8, "little", signed=True)
            arg[8:16] = (start * self.block).to_bytes(8, "little")
            arg[16:24] = (count * self.block).to_bytes(8, "little")
            arg[24:32] = (self.rng.randrange(64) * self.block).to_bytes(8, "little")
            fcntl.ioctl(dst.fileno(), FICLONERANGE, bytes(arg))

    def op_xattr(self, p):
        name = "user.a%d" % self.rng.randrange(4)
        if self.rng.random() < 0.3:
            try:
                os.removexattr(p, name)
            except OSError as e:
                if e.errno != errno.ENODATA:
                    raise
        else:
            # Large values go to remote attr blocks (attr-fork mappings).
            os.setxattr(p, name, self.rng.randbytes(self.rng.choice([16, 300, 3000, 20000])))

    def op_unlink(self, p):
        os.unlink(p)
        self.files.remove(p)

    def step(self):
        p = self.pick()
        if p is None or len(self.files) < 4 or self.rng.random() < 0.12:
            op = self.op_create
            args = ()
        else:
            op = self.rng.choices(
                [self.op_append, self.op_overwrite, self.op_fallocate, self.op_punch, self.op_truncate,
                 self.op_reflink, self.op_clone_range, self.op_xattr, self.op_unlink],
                weights=[10, 14, 10, 8, 5, 6, 4, 8, 6 if len(self.files) > 12 else 1])[0]
            args = (p,)
        start = time.monotonic()
        try:
            op(*args)
        except OSError as e:
            # A full filesystem is part of the workload: free space and go on.
            if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.ENOENT, errno.EINVAL, errno.EXDEV):
                raise
            if e.errno == errno.ENOSPC and self.files:
                self.op_unlink(self.files[0])
        self.longest = max(self.longest, time.monotonic() - start)
        self.ops += 1


def run_one(root, seed, block, deadline, ops, stop_file, result_fd, rate):
    w = Writer(root, seed, block)
    started = time.monotonic()
    while True:
        if rate and w.ops > rate * (time.monotonic() - started):
            time.sleep(1.0 / rate)
            continue
        if w.ops % 64 == 0 and len(w.files) > 4:
            st = os.statvfs(root)
            while st.f_bavail < 0.3 * st.f_blocks and len(w.files) > 4:
                w.op_unlink(w.files[0])
                st = os.statvfs(root)
        if ops is not None and w.ops >= ops:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        if stop_file and w.ops % 16 == 0 and os.path.exists(stop_file):
            break
        w.step()
    os.write(result_fd, (json.dumps({"ops": w.ops, "bytes": w.bytes, "longest": w.longest}) + "\n").encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--ops", type=int)
    ap.add_argument("--stop-file")
    ap.add_argument("--rate", type=float, help="at most this many operations a second per writer")
    args = ap.parse_args()
    if args.seconds is None and args.ops is None and args.stop_file is None:
        ap.error("give --seconds, --ops or --stop-file")
    block = os.statvfs(args.dir).f_bsize
    deadline = time.monotonic() + args.seconds if args.seconds is not None else None
    read_end, write_end = os.pipe()
    started = time.monotonic()
    children = []
    for i in range(args.writers):
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            code = 0
            try:
                run_one(os.path.join(args.dir, "w%02d" % i), args.seed * 1000 + i, block, deadline, args.ops,
                        args.stop_file, write_end, args.rate)
            except BaseException as e:
                sys.stderr.write("writer %d: %r\n" % (i, e))
                code = 1
            os._exit(code)
        children.append(pid)
    os.close(write_end)
    failed = 0
    for pid in children:
        _, status = os.waitpid(pid, 0)
        failed += status != 0
    elapsed = time.monotonic() - started
    results = [json.loads(line) for line in os.fdopen(read_end).read().splitlines()]
    total = sum(r["ops"] for r in results)
    print(json.dumps({
        "writers": args.writers, "ops": total, "bytes": sum(r["bytes"] for r in results),
        "seconds": round(elapsed, 3), "ops_per_second": round(total / elapsed, 1) if elapsed else 0,
        "longest_op_seconds": round(max((r["longest"] for r in results), default=0), 4), "failed": failed,
    }))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
