#!/usr/bin/env bash
# Fleet collection benchmark: diag-fleet (russh, one process) vs parallel-ssh (pssh: one
# OpenSSH client per node) collecting the raw `node-agent collect` output from the same
# emulated fleet of real sshds, each in its own network namespace (see tests/src/sshd.rs).
#
# Usage: bench/fleet.sh [SIZES]   (default 10,30,60; needs root, ip, sshd, parallel-ssh)
# Env:   PROFILE=release to bench release builds (compiling aws-sdk-ec2 in release takes
#        5-8 min and ~8 GB); CARGO_TARGET_DIR as usual.
# Prints one line per tool and size: wall seconds and peak RSS (GNU time %M: the largest
# single process in the measured tree, so pssh's N ssh children are NOT summed).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${1:-10,30,60}"
PROFILE="${PROFILE:-dev}"
if ! command -v parallel-ssh >/dev/null && ! command -v pssh >/dev/null; then
  echo "parallel-ssh not found: apt-get install pssh (or pip install parallel-ssh)" >&2
fi
flag=()
[ "$PROFILE" = release ] && flag=(--release)
cargo build -q "${flag[@]}" -p node-agent
cargo build -q "${flag[@]}" -p diag --bin diag-fleet
FLEET_BENCH_N="$SIZES" cargo test -q "${flag[@]}" -p fleet --test ssh_fleet bench_child -- --exact --ignored --nocapture 2>/dev/null \
  | grep '^BENCH'
