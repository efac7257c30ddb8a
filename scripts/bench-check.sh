#!/usr/bin/env bash
# bench-check.sh IMAGE [RUNS]
#
# Runs `xfs-rmap check` (release build) and Debian's `xfs_repair -n` on the same image,
# RUNS times each (default 3, alternating, after one untimed warm-up of each so that both
# read from the page cache), and prints each run's wall time and peak RSS as GNU time
# measures them (`/usr/bin/time -f "%e %M"`: seconds, KB), their exit codes (both: 0
# consistent, 1 damage), then the best of each side by side and the ratios.
set -euo pipefail

image=${1:?usage: bench-check.sh IMAGE [RUNS]}
runs=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -x /usr/bin/time ]] || { echo "GNU time is missing: apt-get install time" >&2; exit 2; }
command -v xfs_repair >/dev/null || { echo "xfs_repair is missing: apt-get install xfsprogs" >&2; exit 2; }
command -v bc >/dev/null || { echo "bc is missing: apt-get install bc" >&2; exit 2; }

(cd "$root" && swift build -c release --product xfs-rmap >/dev/null)
tool="$root/.build/release/xfs-rmap"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "image:      $image ($(du -h --apparent-size "$image" | cut -f1) apparent, $(du -h "$image" | cut -f1) allocated)"
echo "xfs-rmap:   $tool check IMAGE"
echo "xfs_repair: $(command -v xfs_repair) -n IMAGE ($(xfs_repair -V))"
echo "cpus:       $(nproc)"

# One timed run of "$@": prints "SECONDS KB EXIT".
measure() {
    local status=0
    /usr/bin/time -o "$scratch/time" -f "%e %M" "$@" >"$scratch/out" 2>"$scratch/err" || status=$?
    echo "$(tail -1 "$scratch/time") $status"
}
# The smaller of two decimal numbers (an empty first one loses).
smaller() { if [[ -z $1 ]] || (( $(echo "$2 < $1" | bc) )); then echo "$2"; else echo "$1"; fi; }

measure "$tool" check "$image" >/dev/null
measure xfs_repair -n "$image" >/dev/null

cs_best= ckb_best= rs_best= rkb_best=
printf '%-5s %-30s %-30s\n' run "xfs-rmap check" "xfs_repair -n"
for ((i = 1; i <= runs; i++)); do
    read -r cs ckb cst < <(measure "$tool" check "$image")
    read -r rs rkb rst < <(measure xfs_repair -n "$image")
    printf '%-5s %8s s %10s KB  exit %s   %8s s %10s KB  exit %s\n' "$i" "$cs" "$ckb" "$cst" "$rs" "$rkb" "$rst"
    cs_best=$(smaller "$cs_best" "$cs"); ckb_best=$(smaller "$ckb_best" "$ckb")
    rs_best=$(smaller "$rs_best" "$rs"); rkb_best=$(smaller "$rkb_best" "$rkb")
done
printf '%-5s %8s s %10s KB           %8s s %10s KB\n' best "$cs_best" "$ckb_best" "$rs_best" "$rkb_best"
printf 'check / repair: wall time %.2f, peak RSS %.2f (target: at most 0.50 each)\n' \
    "$(echo "$cs_best / $rs_best" | bc -l)" "$(echo "$ckb_best / $rkb_best" | bc -l)"
