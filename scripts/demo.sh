#!/usr/bin/env bash
# Fresh Debian machine → build → a small emulated EKS fleet (each node: network namespaces with
# the VPC CNI's iptables, policy routing, IMDS/ipamd doubles and real SNATed traffic; two of
# them with injected faults) → `diag tui` on it, where a third fault appears while you watch
# → teardown. Without a terminal it prints `diag snat` for the fleet instead.
#   sudo ./scripts/demo.sh            (DEMO_NODES=N for another fleet size, 2..8)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

# The `demo` profile is the dev profile without debug info (no LTO, nothing optimised), and diag
# is built without the AWS SDK, so the first build is minutes instead of the release build's ~18.
# DEMO_PROFILE=dev reuses the binaries `cargo build` / `cargo test` already made.
profile="${DEMO_PROFILE:-demo}"
echo "==> building node-agent, the emulator and diag (profile $profile)"
start=$(date +%s)
cargo build --profile "$profile" --locked -p node-agent -p e2e --bins
# diag without the `aws` feature: the demo's fleet is local, and the AWS SDK (EC2 discovery,
# SSM) is about half of a cold build.
cargo build --profile "$profile" --locked -p diag --no-default-features --bin diag
echo "    built in $(( $(date +%s) - start )) s"

dir="$profile"; [ "$profile" = dev ] && dir=debug
bin="${CARGO_TARGET_DIR:-target}/$dir"
n="${DEMO_NODES:-4}"
if [ "$n" -lt 2 ] || [ "$n" -gt 8 ]; then n=4; fi
tag="d$$"
out="target/demo-fleet"
rm -rf "$out" && mkdir -p "$out/fleet"
names=()
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for nm in "${names[@]}"; do "$bin/emulate-node" down --name "$nm" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

echo "==> $n emulated nodes"
for i in $(seq 1 "$n"); do
    nm="$tag-$i"
    names+=("$nm")
    "$bin/emulate-node" up --name "$nm" --pods 3 --exclude-snat 10.10.0.0/16 >/dev/null
    echo "    ip-10-0-$i-10 = namespaces ekd-emu-$nm-*"
done
"$bin/emulate-node" fault --name "$tag-2" delete-snat-rule
echo "    fault on ip-10-0-2-10: the AWS SNAT rule is deleted"
if [ "$n" -ge 3 ]; then
    "$bin/emulate-node" fault --name "$tag-3" snat-to-source --addr 192.168.9.9
    echo "    fault on ip-10-0-3-10: SNAT --to-source is not the primary IP"
fi

# One snapshot per node, re-collected every 3 s (the emulated nodes share this machine's
# hostname, so each collection runs in its own UTS namespace with the node's name).
collect_once() {
    local i="$1" nm="$tag-$1" cfg="/tmp/ekd-emu-$tag-$1"
    local f="$out/fleet/ip-10-0-$i-10.json" tmp="$out/collect-$i.tmp"
    unshare --uts sh -c "hostname ip-10-0-$i-10 && exec ip netns exec ekd-emu-$nm-node \
        '$bin/node-agent' collect --imds-endpoint http://127.0.0.1:1338 \
        --ipamd-endpoint http://127.0.0.1:61679 --cni-env '$cfg/cni-env' \
        --cni-conf-dir '$cfg/net.d' --log-dir '$cfg/log'" > "$tmp" 2>/dev/null \
        && mv "$tmp" "$f"
}
for i in $(seq 1 "$n"); do collect_once "$i"; done
( while sleep 3; do for i in $(seq 1 "$n"); do collect_once "$i"; done; done ) &
pids+=("$!")

if [ -t 0 ] && [ -t 1 ]; then
    late="$n"
    ( sleep 20; "$bin/emulate-node" fault --name "$tag-$late" delete-eni-default-route >/dev/null 2>&1 ) &
    pids+=("$!")
    echo
    echo "==> diag tui --from $out/fleet --refresh 3s"
    echo "    Broken nodes are listed first. Enter opens a node (Tab: SNAT, Routing, Conntrack,"
    echo "    Logs), Esc goes back, / filters, f lists findings across the fleet, ? shows every key."
    echo "    About 20 s after it opens, the secondary ENI's default route is deleted on ip-10-0-$late-10:"
    echo "    watch its row turn red with a +1 mark. q quits (and tears the fleet down)."
    sleep 4
    "$bin/diag" tui --from "$out/fleet" --refresh 3s || true
else
    echo
    echo "==> no terminal: diag snat --from $out/fleet"
    "$bin/diag" snat --from "$out/fleet" || true
fi

echo
echo "==> tearing down the $n nodes"
