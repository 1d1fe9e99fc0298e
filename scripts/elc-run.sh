#!/usr/bin/env bash
# Run AWS's real eks-log-collector.sh inside an emulated node's network namespace and keep the
# archive it writes.
#
#   ELC_SCRIPT=/path/to/eks-log-collector.sh scripts/elc-run.sh <node-name> <out-dir>
#
# <node-name> is a node started with `emulate-node up --name <node-name>` (namespaces
# ekd-emu-<name>-*, work dir $TMPDIR/ekd-emu-<name>/ with node.json, log/, net.d/). The script
# is NOT part of this repository: take it from awslabs/amazon-eks-ami
# (log-collector-script/linux/eks-log-collector.sh) and pass its path in ELC_SCRIPT.
#
# What the collector sees, and why:
# * `ip netns exec <node ns>`: every `ip`, `iptables`, `conntrack`, `ifconfig`, `sysctl` and
#   curl to localhost:61679 runs against the emulated node's kernel state and its ipamd double.
# * `unshare --mount` (private): tmpfs over /var/log (the archive goes there, and the node's
#   CNI logs are bind-mounted at /var/log/aws-routed-eni) and over /tmp (its COLLECT_DIR
#   /tmp/eks-log-collector), and /etc overlaid with a tmpfs upper layer holding
#   /etc/cni/net.d/10-aws.conflist: nothing of the host's logs, /tmp or /etc changes or leaks
#   into the archive.
# * IMDS: 169.254.169.254:80 inside the node namespace is a forwarder to the node's IMDSv2
#   double, so instance id, region and AZ come from "IMDS" as on EC2. ipamd's metrics port
#   61678 serves a Prometheus text stand-in (the ipamd double has no /metrics).
# * Stand-ins first on PATH: `ping` (no internet from the namespace: prints what ping prints
#   without name resolution, exits 2) and `docker` (this build machine has /usr/local/bin/docker;
#   the stand-in exits 1 like a docker CLI without a daemon). The script refuses to run when a
#   docker/containerd socket is reachable or a dockerd/containerd/kubelet process runs.
set -euo pipefail

die() { echo "elc-run: $*" >&2; exit 2; }

