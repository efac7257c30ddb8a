#!/usr/bin/env bash
# bench-scale.sh DIR [--mode cold|memory|both] [--runs N]
#
# The three images of the scale race, made in DIR when missing (each by the running kernel,
# with ../shared/tools/mkxfsimage.py; minutes to tens of minutes each, once):
#
#   ext1m.img     --profile extents --extents 1000000  --size 16G
#   ext10m.img    --profile extents --extents 10000000 --size 64G
#   inodes2m.img  --profile inodes --files 2000000 --dirs 2000 --size 32G
#
# then the fair comparison of scripts/bench-check.sh on all three (default: both modes).
# Needs root, xfsprogs, loop devices, GNU time, bc, python3.
set -euo pipefail

dir=${1:?usage: bench-scale.sh DIR [--mode cold|memory|both] [--runs N]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
make="$root/../shared/tools/mkxfsimage.py"
[[ -f $make ]] || { echo "mkxfsimage.py not found at $make" >&2; exit 2; }
mkdir -p "$dir"

make_image() {
    local name=$1; shift
    if [[ ! -f $dir/$name ]]; then
        echo "making $dir/$name: mkxfsimage.py $*" >&2
        python3 "$make" --out "$dir/$name.partial" "$@" >&2
        for suffix in "" .rmap.tsv .json; do
            [[ -e $dir/$name.partial$suffix ]] && mv "$dir/$name.partial$suffix" "$dir/$name$suffix"
        done
    fi
}
make_image ext1m.img --profile extents --extents 1000000 --size 16G
make_image ext10m.img --profile extents --extents 10000000 --size 64G
make_image inodes2m.img --profile inodes --files 2000000 --dirs 2000 --size 32G

exec "$root/scripts/bench-check.sh" "$@" "$dir/ext1m.img" "$dir/ext10m.img" "$dir/inodes2m.img"
