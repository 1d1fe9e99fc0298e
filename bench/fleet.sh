#!/usr/bin/env bash
# Fleet benchmark: `diag snat` (the operator command: collect over russh, analyse, report)
# against parallel-ssh collecting the raw text of the seven commands people run by hand,
# side by side in one run, on an emulated fleet of real OpenSSH sshds, each in its own network
# namespace (tests/src/sshd.rs) carrying the VPC CNI iptables rules of an emulated EKS node.
# Also the legs that split diag's time (see fleet/tests/ssh_fleet.rs `bench_child`).
#
# Usage: bench/fleet.sh [SIZES]   (default 10,30,60; needs root, ip, sshd, parallel-ssh)
# Env:   REPS (rounds per size, legs rotated each round; default 3), LEGS (default all:
#        snat,pssh-raw,collect,pssh-agent,snat-cat,pssh-cat,snat-timed), PROFILE (release),
#        AGENT (the node-agent the nodes run; default the built one), SKIP_BUILD=1.
# Binaries: release builds of node-agent, emulate-node, diag and diag-fleet; diag without the
# AWS SDK (`--no-default-features`: SSH only, the same code path; the SDK is only EC2/SSM),
# so the release build takes minutes, not ~20. The driver itself is the dev test binary.
# Prints one BENCH line per leg, size and round: wall seconds, peak RSS (GNU time %M: the
# largest single process, so parallel-ssh's N ssh children are NOT summed), nodes ok, load.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${1:-10,30,60}"
PROFILE="${PROFILE:-release}"
REPS="${REPS:-3}"
LEGS="${LEGS:-snat,pssh-raw,collect,pssh-agent,snat-cat,pssh-cat,snat-timed}"
command -v parallel-ssh >/dev/null || command -v pssh >/dev/null ||
    { echo "parallel-ssh not found: apt-get install pssh" >&2; exit 1; }
dir=${CARGO_TARGET_DIR:-target}/$([ "$PROFILE" = release ] && echo release || echo debug)
flag=()
[ "$PROFILE" = release ] && flag=(--release)
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build -q --locked "${flag[@]}" -p node-agent -p e2e --bins
    cargo build -q --locked "${flag[@]}" -p diag --no-default-features --bin diag --bin diag-fleet
fi
AGENT=$(readlink -f "${AGENT:-$dir/node-agent}")

# The VPC CNI rules of an emulated EKS node (3 pods), loaded into every fleet node.
name="fleetrules-$$"
rules=$(mktemp)
trap '"$dir/emulate-node" down --name "$name" >/dev/null 2>&1 || true; rm -f "$rules"' EXIT
"$dir/emulate-node" up --name "$name" --pods 3 --no-traffic --ttl-secs 300 >/dev/null
ip netns exec "ekd-emu-$name-node" iptables-nft-save > "$rules"
"$dir/emulate-node" down --name "$name" >/dev/null
echo "rules per node: $(grep -c '^-A' "$rules"); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

NODE_AGENT_BIN="$AGENT" EKD_DIAG="$(readlink -f "$dir/diag")" \
EKD_DIAG_FLEET="$(readlink -f "$dir/diag-fleet")" FLEET_BENCH_RULES="$rules" \
FLEET_BENCH_N="$SIZES" FLEET_BENCH_REPS="$REPS" FLEET_BENCH_LEGS="$LEGS" \
    cargo test -q --locked --workspace --test ssh_fleet bench_child -- --exact --ignored --nocapture 2>/dev/null \
    | grep '^BENCH'
