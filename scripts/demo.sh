#!/usr/bin/env bash
# Fresh Debian machine → build → an emulated EKS worker node (network namespaces with the
# VPC CNI's iptables, policy routing and real SNATed traffic) → `node-agent collect` inside it
# → a human summary and the analysis → teardown. Run as root: sudo ./scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "==> building (release)"
cargo build --release --locked -p node-agent -p e2e -p diag

bin="${CARGO_TARGET_DIR:-target}/release"
name="demo-$$"
out=target/demo
mkdir -p "$out"
trap '"$bin/emulate-node" down --name "$name" >/dev/null 2>&1 || true' EXIT

echo "==> emulated node $name (3 pods, one on the secondary ENI; pings + TCP to the internet and a VPC peer)"
"$bin/emulate-node" up --name "$name" --pods 3 --exclude-snat 10.10.0.0/16 | sed 's/^/    /'
ns="ekd-emu-$name-node"
cfg="/tmp/ekd-emu-$name"
agent_args=(--imds-endpoint http://127.0.0.1:1338 --ipamd-endpoint http://127.0.0.1:61679
            --cni-env "$cfg/cni-env" --cni-conf-dir "$cfg/net.d" --log-dir "$cfg/log")

echo "==> node-agent collect (inside $ns)"
ip netns exec "$ns" "$bin/node-agent" collect --pretty "${agent_args[@]}" > "$out/snapshot.json"
echo "    snapshot: $out/snapshot.json ($(wc -c < "$out/snapshot.json") bytes)"
echo
"$bin/emulate-node" summary "$out/snapshot.json"

echo
echo "==> diag analyze (healthy node)"
"$bin/diag" analyze "$out/snapshot.json" || true

echo
echo "==> fault: delete the AWS SNAT rule, collect again, analyze"
"$bin/emulate-node" fault --name "$name" delete-snat-rule
ip netns exec "$ns" "$bin/node-agent" collect "${agent_args[@]}" > "$out/snapshot-no-snat.json"
"$bin/diag" analyze "$out/snapshot-no-snat.json" || true

echo
echo "==> tearing down $name"
