#!/usr/bin/env bash
# Fuzzes the image reader and the rmap check with libFuzzer and AddressSanitizer.
#
# Usage: scripts/fuzz.sh [-n CASES] [-i IMAGE] [-t SECONDS] [-o DIR] [-k] [-- LIBFUZZER-OPTIONS...]
#        scripts/fuzz.sh [-i IMAGE] -r INPUT...   replay inputs (a crash, a miss), explaining each
#
#   -n CASES    cases to run (default 10000)
#   -i IMAGE    base image: a name in Fuzz/Seeds or Tests/Fixtures (NAME.img.zst), or a path
#               to an uncompressed image (default tiny-1k, Fuzz/Seeds/tiny-1k.img.zst); an
#               input only means something on the image it was made for
#   -t SECONDS  time limit per case (default 10)
#   -o DIR      output folder (default .build-fuzz/findings/IMAGE)
#   -k          keep the corpus (in the output folder) for the next run
#   -r          replay the inputs named after the options instead of fuzzing
#
# Builds Fuzz/ (a package of its own: the XFSRmapFuzz executable over the library's modules)
# with `-sanitize=fuzzer,address` into .build-fuzz, linked with lld (gold fails on libFuzzer's
# `main`). Each case writes the fuzz input (the base image's metadata, mutated one field at a
# time by Fuzz/Sources/XFSRmapFuzz/Mutator.swift) over a working copy of the base image on
# /dev/shm and runs what `xfs-rmap check` and `xfs-rmap dump` run. Everything runs under
# `nice -n 19`. Output goes to the output folder: crash-*, timeout-*, oom-*, slow-unit-*
# (libFuzzer artifacts: replay them with -r), misses/ (an image the check called consistent though it
# differs from the clean one in a field the reverse mappings depend on), report.txt (cases,
# verdicts, slowest case, and per field how often a change to it passed).
#
# Exit status: 0 when every case ended with a verdict and none was missed; 1 on a crash,
# trap, timeout or memory limit (libFuzzer's artifact is in the output folder); 3 when the
# check called a damaged image consistent (see misses/); 2 when the fuzzer could not run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

cases=10000
image=tiny-1k
timeout=10
keep=0
replay=0
out=
while getopts "n:i:t:o:kr" opt; do
  case $opt in
    n) cases=$OPTARG ;;
    i) image=$OPTARG ;;
    t) timeout=$OPTARG ;;
    o) out=$OPTARG ;;
    k) keep=1 ;;
    r) replay=1 ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

scratch=$root/.build-fuzz
[ -n "$out" ] || out=$scratch/findings/$(basename "$image" .img)
mkdir -p "$scratch" "$out"
# lld: with gold, libFuzzer's whole-archive `main` and SwiftPM's `--defsym main=...` clash.
swift_bin=$(dirname "$(readlink -f "$(command -v swift)")")
printf '{ "schemaVersion": "1.0", "linker": { "path": "%s/ld.lld" } }\n' "$swift_bin" > "$scratch/toolset.json"
echo "== building the fuzz target (release, -sanitize=fuzzer,address)" >&2
nice -n 19 swift build -c release --package-path Fuzz --scratch-path "$scratch" \
  -Xswiftc -sanitize=fuzzer,address --toolset "$scratch/toolset.json" >&2
fuzzer=$scratch/release/XFSRmapFuzz

work=$(mktemp -d /dev/shm/xfs-rmap-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -f "$image" ]; then
  base=$image
else
  packed=
  for dir in Fuzz/Seeds Tests/Fixtures; do
    [ -f "$dir/$image.img.zst" ] && packed=$dir/$image.img.zst && break
  done
  [ -n "$packed" ] || { echo "fuzz.sh: no image $image (Fuzz/Seeds, Tests/Fixtures or a path)" >&2; exit 2; }
  base=$work/base.img
  zstd -q -d -f "$packed" -o "$base"
fi

export XFS_FUZZ_IMAGE=$base XFS_FUZZ_WORKDIR=$work XFS_FUZZ_REPORT=$out/report.txt
# Swift's runtime keeps caches for the life of the process: leak reports would be noise.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

if [ "$replay" = 1 ]; then
  [ $# -gt 0 ] || { echo "fuzz.sh -r: name the inputs to replay" >&2; exit 2; }
  XFS_FUZZ_EXPLAIN=1 "$fuzzer" -timeout="$timeout" -rss_limit_mb=2048 "$@"
  exit
fi

corpus=$out/corpus
[ "$keep" = 1 ] || rm -rf "$corpus"
mkdir -p "$corpus"
XFS_FUZZ_SEED=$corpus/clean "$fuzzer"
size=$(stat -c %s "$corpus/clean")
rm -rf "$out/misses"
mkdir -p "$work/misses"
echo "== fuzzing: $cases cases on $image ($size bytes of metadata), $timeout s per case" >&2
start=$(date +%s)
set +e
nice -n 19 "$fuzzer" -runs="$cases" -max_len="$size" -timeout="$timeout" -rss_limit_mb=4096 -malloc_limit_mb=1024 \
  -detect_leaks=0 -report_slow_units=2 -print_final_stats=1 -artifact_prefix="$out/" "$@" "$corpus" 2> "$out/libfuzzer.log"
status=$?
set -e
end=$(date +%s)
cp -r "$work/misses" "$out/" 2>/dev/null || true
[ "$keep" = 1 ] || rm -rf "$corpus"
tail -n 6 "$out/libfuzzer.log" >&2
sed -n '1,6p' "$out/report.txt" >&2
echo "== $((end - start)) s; report: $out/report.txt" >&2
if [ $status -ne 0 ]; then
  echo "fuzz.sh: libFuzzer stopped with status $status (crash, trap, timeout or memory limit):" >&2
  grep -E "^(==[0-9]+==ERROR|SUMMARY|.*Test unit written)" "$out/libfuzzer.log" | head -n 5 >&2 || true
  exit 1
fi
misses=$(ls "$out/misses" 2>/dev/null | grep -c '\.input$' || true)
if [ "$misses" -gt 0 ]; then
  echo "fuzz.sh: $misses damaged images were called consistent: $out/misses (replay with -r)" >&2
  exit 3
fi
