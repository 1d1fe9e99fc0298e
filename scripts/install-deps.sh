#!/usr/bin/env bash
# Install what eks-diag needs to build and to run its tests on Debian/Ubuntu (as root).
#   scripts/install-deps.sh          system packages, moto_server (pip) and a Rust toolchain
#   scripts/install-deps.sh --ci     the same (kept for .ci/run; CI and a newcomer get one set)
#
# Everything the whole test suite executes must be installed here:
# tests/tests/tools_installed.rs scans the sources for executed tools and fails when one of
# them is not covered by PKGS / PIP_PKGS below.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (sudo)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# Kernel-state tools the harness and the agent use (nftables: `nft` in the connmark
# scenarios), sshd for the fleet tests, pip for moto, python3-jsonschema for
# the report-schema test (diag/tests/contract.rs). One package per line (the test reads it).
PKGS=(
    build-essential
    pkg-config
    ca-certificates
    iptables
    nftables
    conntrack
    iproute2
    iputils-ping
    curl
    procps
    kmod
    time
    openssh-server
    openssh-client
    python3-pip
    python3-minimal
    python3-jsonschema
    tmux
)
# moto_server: the EC2/SSM double of fleet/tests/moto.rs. Always installed, so a newcomer's
# `cargo test` runs the moto tests instead of skipping them.
PIP_PKGS=('moto[server]' jsonschema)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# hyperfine is optional (benchmarks); not every release has it.
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null 2>&1 || true

# Rust: keep an existing toolchain; otherwise Debian's rustup (or cargo) package.
if ! command -v cargo >/dev/null; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null; then
    apt-get update -qq
    if apt-get install -y -qq rustup >/dev/null 2>&1; then
        rustup default stable
    else
        apt-get install -y -qq cargo rustc >/dev/null
    fi
fi

# conntrack accounting in the emulated nodes needs nf_conntrack (built in on some kernels).
modprobe nf_conntrack 2>/dev/null || true

if ! command -v moto_server >/dev/null || ! python3 -c "import jsonschema" 2>/dev/null; then
    python3 -m pip install -q "${PIP_PKGS[@]}" 2>/dev/null ||
        python3 -m pip install -q --break-system-packages "${PIP_PKGS[@]}"
fi
