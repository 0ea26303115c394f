#!/usr/bin/env bash
# scripts/bench-wecmp.sh — the weighted-ECMP split measurement of docs/weighted-ecmp.md.
#
#   sudo scripts/bench-wecmp.sh            # prints the FIB weights and the splits
#
# Runs the end-to-end test e2e/tests/weighted_ecmp.rs, which builds the lab in network
# namespaces (two standalone speakers, FRR with multipath installing into its namespace's
# kernel, a client behind it; documentation addresses only, nothing links to the host), sends
# 10k one-datagram UDP flows from distinct source ports to the VIP for each case (FRR weighted
# 3:1, weighted 1:1, unweighted with 3 vs 1 endpoints, and 3:1 through an FRR route reflector
# with ADD-PATH), and counts what each node receives. The router hashes on ports
# (net.ipv4.fib_multipath_hash_policy=1). The test asserts each split within 5 points of its
# target; this script only prints the figures it measured.
set -euo pipefail

cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-wecmp: needs root (network namespaces)" >&2; exit 2; }
cargo build -q -p ferrolb-speaker
out=$(cargo test -q -p ferrolb-e2e --test weighted_ecmp -- --nocapture --test-threads 1 2>&1) || {
  echo "$out" >&2
  echo "bench-wecmp: the weighted_ecmp test failed" >&2
  exit 1
}
echo "$out" | grep -E "FIB next hops and weights|flows:" || {
  echo "$out" >&2
  echo "bench-wecmp: no figures (was the test skipped? it needs root, FRR and python3)" >&2
  exit 1
}
