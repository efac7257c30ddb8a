#!/usr/bin/env bash
# bench-online.sh IMAGE [SECONDS] [RATE]
#
# The cost of `xfs-rmap check --online` (release build) on a mounted copy of IMAGE (make
# the 1M-extent one with mkxfsimage.py --size 16G --profile extents --extents 1000000):
#
#   1. the check alone (no writers): wall time, peak RSS, live updates;
#   2. the writers alone (scripts/online-writers.py, 2 writers, seed 1) for SECONDS
#      (default 30): operations per second and the longest single operation;
#   3. the writers for SECONDS again, with the check running over and over meanwhile:
#      their operations per second and longest operation (the cost to the user's
#      workload and the longest pause they saw), and each check's wall time, verdict,
#      live updates applied and freeze time (0 when it never froze).
#
# RATE (default: none) caps each writer's operations per second. CHECK_ARGS (environment)
# adds options to each check, e.g. CHECK_ARGS=--background. XFS_RMAP names another binary
# (default: this checkout's release build, built first). Needs root, loop devices and
# tracefs. Everything it makes (copy, mount, instances) is removed at exit.
set -euo pipefail

image=${1:?usage: bench-online.sh IMAGE [SECONDS] [RATE]}
seconds=${2:-30}
rate=${3:-}
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -x /usr/bin/time ]] || { echo "GNU time is missing: apt-get install time" >&2; exit 2; }
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing

source "$root/scripts/lib/xfs-rmap-tool.sh"
read -r -a check_args <<<"${CHECK_ARGS:-}"
writers="$root/scripts/online-writers.py"
scratch=$(mktemp -d)
mnt="$scratch/mnt"
mkdir "$mnt"
cleanup() {
    touch "$scratch/stop" 2>/dev/null || true
    wait 2>/dev/null || true
    umount "$mnt" 2>/dev/null || true
    [[ -n ${loop:-} ]] && losetup -d "$loop" 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT

cp --sparse=always "$image" "$scratch/image.img"
loop=$(losetup --find --show "$scratch/image.img")
mount -o nouuid "$loop" "$mnt"
rate_args=()
[[ -n $rate ]] && rate_args=(--rate "$rate")

echo "image:   $image ($(du -h --apparent-size "$image" | cut -f1) apparent, $(du -h "$image" | cut -f1) allocated), mounted on $loop"
echo "tool:    $tool check --online --json ${check_args[*]} MOUNTPOINT"
echo "writers: $writers MOUNTPOINT --seed 1 --writers 2 --seconds $seconds ${rate_args[*]}"
echo "cpus:    $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg)"

# One check: prints "SECONDS KB EXIT APPLIED FROZEN RANGES RETRIES".
check_once() {
    local status=0
    /usr/bin/time -o "$scratch/time" -f "%e %M" "$tool" check --online --json "${check_args[@]}" "$mnt" >"$scratch/check.json" 2>"$scratch/check.err" || status=$?
    python3 - "$scratch/check.json" "$(tail -1 "$scratch/time")" "$status" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    d = {}
live = d.get("live_updates", {})
print(sys.argv[2], sys.argv[3], live.get("applied", "-"), d.get("frozen_seconds") or 0,
      d.get("fsmap_queries", "-"), d.get("fsmap_retries", "-"))
EOF
}

echo
echo "1. check --online, no writers"
for i in 1 2; do
    read -r s kb st applied frozen ranges retries < <(check_once)
    echo "   run $i: ${s} s, ${kb} KB, exit $st, live updates applied $applied, GETFSMAP ranges $ranges (repeated $retries), frozen ${frozen} s"
done

echo
echo "2. writers alone, ${seconds} s"
python3 "$writers" "$mnt" --seed 1 --writers 2 --seconds "$seconds" "${rate_args[@]}" | tee "$scratch/alone.json" | sed 's/^/   /'

echo
echo "3. writers for ${seconds} s with check --online running over and over"
python3 "$writers" "$mnt" --seed 1 --writers 2 --seconds "$seconds" "${rate_args[@]}" >"$scratch/with.json" &
wpid=$!
n=0
while kill -0 "$wpid" 2>/dev/null; do
    read -r s kb st applied frozen ranges retries < <(check_once)
    n=$((n + 1))
    echo "   check $n: ${s} s, ${kb} KB, exit $st, live updates applied $applied, GETFSMAP ranges $ranges (repeated $retries), frozen ${frozen} s"
    [[ $st == 0 ]] || sed 's/^/     /' "$scratch/check.err"
done
wait "$wpid"
sed 's/^/   /' "$scratch/with.json"

python3 - "$scratch/alone.json" "$scratch/with.json" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1])); w = json.load(open(sys.argv[2]))
print()
print("writers' throughput with the check running: %.1f of %.1f ops/s alone (%.1f %% lower; target: at most 10 %%)"
      % (w["ops_per_second"], a["ops_per_second"], 100 * (1 - w["ops_per_second"] / a["ops_per_second"])))
print("longest single writer operation: %.3f s with the check, %.3f s alone" % (w["longest_op_seconds"], a["longest_op_seconds"]))
EOF
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
