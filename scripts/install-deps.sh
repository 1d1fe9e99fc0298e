#!/usr/bin/env bash
# Install what eks-diag needs to build and to run its tests on Debian/Ubuntu (as root).
#   scripts/install-deps.sh          system packages + a Rust toolchain
#   scripts/install-deps.sh --ci     also moto_server (fleet tests) via pip
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: run as root (sudo)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# Kernel-state tools the harness and the agent use, sshd for the fleet tests, pip for moto,
# python3-jsonschema for the report-schema test (diag/tests/contract.rs).
PKGS=(build-essential pkg-config ca-certificates iptables conntrack iproute2 iputils-ping
      curl procps kmod time openssh-server openssh-client python3-pip python3-jsonschema)
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

if [ "${1:-}" = "--ci" ]; then
    if ! command -v moto_server >/dev/null; then
        python3 -m pip install -q 'moto[server]' 2>/dev/null ||
            python3 -m pip install -q --break-system-packages 'moto[server]'
    fi
fi
