#!/usr/bin/env bash
# `diag analyze` of one big snapshot (e.g. the busy node's, from
# `KEEP_SNAPSHOT=/tmp/busy.json bench/agent.sh`): wall time and peak RSS against the
# snapshot's size. Run after
#   cargo build --release --locked -p diag --no-default-features
# Knobs: DIAG (the binary), RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
snap=${1:?usage: bench/analyze.sh SNAPSHOT.json}
DIAG=${DIAG:-${CARGO_TARGET_DIR:-target}/release/diag}
RUNS=${RUNS:-5}
size=$(stat -c %s "$snap")
echo "snapshot: $snap, $size bytes ($((size / 1000000)) MB)"
rules=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(len(c["rules"]) for d in s["iptables"]["data"]["backends"] for t in d["tables"] for c in t["chains"]))' "$snap" 2>/dev/null || echo "?")
echo "iptables rules: $rules"
for i in $(seq "$RUNS"); do
    # exit 1 = error findings, which the busy node may well have; anything else is a failure.
    /usr/bin/time -f "run $i: %e s wall, %U s user, %S s sys, peak RSS %M kB" \
        "$DIAG" analyze "$snap" -o json > /dev/null || [ $? -eq 1 ]
done 2>&1 | grep '^run'
echo "target: <= 1 s and <= $((2 * size / 1024)) kB (2x the snapshot)"
