#!/usr/bin/env bash
# CPU and RSS of `node-agent serve` on an emulated EKS node (root).
#   ROUNDS (20) rounds at INTERVAL (1s); AGENT = the node-agent binary to measure (release);
#   BIN = where emulate-node and cni-doubles are (any profile: they only set the node up).
# CPU per round is (user+sys)/ROUNDS from GNU time; at a 30 s interval the average load is
# that divided by 30 s. RSS is sampled from /proc/<pid>/status after round 2 and at the end.
set -euo pipefail
ROUNDS=${ROUNDS:-20}
INTERVAL=${INTERVAL:-1s}
AGENT=${AGENT:-target/release/node-agent}
BIN=${BIN:-target/debug}
name="serve-$$"
ns="ekd-emu-$name-node"
work=$(mktemp -d)
trap '"$BIN/emulate-node" down --name "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
"$BIN/emulate-node" up --name "$name" --pods 2 --no-traffic --ttl-secs 900 >/dev/null
echo "node: $ns ($(nproc) cores, $(uname -r)), $ROUNDS rounds every $INTERVAL, agent $AGENT"
ip netns exec "$ns" /usr/bin/time -f "user %U s, sys %S s, elapsed %e s, max RSS %M kB" \
    "$AGENT" serve --interval "$INTERVAL" --jitter-pct 0 --rounds "$ROUNDS" \
    --state-dir "$work/state" --socket "$work/agent.sock" --no-imds 2> "$work/time.txt" &
sleep 3
pid=$(pgrep -n -f "$work/agent.sock" | head -1)
echo "RSS after ~2 rounds: $(grep VmRSS /proc/"$pid"/status)"
sleep $(( ROUNDS - 5 > 0 ? ROUNDS - 5 : 1 ))
echo "RSS near the end:    $(grep VmRSS /proc/"$pid"/status 2>/dev/null || echo gone)"
wait
tail -1 "$work/time.txt"
