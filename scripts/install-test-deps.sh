#!/usr/bin/env bash
# Installs everything the test suite needs on Debian (bookworm): the real routers the interop and
# end-to-end tests run against, tshark for the independent dissector check, and network tools.
# Idempotent: skips apt when everything is present. Needs root (tests that need root skip loudly
# without it).
set -euo pipefail

PKGS=(frr bird2 gobgpd exabgp iproute2 tshark arping ndisc6 iputils-ping tcpdump procps buildah prometheus)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-test-deps: missing ${missing[*]} and not root; tests needing them will skip" >&2
        exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install --locked cargo-nextest >/dev/null
fi
