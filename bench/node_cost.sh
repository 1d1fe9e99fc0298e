#!/usr/bin/env bash
# Per-node cost: `node-agent collect` against the seven raw commands people run by hand on a
# node, on ONE emulated normal EKS node (`emulate-node up`: VPC CNI chains and rules in the
# backend the harness uses, per-ENI route tables, policy rules, IMDS/ipamd doubles, a little
# SNATed traffic). Run as root after
#   cargo build --release --locked -p node-agent -p e2e --bins
#
# CPU-seconds: GNU time (user + sys) of `sh -c 'for i in 1..R; do CMD; done'` run inside the
# node's namespace: getrusage(RUSAGE_CHILDREN) of the shell, i.e. the command AND every child
# it waited for (iptables-*-save, conntrack, grep, ...), divided by R. The loop itself costs
# nothing measurable (the `true` row). Wall: hyperfine -N inside the namespace, every command
# (the agent too) as `sh -c 'CMD >/dev/null 2>&1'`, so each pays the same one shell.
#
# The seven raw commands (the field notes in /work/shared/seeds/001_*.txt, lines 211-264 and
# 374-428, and 003_*.txt, lines 76-115: `ip -c addr`, `ip -c route`, `ip rule`,
# `ip route show table ...`, `iptables -t nat -S` / `-L -n -v`, `conntrack -L -n`,
# `cat /var/log/aws-routed-eni/*.log`; sysctls are what the agent reads):
#   1 ip addr   2 ip route show table all   3 ip rule   4 iptables-nft-save -c; iptables-legacy-save -c
#   5 conntrack -L   6 sysctl -a | grep <the agent's keys>   7 cat <CNI log dir>/*
#
# Env: R (runs, default 30), PODS (default 3), BACKEND (nft|legacy, default nft), BIN
# (default target/release), AGENT (default $BIN/node-agent: compare two builds with AGENT=...).
set -euo pipefail
cd "$(dirname "$0")/.."

R=${R:-30}
PODS=${PODS:-3}
BACKEND=${BACKEND:-nft}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
AGENT=${AGENT:-$BIN/node-agent}
AGENT=$(readlink -f "$AGENT")
name="cost-$$"
ns="ekd-emu-$name-node"
cfg="/tmp/ekd-emu-$name"
work=$(mktemp -d)
trap '"$BIN/emulate-node" down --name "$name" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

for b in emulate-node; do
    [ -x "$BIN/$b" ] || { echo "missing $BIN/$b: cargo build --release -p node-agent -p e2e --bins" >&2; exit 1; }
done
[ -x "$AGENT" ] || { echo "missing agent $AGENT" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine not installed (apt-get install hyperfine)" >&2; exit 1; }

"$BIN/emulate-node" up --name "$name" --pods "$PODS" --backend "$BACKEND" --ttl-secs 900 >/dev/null
echo "node: $ns, $PODS pods, $BACKEND backend; $(nproc) cores, $(uname -r); load: $(cut -d' ' -f1-3 /proc/loadavg)"

agent="$AGENT collect --imds-endpoint http://127.0.0.1:1338 --cni-env $cfg/cni-env --cni-conf-dir $cfg/net.d --log-dir $cfg/log"
keys='ip_forward|tcp_early_demux|nf_conntrack_max|nf_conntrack_count|conf\.all\.forwarding|disable_ipv6|ip_local_port_range|ip_local_reserved_ports|rp_filter'
declare -a names cmds
names+=("node-agent collect");            cmds+=("$agent")
names+=("seven raw commands");             cmds+=("ip addr; ip route show table all; ip rule; iptables-nft-save -c; iptables-legacy-save -c; conntrack -L; sysctl -a 2>/dev/null | grep -E '$keys'; cat $cfg/log/*")
names+=("1 ip addr");                     cmds+=("ip addr")
names+=("2 ip route show table all");     cmds+=("ip route show table all")
names+=("3 ip rule");                     cmds+=("ip rule")
names+=("4 iptables-save -c (nft+legacy)"); cmds+=("iptables-nft-save -c; iptables-legacy-save -c")
names+=("5 conntrack -L");                cmds+=("conntrack -L")
names+=("6 sysctl -a | grep");            cmds+=("sysctl -a 2>/dev/null | grep -E '$keys'")
names+=("7 cat CNI logs");                cmds+=("cat $cfg/log/*")
# The agent one section group at a time, each against its raw counterpart above.
names+=("agent --sections links,addresses,neighbours,routes,rules (vs 1-3)"); cmds+=("$agent --sections links,addresses,neighbours,routes,rules")
names+=("agent --sections iptables (vs 4)"); cmds+=("$agent --sections iptables")
names+=("agent --sections conntrack (vs 5)"); cmds+=("$agent --sections conntrack")
names+=("agent --sections sysctls (vs 6)"); cmds+=("$agent --sections sysctls")
names+=("agent --sections cni_logs (vs 7)"); cmds+=("$agent --sections cni_logs")
names+=("agent --sections node,cni (IMDS, ipamd: no raw counterpart)"); cmds+=("$agent --sections node,cni")
names+=("(loop floor: true)");            cmds+=("true")

"$AGENT" --version >/dev/null
ip netns exec "$ns" sh -c "$agent" > "$work/snap.json"
echo "snapshot: $(wc -c < "$work/snap.json") bytes; section durations (ms, from the snapshot):"
python3 - "$work/snap.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
parts = []
for k, v in s.items():
    if isinstance(v, dict) and "status" in v:
        parts.append(f"{k}={v.get('duration_ms')}:{v['status']}")
print("  total", s.get("duration_ms"), "ms;", " ".join(parts))
EOF
echo "raw text of the seven commands: $(ip netns exec "$ns" sh -c "${cmds[1]}" 2>/dev/null | wc -c) bytes"

echo
echo "| command | CPU user+sys per run (ms) | wall mean ± σ (ms) |"
echo "|---|---|---|"
for i in "${!names[@]}"; do
    c=${cmds[$i]}
    ip netns exec "$ns" /usr/bin/time -f "%U %S" -o "$work/time" \
        sh -c "for i in \$(seq $R); do $c; done >/dev/null 2>&1"
    cpu=$(awk -v r="$R" '{ printf "%.2f (%.2f + %.2f)", ($1 + $2) * 1000 / r, $1 * 1000 / r, $2 * 1000 / r }' "$work/time")
    if [ "$c" = true ]; then
        wall="–"
    else
        ip netns exec "$ns" hyperfine -N --style none --warmup 2 --runs "$R" \
            --export-json "$work/h.json" "sh -c \"$c >/dev/null 2>&1\"" >/dev/null 2>&1
        wall=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(f\"{r['mean']*1000:.2f} ± {r['stddev']*1000:.2f}\")" "$work/h.json")
    fi
    echo "| ${names[$i]} | $cpu | $wall |"
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
