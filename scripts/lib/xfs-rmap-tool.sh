# Sourced by the benchmark scripts: sets `tool` to the xfs-rmap binary to measure.
# XFS_RMAP names one (say, built in a clean --scratch-path); otherwise the release build of
# the checkout at $root, brought up to date.
if [[ -n ${XFS_RMAP:-} ]]; then
    tool=$XFS_RMAP
else
    (cd "$root" && swift build -c release --product xfs-rmap >/dev/null)
    tool="$root/.build/release/xfs-rmap"
fi
