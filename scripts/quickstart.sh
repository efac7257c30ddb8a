#!/usr/bin/env bash
# One command from a fresh clone: install what is missing, build the tool in release mode,
# and check the sample XFS image that ships with the project (made by mkfs.xfs and the
# Linux kernel: 4 AGs, reflinked and fragmented files, xattrs, unwritten extents).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v zstd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd >/dev/null
  else
    echo "quickstart: please install zstd (apt-get install zstd)" >&2; exit 1
  fi
fi
swift build -c release --product xfs-rmap
# The sample is extracted to a path named after the compressed file's content hash, so a
# stale or half-written extraction of another version is never reused.
hash=$(sha256sum Tests/Fixtures/mixed-4k.img.zst | cut -c1-16)
sample="${TMPDIR:-/tmp}/xfs-rmap-sample-mixed-4k-$hash.img"
if [ ! -f "$sample" ]; then
  zstd -q -d -f Tests/Fixtures/mixed-4k.img.zst -o "$sample.$$.tmp"
  mv "$sample.$$.tmp" "$sample"
fi
echo "== xfs-rmap check $sample"
.build/release/xfs-rmap check "$sample"
echo
echo "The tool is .build/release/xfs-rmap; to install it: install -m 755 .build/release/xfs-rmap /usr/local/bin/"