[[ $# -eq 2 ]] || die "usage: ELC_SCRIPT=/path/to/eks-log-collector.sh $0 <node-name> <out-dir>"
name=$1
out=$2
[[ -n "${ELC_SCRIPT:-}" && -f "${ELC_SCRIPT}" ]] || die "set ELC_SCRIPT to a local copy of eks-log-collector.sh"
[[ "$(id -u)" -eq 0 ]] || die "needs root (network and mount namespaces)"
for s in /var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock /var/run/containerd/containerd.sock; do
  [[ -e "$s" ]] && die "$s exists: a container runtime is reachable; run this only where none is"
done
for p in dockerd containerd kubelet; do
  pgrep -x "$p" > /dev/null && die "a $p process runs here; run this only where none does"
done

tmp=${TMPDIR:-/tmp}
work="$tmp/ekd-emu-$name"
ns="ekd-emu-$name-node"
[[ -f "$work/node.json" ]] || die "no emulated node named $name ($work/node.json missing)"
ip netns list | grep -qw "$ns" || die "namespace $ns missing"
imds_port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["imds_port"])' "$work/node.json")

run="$work/elc-run"
rm -rf "$run"
mkdir -p "$run/bin" "$run/out" "$run/metrics"
cp "$ELC_SCRIPT" "$run/eks-log-collector.sh"
cp "$work/net.d/10-aws.conflist" "$run/10-aws.conflist"

cat > "$run/bin/ping" <<'EOF'
#!/bin/sh
# Stand-in: the emulated node has no internet and no name resolution.
for a in "$@"; do host=$a; done
echo "ping: ${host}: Temporary failure in name resolution" >&2
exit 2
EOF
cat > "$run/bin/docker" <<'EOF'
#!/bin/sh
# Stand-in: no docker daemon here.
echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?" >&2
exit 1
EOF
chmod +x "$run/bin/ping" "$run/bin/docker"

# ipamd /metrics stand-in: metric names from aws/amazon-vpc-cni-k8s (pkg/ipamd, pkg/version
# `awscni_build_info`), values from the node's config (3 pods on 7 addresses by default).
python3 - "$work/node.json" > "$run/metrics/metrics" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
pods = [p for p in c["pods"] if not p.get("branch")]
total = sum(len(e.get("free_ips", [])) + 16 * len(e.get("prefixes", [])) for e in c["enis"])
total += sum(1 for p in pods if not c["enis"][0].get("prefixes") and not p.get("ipv6"))
print("# HELP awscni_assigned_ip_addresses The number of IP addresses assigned to pods")
print("# TYPE awscni_assigned_ip_addresses gauge")
print(f"awscni_assigned_ip_addresses {len(pods)}")
print("# HELP awscni_build_info A metric with a constant '1' value labeled by version, revision, and goversion from which amazon-vpc-cni-k8s was built.")
print("# TYPE awscni_build_info gauge")
print('awscni_build_info{goversion="go1.24.6",version="v1.21.2"} 1')
print("# HELP awscni_eni_allocated The number of ENIs allocated")
print("# TYPE awscni_eni_allocated gauge")
print(f"awscni_eni_allocated {len(c['enis'])}")
print("# HELP awscni_total_ip_addresses The total number of IP addresses")
print("# TYPE awscni_total_ip_addresses gauge")
print(f"awscni_total_ip_addresses {total}")
EOF

# IMDS forwarder (169.254.169.254:80 → 127.0.0.1:<imds_port>) and the metrics server, one
# process inside the node namespace, bounded to 300 s.
cat > "$run/servers.py" <<'EOF'
import http.client, http.server, sys, threading, time
imds_port, metrics_dir = int(sys.argv[1]), sys.argv[2]
class Fwd(http.server.BaseHTTPRequestHandler):
    def fwd(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        c = http.client.HTTPConnection("127.0.0.1", imds_port, timeout=5)
        hdrs = {k: v for k, v in self.headers.items() if k.lower().startswith("x-aws-ec2")}
        c.request(self.command, self.path, body=body, headers=hdrs)
        r = c.getresponse(); data = r.read()
        self.send_response(r.status); self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)
    do_GET = do_PUT = fwd
    def log_message(self, *a): pass
class Metrics(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k): super().__init__(*a, directory=metrics_dir, **k)
    def log_message(self, *a): pass
for srv in (http.server.ThreadingHTTPServer(("169.254.169.254", 80), Fwd),
            http.server.ThreadingHTTPServer(("127.0.0.1", 61678), Metrics)):
    threading.Thread(target=srv.serve_forever, daemon=True).start()
print("ready", flush=True)
time.sleep(300)
EOF

ip -n "$ns" addr add 169.254.169.254/32 dev lo
cleanup() {
  [[ -n "${srv_pid:-}" ]] && kill "$srv_pid" 2> /dev/null || true
  ip -n "$ns" addr del 169.254.169.254/32 dev lo 2> /dev/null || true
}
trap cleanup EXIT
ip netns exec "$ns" python3 "$run/servers.py" "$imds_port" "$run/metrics" > "$run/servers.log" 2>&1 &
srv_pid=$!
for _ in $(seq 50); do grep -q ready "$run/servers.log" 2> /dev/null && break; sleep 0.1; done
grep -q ready "$run/servers.log" || die "IMDS/metrics servers did not start: $(cat "$run/servers.log")"

ip netns exec "$ns" unshare --mount --propagation private bash -s "$work" "$run" <<'EOF'
set -euo pipefail
work=$1 run=$2
mount --bind "$work" /mnt
mount -t tmpfs elc-varlog /var/log
mkdir -p /var/log/aws-routed-eni
mount --bind /mnt/log /var/log/aws-routed-eni
mkdir -p /run/elc-etc
mount -t tmpfs elc-etc /run/elc-etc
mkdir -p /run/elc-etc/upper /run/elc-etc/work
mount -t overlay elc-etc-overlay -o lowerdir=/etc,upperdir=/run/elc-etc/upper,workdir=/run/elc-etc/work /etc
mkdir -p /etc/cni/net.d
cp /mnt/elc-run/10-aws.conflist /etc/cni/net.d/
mount -t tmpfs elc-tmp /tmp
export PATH=/mnt/elc-run/bin:$PATH
cd /
timeout 600 bash /mnt/elc-run/eks-log-collector.sh > /mnt/elc-run/collector.log 2>&1 || echo "collector exited $?" >> /mnt/elc-run/collector.log
cp /var/log/eks_*.tar.gz /mnt/elc-run/out/
EOF

# The raw archive also holds what the collector reads of the BUILD MACHINE, not of the node
# (ps, /proc/*/environ sizes, dmesg, mounts, packages, services, resolv.conf, ...). The fixture
# copy keeps, byte for byte and in the collector's member order, only the node's state:
# networking/ (minus resolv.conf and the host's systemd-network examples), ipamd/, sysctls/
# (read inside the node namespace), cni/, var_log/aws-routed-eni/ and the IMDS-derived
# system/{instance-id,region,availability-zone}.txt and system/script-params.txt.
mkdir -p "$out/raw"
raw=$(ls "$run"/out/eks_*.tar.gz)
cp "$raw" "$out/raw/"
cp "$run/collector.log" "$out/raw/collector.log"
keep='^\./$|^\./(networking|ipamd|sysctls|cni|var_log|var_log/aws-routed-eni|system)/$|^\./networking/[^/]+\.txt$|^\./(ipamd|sysctls|cni|var_log/aws-routed-eni)/[^/]+$|^\./system/(instance-id|region|availability-zone|script-params)\.txt$'
tar tzf "$raw" | grep -E "$keep" | grep -v '^\./networking/resolv\.conf$' > "$run/keep.list"
rm -rf "$run/x" && mkdir -p "$run/x"
tar xzf "$raw" -C "$run/x"
tar --create --gzip --no-recursion --file "$out/$(basename "$raw")" --directory="$run/x" --files-from="$run/keep.list"
ls -R "$out"
