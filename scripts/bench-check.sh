#!/usr/bin/env bash
# bench-check.sh [--mode cold|memory|both] [--runs N] IMAGE...
#
# A fair race between `xfs-rmap check` (release build) and Debian's `xfs_repair -n`, with
# `xfs-rmap scan` and `dump` timed alongside (their output to /dev/null). Both sides read
# the same way:
#
#   cold    every run starts with cold caches (`sync; echo 3 > /proc/sys/vm/drop_caches`,
#           as root): xfs_repair reads with O_DIRECT, xfs-rmap through the page cache,
#           and both read the device.
#   memory  the image is copied to a tmpfs (/dev/shm) and both read it from there, after
#           one untimed run of each (O_DIRECT works on tmpfs; the page cache is the file).
#
# RUNS rounds (default 5), the commands alternating within each round. Prints every run
# (wall, user and system seconds, peak RSS in KB, exit code, from GNU time), then per
# command the min and median, and the ratios of the medians: check / xfs_repair -n (wall
# and RSS), scan / check and dump / check (wall), and how much slower the slowest check was
# than the fastest.
# Needs root (drop_caches), xfsprogs, GNU time, bc.
set -euo pipefail

mode=both runs=5 images=()
while (($#)); do
    case $1 in
        --mode) mode=${2:?--mode needs cold, memory or both}; shift 2 ;;
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) images+=("$1"); shift ;;
    esac
done
((${#images[@]})) || { echo "usage: bench-check.sh [--mode cold|memory|both] [--runs N] IMAGE..." >&2; exit 2; }
case $mode in cold) modes=(cold) ;; memory) modes=(memory) ;; both) modes=(cold memory) ;;
    *) echo "--mode must be cold, memory or both" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -x /usr/bin/time ]] || { echo "GNU time is missing: apt-get install time" >&2; exit 2; }
command -v xfs_repair >/dev/null || { echo "xfs_repair is missing: apt-get install xfsprogs" >&2; exit 2; }
command -v bc >/dev/null || { echo "bc is missing: apt-get install bc" >&2; exit 2; }
[[ -w /proc/sys/vm/drop_caches ]] || { echo "dropping caches needs root" >&2; exit 2; }

source "$root/scripts/lib/xfs-rmap-tool.sh"
scratch=$(mktemp -d)
shm=
trap 'rm -rf "$scratch"; [[ -n $shm ]] && rm -f "$shm"' EXIT

echo "xfs-rmap:   $tool ($(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown))"
echo "xfs_repair: $(command -v xfs_repair) ($(xfs_repair -V))"
echo "machine:    $(nproc) cpus, $(free -g | awk '/Mem:/ { print $2 }') GiB, kernel $(uname -r)"

# One timed run of "$@" (stdout discarded): prints "WALL USER SYS KB EXIT".
measure() {
    local status=0
    /usr/bin/time -o "$scratch/time" -f "%e %U %S %M" "$@" >/dev/null 2>"$scratch/err" || status=$?
    echo "$(tail -1 "$scratch/time") $status"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minimum() { sort -n | head -1; }
maximum() { sort -n | tail -1; }
ratio() { echo "scale=2; $1 / $2" | bc -l | sed 's/^\./0./'; }
# One timed run of command $1 (check, repair, scan or dump) on image $2.
run() {
    case $1 in
        check) measure "$tool" check "$2" ;;
        repair) measure xfs_repair -n "$2" ;;
        scan) measure "$tool" scan "$2" ;;
        dump) measure "$tool" dump "$2" ;;
    esac
}

for image in "${images[@]}"; do
    for m in "${modes[@]}"; do
        path=$image
        if [[ $m == memory ]]; then
            shm=/dev/shm/bench-check.$$.img
            cp --sparse=always "$image" "$shm"
            path=$shm
        fi
        echo
        echo "== $image ($(du -h --apparent-size "$image" | cut -f1) apparent, $(du -h "$image" | cut -f1) allocated), $m"
        commands=(check repair scan dump)
        if [[ $m == memory ]]; then
            for c in "${commands[@]}"; do run "$c" "$path" >/dev/null; done
        fi
        for c in "${commands[@]}"; do : >"$scratch/$c"; done
        printf '%-4s' run
        for c in "${commands[@]}"; do printf ' | %-34s' "$c (wall user sys s, KB, exit)"; done
        echo
        for ((i = 1; i <= runs; i++)); do
            printf '%-4s' "$i"
            for c in "${commands[@]}"; do
                [[ $m == cold ]] && { sync; echo 3 >/proc/sys/vm/drop_caches; }
                read -r wall user sys kb status < <(run "$c" "$path")
                printf ' | %6s %6s %5s %9s %2s      ' "$wall" "$user" "$sys" "$kb" "$status"
                echo "$wall $kb" >>"$scratch/$c"
            done
            echo
        done
        for c in "${commands[@]}"; do
            printf '%-7s wall min %6s median %6s max %6s s; peak RSS median %9s KB\n' "$c" \
                "$(cut -d' ' -f1 "$scratch/$c" | minimum)" "$(cut -d' ' -f1 "$scratch/$c" | median)" \
                "$(cut -d' ' -f1 "$scratch/$c" | maximum)" "$(cut -d' ' -f2 "$scratch/$c" | median)"
        done
        cw=$(cut -d' ' -f1 "$scratch/check" | median); rw=$(cut -d' ' -f1 "$scratch/repair" | median)
        ck=$(cut -d' ' -f2 "$scratch/check" | median); rk=$(cut -d' ' -f2 "$scratch/repair" | median)
        sw=$(cut -d' ' -f1 "$scratch/scan" | median); dw=$(cut -d' ' -f1 "$scratch/dump" | median)
        echo "check / xfs_repair -n: wall $(ratio "$cw" "$rw") (target at most 0.33), peak RSS $(ratio "$ck" "$rk") (target at most 0.25)"
        echo "scan / check wall $(ratio "$sw" "$cw"), dump / check wall $(ratio "$dw" "$cw") (targets at most 1.3)"
        echo "check slowest / fastest: $(ratio "$(cut -d' ' -f1 "$scratch/check" | maximum)" "$(cut -d' ' -f1 "$scratch/check" | minimum)") (target at most 1.3)"
        if [[ -n $shm ]]; then rm -f "$shm"; shm=; fi
    done
done
