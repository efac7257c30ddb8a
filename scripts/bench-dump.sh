#!/usr/bin/env bash
# Compare `xfs-rmap dump` with xfs_db's btdump of every AG's rmap btree on one image:
# wall time (hyperfine when installed, else one timed run each) and peak RSS (GNU time).
#
#   scripts/bench-dump.sh IMAGE [RUNS]
#
# Build first: swift build -c release --product xfs-rmap. Both outputs are written to
# /dev/null; the record counts printed come from one extra run of each.
set -euo pipefail
image=${1:?usage: scripts/bench-dump.sh IMAGE [RUNS]}
runs=${2:-5}
cd "$(dirname "$0")/.."
tool=$(swift build -c release --product xfs-rmap --show-bin-path)/xfs-rmap
[ -x "$tool" ] || { echo "build first: swift build -c release --product xfs-rmap" >&2; exit 2; }
agcount=$(xfs_db -r -c 'sb 0' -c 'print agcount' "$image" | sed 's/.*= //')
dbargs=()
for ((ag = 0; ag < agcount; ag++)); do dbargs+=(-c "agf $ag" -c "addr rmaproot" -c btdump); done
ours="$tool dump $image"
theirs="xfs_db -r ${dbargs[*]@Q} $image"

echo "image: $image ($agcount AGs)"
echo "records: xfs-rmap $($tool dump "$image" | tail -n +2 | wc -l), xfs_db $(eval "$theirs" | awk '/^rmapbt level/ { leaf = ($3 == 0) } leaf && /^[0-9]+:\[/ { n++ } END { print n }')"
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 1 --runs "$runs" -N --output=null -n xfs-rmap "$ours" -n xfs_db "$theirs"
else
  for cmd in "$ours" "$theirs"; do /usr/bin/time -f "%e s  $cmd" bash -c "$cmd >/dev/null"; done
fi
echo "peak RSS (one run each, warm page cache):"
for name in xfs-rmap xfs_db; do
  cmd=$ours; [ $name = xfs_db ] && cmd=$theirs
  /usr/bin/time -f "  $name: %M KiB max RSS, %e s wall, %U s user, %S s sys" bash -c "exec $cmd >/dev/null"
done
