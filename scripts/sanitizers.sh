#!/usr/bin/env bash
# Runs the whole test suite under AddressSanitizer, then under UndefinedBehaviorSanitizer.
#
# Usage: scripts/sanitizers.sh [address|undefined]... [-- SWIFT-TEST-OPTIONS...]
#
#   With no sanitizer named, runs both, address first. Each has its own scratch folder
#   (.build-asan, .build-ubsan), so a run builds incrementally on the last one. Options
#   after `--` go to `swift test` (e.g. `-- --filter XFSFormatTests`).
#
# address: `swift test --sanitize=address`: every module, Swift and C, instrumented.
# undefined: swiftc has no UBSan on Linux (`--sanitize=undefined` stops with "unsupported
#   option '-sanitize=undefined'"), so the C module (CXFSShims: CRC32c, the futex lock, the
#   system-call shims) is built with clang's -fsanitize=undefined, aborting at the first
#   report, and the test binary links the UBSan runtime; the Swift code keeps its own
#   checks (overflow, bounds, unwrapping), which trap in this debug build.
#
# Everything runs under `nice -n 19`. Leak detection is off: the Swift runtime and
# Foundation keep caches for the life of the process, which LeakSanitizer reports at exit.
# Prints each run's time; exits non-zero when any run fails.
set -uo pipefail
cd "$(dirname "$0")/.."

sanitizers=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case $1 in
    address|undefined) sanitizers+=("$1") ;;
    *) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
  shift
done
[ "${1:-}" = "--" ] && shift
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(address undefined)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=0
for sanitizer in "${sanitizers[@]}"; do
  case $sanitizer in
    address) scratch=.build-asan; flags=(--sanitize=address) ;;
    undefined) scratch=.build-ubsan
      flags=(-Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined
             -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined) ;;
  esac
  log=$scratch/sanitizer-test.log
  mkdir -p "$scratch"
  echo "== swift test ${flags[*]} --scratch-path $scratch (log: $log)" >&2
  start=$(date +%s)
  nice -n 19 swift test "${flags[@]}" --scratch-path "$scratch" "$@" > "$log" 2>&1
  status=$?
  end=$(date +%s)
  grep -E "^(==[0-9]+==ERROR|SUMMARY: |.*runtime error:)" "$log" | head -n 10 >&2
  grep -E "Test run with|Executed [0-9]+ tests" "$log" | tail -n 2 >&2
  echo "== $sanitizer: exit $status in $((end - start)) s" >&2
  [ $status -eq 0 ] || failed=1
done
exit $failed
