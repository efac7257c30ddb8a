#!/usr/bin/env bash
# bench-online.sh IMAGE [SECONDS] [RATE] [ROUNDS]
#
# The cost of `xfs-rmap check --online` (release build) on a mounted copy of IMAGE (make
# the 1M-extent one with mkxfsimage.py --size 16G --profile extents --extents 1000000):
#
#   1. the check alone (no writers): wall time, peak RSS, live updates;
#   2-3. ROUNDS (default 3) alternating pairs of writer runs of SECONDS each, seeded
#      alike: alone, then with the check running over and over meanwhile (a check that
#      outlasts the writers runs to its end). Per round: both rates, the cost (how much
#      lower the rate with the check is), the longest writer operation (the longest pause
#      they saw), and each check's wall time, CPU time, verdict, live updates applied and
#      freeze time (0 when it never froze). At the end, the median cost.
#
# RATE (default: none, or "-") caps each writer's operations per second. CHECK_ARGS
# (environment) adds options to each check, e.g. CHECK_ARGS=--background or
# CHECK_ARGS="--max-cpu 20". XFS_RMAP names another binary (default: this checkout's
# release build, built first). Needs root, loop devices and
# tracefs. Everything it makes (copy, mount, instances) is removed at exit.
set -euo pipefail

image=${1:?usage: bench-online.sh IMAGE [SECONDS] [RATE] [ROUNDS]}
seconds=${2:-30}
rate=${3:-}
[[ $rate == - ]] && rate=
rounds=${4:-3}
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
    umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    [[ -n ${loop:-} ]] && losetup -d "$loop" 2>/dev/null || true
    # Never into the copy if it is still mounted.
    rm -rf --one-file-system "$scratch"
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

# One check: prints "SECONDS KB EXIT APPLIED FROZEN RANGES RETRIES CPU".
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
      d.get("fsmap_queries", "-"), d.get("fsmap_retries", "-"), "%.2f" % d.get("cpu_seconds", 0))
EOF
}

echo
echo "1. check --online, no writers"
for i in 1 2; do
    read -r s kb st applied frozen ranges retries cpu < <(check_once)
    echo "   run $i: ${s} s, CPU ${cpu} s, ${kb} KB, exit $st, live updates applied $applied, GETFSMAP ranges $ranges (repeated $retries), frozen ${frozen} s"
done

for round in $(seq "$rounds"); do
    echo
    echo "2.$round writers alone, ${seconds} s (seed $round)"
    python3 "$writers" "$mnt" --seed "$round" --writers 2 --seconds "$seconds" "${rate_args[@]}" | tee "$scratch/alone-$round.json" | sed 's/^/   /'
    echo "3.$round writers for ${seconds} s (seed $round) with check --online running over and over"
    python3 "$writers" "$mnt" --seed "$round" --writers 2 --seconds "$seconds" "${rate_args[@]}" >"$scratch/with-$round.json" &
    wpid=$!
    n=0
    while kill -0 "$wpid" 2>/dev/null; do
        read -r s kb st applied frozen ranges retries cpu < <(check_once)
        n=$((n + 1))
        echo "   check $n: ${s} s, CPU ${cpu} s, ${kb} KB, exit $st, live updates applied $applied, GETFSMAP ranges $ranges (repeated $retries), frozen ${frozen} s"
        [[ $st == 0 ]] || sed 's/^/     /' "$scratch/check.err"
    done
    wait "$wpid"
    sed 's/^/   /' "$scratch/with-$round.json"
done

python3 - "$scratch" "$rounds" <<'EOF'
import json, statistics, sys
scratch, rounds = sys.argv[1], int(sys.argv[2])
print()
costs = []
for r in range(1, rounds + 1):
    a = json.load(open("%s/alone-%d.json" % (scratch, r))); w = json.load(open("%s/with-%d.json" % (scratch, r)))
    cost = 100 * (1 - w["ops_per_second"] / a["ops_per_second"])
    costs.append(cost)
    print("round %d: %.1f ops/s alone, %.1f with the check: %.1f %% lower; longest operation %.3f s alone, %.3f s with"
          % (r, a["ops_per_second"], w["ops_per_second"], cost, a["longest_op_seconds"], w["longest_op_seconds"]))
print("writers' throughput with the check running: median %.1f %% lower over %d rounds (target: at most 10 %%)"
      % (statistics.median(costs), rounds))
EOF
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
