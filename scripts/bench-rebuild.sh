#!/usr/bin/env bash
# bench-rebuild.sh IMAGE [RUNS] [KIND]
#
# Damages a copy of IMAGE once (corruptxfs.py --kind KIND, default rec-owner, AG 1), then
# RUNS times (default 3), alternating, each on a fresh copy of the damaged image and with cold
# caches (`echo 3 > /proc/sys/vm/drop_caches` before every timed run, so that neither side
# reads from the page cache: xfs_repair reads with O_DIRECT, xfs-rmap through the cache):
#
#   xfs-rmap rebuild COPY          (release build; its undo file on the same filesystem)
#   xfs_repair COPY                (a real repair, Debian's xfsprogs)
#
# and prints each run's wall time and peak RSS (GNU time: seconds, KB), the medians and the
# ratios. Both results are then judged by `xfs_repair -n` (untimed): it must exit 0.
# Needs root (drop_caches), xfsprogs, GNU time, bc, python3.
set -euo pipefail

image=${1:?usage: bench-rebuild.sh IMAGE [RUNS] [KIND]}
runs=${2:-3}
kind=${3:-rec-owner}
root=$(cd "$(dirname "$0")/.." && pwd)
corrupt="$root/../shared/tools/corruptxfs.py"
[[ -x /usr/bin/time ]] || { echo "GNU time is missing: apt-get install time" >&2; exit 2; }
command -v xfs_repair >/dev/null || { echo "xfs_repair is missing: apt-get install xfsprogs" >&2; exit 2; }
command -v bc >/dev/null || { echo "bc is missing: apt-get install bc" >&2; exit 2; }
[[ -f $corrupt ]] || { echo "corruptxfs.py not found at $corrupt" >&2; exit 2; }
[[ -w /proc/sys/vm/drop_caches ]] || { echo "dropping caches needs root" >&2; exit 2; }

source "$root/scripts/lib/xfs-rmap-tool.sh"
scratch=$(mktemp -d "$(dirname "$image")/bench-rebuild.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

damaged="$scratch/damaged.img"
python3 "$corrupt" --in "$image" --out "$damaged" --kind "$kind" --ag 1 --seed 1 >/dev/null
echo "image:      $image ($(du -h --apparent-size "$image" | cut -f1) apparent, $(du -h "$image" | cut -f1) allocated)"
echo "damage:     $kind in AG 1 (corruptxfs.py --seed 1)"
echo "xfs-rmap:   $tool rebuild COPY --undo-file UNDO"
echo "xfs_repair: $(command -v xfs_repair) COPY ($(xfs_repair -V))"
echo "cpus:       $(nproc); caches dropped before every timed run"

work="$scratch/work.img"
# A fresh copy of the damaged image, written out and evicted from the page cache.
fresh() {
    rm -f "$work" "$scratch/undo"
    cp --sparse=always "$damaged" "$work"
    sync
    echo 3 >/proc/sys/vm/drop_caches
}
# One timed run of "$@": prints "SECONDS KB EXIT".
measure() {
    local status=0
    /usr/bin/time -o "$scratch/time" -f "%e %M" "$@" >"$scratch/out" 2>"$scratch/err" || status=$?
    echo "$(tail -1 "$scratch/time") $status"
}
# Judges the repaired copy: xfs_repair -n's exit code.
judge() { local s=0; xfs_repair -n "$work" >/dev/null 2>&1 || s=$?; echo "$s"; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-4s %-42s %-42s\n' run "xfs-rmap rebuild (s, KB, exit, then -n)" "xfs_repair (s, KB, exit, then -n)"
: >"$scratch/ours"; : >"$scratch/theirs"
for ((i = 1; i <= runs; i++)); do
    fresh
    read -r os okb ost < <(measure "$tool" rebuild "$work" --undo-file "$scratch/undo")
    oj=$(judge)
    fresh
    read -r rs rkb rst < <(measure xfs_repair "$work")
    rj=$(judge)
    printf '%-4s %8s s %10s KB  exit %s  -n %s       %8s s %10s KB  exit %s  -n %s\n' \
        "$i" "$os" "$okb" "$ost" "$oj" "$rs" "$rkb" "$rst" "$rj"
    echo "$os $okb" >>"$scratch/ours"; echo "$rs $rkb" >>"$scratch/theirs"
done
ot=$(cut -d' ' -f1 "$scratch/ours" | median); om=$(cut -d' ' -f2 "$scratch/ours" | median)
rt=$(cut -d' ' -f1 "$scratch/theirs" | median); rm_=$(cut -d' ' -f2 "$scratch/theirs" | median)
printf '%-4s %8s s %10s KB                   %8s s %10s KB\n' med "$ot" "$om" "$rt" "$rm_"
printf 'rebuild / xfs_repair (medians): wall time %.2f (target at most 0.30), peak RSS %.2f (target at most 0.50)\n' \
    "$(echo "$ot / $rt" | bc -l)" "$(echo "$om / $rm_" | bc -l)"
