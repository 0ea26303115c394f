#!/usr/bin/env bash
# The test command named in README.md: installs test dependencies, then runs every test of the
# workspace (unit, property, golden, interop and end-to-end). Extra arguments go to nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo nextest run --workspace --no-fail-fast "$@"
cargo test --workspace --doc -q
