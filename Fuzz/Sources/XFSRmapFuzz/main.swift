// A libFuzzer target for the image reader and the rmap check.
//
// The fuzz input is the metadata of a clean base image laid end to end (`Layout`): its AG
// headers, every AG btree block, every bmbt block and every inode. Each case writes the
// input back over a working copy of the base image on tmpfs and runs what `xfs-rmap check`
// and `xfs-rmap dump` run (`VerdictRunner`). libFuzzer catches crashes, traps, timeouts and
// memory blow-ups; the oracle here (`Campaign`) adds the verdict rule: when the input
// differs from the clean one in a field the reverse mappings depend on, or in a structure
// the check reads whose CRC no longer matches, the check must not say "consistent".
//
// Environment:
//   XFS_FUZZ_IMAGE    the clean base image (required)
//   XFS_FUZZ_WORKDIR  where the working copy, misses and the report go (default /dev/shm)
//   XFS_FUZZ_REPORT   the report file (default $XFS_FUZZ_WORKDIR/report.txt)
//   XFS_FUZZ_SEED     write the clean input (the seed corpus entry) to this path and exit
//   XFS_FUZZ_EXPLAIN  print what each input changes and the verdict (for reproducing)
//   XFS_FUZZ_MISS     "abort": a missed verdict is a crash (default: recorded, run goes on)

import CLibFuzzer
import Glibc
import XFSFormat

/// The campaign's state; libFuzzer calls the entry points from one thread.
nonisolated(unsafe) var campaign: Campaign!

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    campaign.run(UnsafeBufferPointer(start: data, count: size))
}

@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzCustomMutator(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    guard let data else { return 0 }
    return campaign.mutator.mutate(data, size: size, maxSize: maxSize, seed: seed)
}

let environment = ProcessInfoLite()
guard let base = environment["XFS_FUZZ_IMAGE"] else {
    warn("xfs-rmap-fuzz: set XFS_FUZZ_IMAGE to a clean base image (see scripts/fuzz.sh)\n")
    exit(2)
}
do {
    campaign = try Campaign(base: base, workdir: environment["XFS_FUZZ_WORKDIR"] ?? "/dev/shm",
                            report: environment["XFS_FUZZ_REPORT"], explain: environment["XFS_FUZZ_EXPLAIN"] != nil,
                            abortOnMiss: environment["XFS_FUZZ_MISS"] == "abort")
} catch {
    warn("xfs-rmap-fuzz: \(error)\n")
    exit(2)
}
if let seed = environment["XFS_FUZZ_SEED"] {
    let written = Result { try campaign.writeSeed(to: seed) }
    campaign.removeWorkingCopy()
    if case .failure(let error) = written {
        warn("xfs-rmap-fuzz: \(error)\n")
        exit(2)
    }
    exit(0)
}
atexit { campaign?.finish() }
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzTestOneInput(data, size) })
