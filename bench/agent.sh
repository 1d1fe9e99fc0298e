#!/usr/bin/env bash
# Agent benchmark: `node-agent collect` on an emulated EKS node carrying a kube-proxy-style
# ruleset of RULES iptables rules and ~FLOWS conntrack entries, against `iptables-save -c;
# conntrack -L` alone, plus the agent's peak RSS. Run as root after
#   cargo build --release --locked -p node-agent -p e2e
# Results go to stdout; copy them into bench/README.md ("Agent").
set -euo pipefail
cd "$(dirname "$0")/.."

RULES=${RULES:-100000}
FLOWS=${FLOWS:-200000}
RUNS=${RUNS:-5}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
name="bench-$$"
ns="ekd-emu-$name-node"
cfg="/tmp/ekd-emu-$name"
work=$(mktemp -d)
trap '"$BIN/emulate-node" down --name "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

for b in node-agent emulate-node cni-doubles; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: cargo build --release -p node-agent -p e2e" >&2; exit 1; }
done

"$BIN/emulate-node" up --name "$name" --pods 2 --no-traffic --ttl-secs 1800 >/dev/null
echo "node: $ns ($(nproc) cores, $(uname -r))"

# kube-proxy-style nat rules: per service a KUBE-SERVICES match, a KUBE-SVC -> KUBE-SEP jump,
# and the endpoint's masquerade mark and DNAT (4 rules per service).
services=$((RULES / 4))
awk -v n="$services" 'BEGIN {
    print "*nat"
    for (i = 0; i < n; i++) {
        printf ":KUBE-SVC-%016X - [0:0]\n:KUBE-SEP-%016X - [0:0]\n", i, i
    }
    for (i = 0; i < n; i++) {
        ip = sprintf("172.20.%d.%d", int(i / 250) % 250, i % 250 + 1)
        ep = sprintf("10.%d.%d.%d", int(i / 62500) % 250, int(i / 250) % 250, i % 250 + 1)
        printf "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"ns%d/svc%d:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-%016X\n", ip, i % 50, i, i
        printf "-A KUBE-SVC-%016X -m comment --comment \"ns%d/svc%d:http -> %s:8080\" -j KUBE-SEP-%016X\n", i, i % 50, i, ep, i
        printf "-A KUBE-SEP-%016X -s %s/32 -m comment --comment \"ns%d/svc%d:http\" -j KUBE-MARK-MASQ\n", i, ep, i % 50, i
        printf "-A KUBE-SEP-%016X -p tcp -m comment --comment \"ns%d/svc%d:http\" -m tcp -j DNAT --to-destination %s:8080\n", i, i % 50, i, ep
    }
    print "COMMIT"
}' > "$work/rules.txt"
start=$(date +%s%N)
ip netns exec "$ns" iptables-nft-restore --noflush < "$work/rules.txt"
echo "loaded $((services * 4)) kube-proxy rules in $(( ($(date +%s%N) - start) / 1000000 )) ms"

# ~FLOWS UDP flows from a pod to the internet host (SNATed, unreplied; udp timeout is 3600 s
# in the emulated node), FLOWS/4 ports from each of 4 sockets.
per=$(( (FLOWS + 3) / 4 ))
[ "$per" -le 65000 ] || { echo "FLOWS too large (max 260000)" >&2; exit 1; }
ip netns exec "ekd-emu-$name-pod0" "$BIN/cni-doubles" udp-flood --addr 203.0.113.10 \
    --ports "1-$per" --sockets 4 >/dev/null
echo "conntrack entries: $(ip netns exec "$ns" cat /proc/sys/net/netfilter/nf_conntrack_count)"

agent=(ip netns exec "$ns" "$BIN/node-agent" collect --timeout 120s
       --imds-endpoint http://127.0.0.1:1338 --cni-env "$cfg/cni-env"
       --cni-conf-dir "$cfg/net.d" --log-dir "$cfg/log")
"${agent[@]}" > "$work/snap.json"
"$BIN/emulate-node" summary "$work/snap.json" | sed -n '/^sections/,/^SNAT/p'
echo "snapshot: $(stat -c %s "$work/snap.json") bytes"
[ -z "${KEEP_SNAPSHOT:-}" ] || cp "$work/snap.json" "$KEEP_SNAPSHOT"

baseline="ip netns exec $ns sh -c 'iptables-nft-save -c >/dev/null; iptables-legacy-save -c >/dev/null; conntrack -L >/dev/null 2>&1'"
if command -v hyperfine >/dev/null; then
    hyperfine -N --style basic --warmup 1 --runs "$RUNS" \
        -n "node-agent collect" "${agent[*]} --conntrack-sample 200" \
        -n "iptables-save -c (both) + conntrack -L" "$baseline" \
        --export-markdown "$work/hyperfine.md" >/dev/null
    cat "$work/hyperfine.md"
else
    for i in $(seq "$RUNS"); do /usr/bin/time -f "node-agent collect %e s" "${agent[@]}" >/dev/null; done
    for i in $(seq "$RUNS"); do /usr/bin/time -f "baseline %e s" sh -c "$baseline"; done
fi

# Peak RSS: ru_maxrss of the agent's own process (time wraps the agent inside the namespace;
# its children, iptables-*-save, are counted only if one of them is larger).
ip netns exec "$ns" /usr/bin/time -v "$BIN/node-agent" collect --timeout 120s \
    --imds-endpoint http://127.0.0.1:1338 --cni-env "$cfg/cni-env" \
    --cni-conf-dir "$cfg/net.d" --log-dir "$cfg/log" 2> "$work/time.txt" >/dev/null
grep -E "Maximum resident|Elapsed" "$work/time.txt"
# GNU time reports the largest of the agent and its children; measure the biggest child alone
# so the agent's own share can be told apart.
ip netns exec "$ns" /usr/bin/time -f "iptables-nft-save -c alone: maximum resident set size %M kB" \
    iptables-nft-save -c 2>&1 >/dev/null | tail -1
# The agent's own peak (VmHWM of its process, children not included), as it reports it.
ip netns exec "$ns" env NODE_AGENT_REPORT_PEAK_RSS=1 "$BIN/node-agent" collect --timeout 120s \
    --imds-endpoint http://127.0.0.1:1338 --cni-env "$cfg/cni-env" \
    --cni-conf-dir "$cfg/net.d" --log-dir "$cfg/log" 2>&1 >/dev/null | grep "own peak RSS"
ip netns exec "$ns" /usr/bin/time -f "node-agent collect --sections iptables: maximum resident set size %M kB" \
    "$BIN/node-agent" collect --sections iptables --timeout 120s 2>&1 >/dev/null | tail -1
ip netns exec "$ns" /usr/bin/time -f "node-agent collect --sections conntrack: maximum resident set size %M kB" \
    "$BIN/node-agent" collect --sections conntrack --timeout 120s 2>&1 >/dev/null | tail -1
