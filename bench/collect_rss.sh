#!/usr/bin/env bash
# Peak RSS of `diag collect` against the number of nodes: snapshots are written to disk as
# each node finishes, so memory should depend on the nodes in flight (-j) and the snapshot
# size, not on how many snapshots were already written.
#
# Emulated fleet: one real sshd per network namespace (tests/src/sshd.rs); a fake agent on
# each node prints a prepared snapshot of COLLECT_RSS_KB KiB (incompressible filler).
#
# Usage: bench/collect_rss.sh [SIZES]   (default 10,30,60; needs root, ip, sshd, GNU time)
# Env:   COLLECT_RSS_KB (default 1024), COLLECT_RSS_JOBS (default 4), PROFILE=release.
# Prints one line per size: `BENCH collect n=.. jobs=.. snapshot_kb=.. peak_rss_kb=.. ...`.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${1:-10,30,60}"
PROFILE="${PROFILE:-dev}"
flag=()
[ "$PROFILE" = release ] && flag=(--release)
COLLECT_RSS_N="$SIZES" COLLECT_RSS_KB="${COLLECT_RSS_KB:-1024}" COLLECT_RSS_JOBS="${COLLECT_RSS_JOBS:-4}" \
  cargo test -q "${flag[@]}" --workspace --test collect_stream rss_child -- --exact --nocapture 2>/dev/null \
  | grep '^BENCH'
