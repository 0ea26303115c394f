#!/usr/bin/env bash
# Bounded fuzz smoke for the speakers' Layer 2 gossip (crates/gossip, the pure half of the
# speaker's l2::memberlist): runs each cargo-fuzz target for FUZZ_SECONDS (default 20) starting
# from the checked-in seed corpus. See docs/gossip.md.
#
#   gossip_open      arbitrary bytes -> ferrolb_gossip::auth::open, with the secret and without;
#                    never panics and accepts only what auth::seal writes.
#   gossip_datagram  a mode octet and up to 16 length-prefixed datagrams -> the receive path of
#                    the memberlist task on one speaker that already knows a peer: auth::open,
#                    foca's handle_data (ferrolb_gossip::Swim: PostcardCodec, MemberId,
#                    tuning::foca_config), then its timers on a virtual clock. The mode picks the
#                    secret and whether each datagram is sealed first, so fuzzed foca payloads
#                    get past the HMAC. Checks that every reply seals, opens back and fits the
#                    receive buffer, and that no active member ever has our address.
#                    Harness: crates/gossip/fuzz/src/lib.rs.
#
# New inputs go to a scratch directory, so the checked-in corpus stays as
# `cargo run --example gen_corpus` (in crates/gossip/fuzz) wrote it; a crash fails the script
# and leaves its input in crates/gossip/fuzz/artifacts/<target>/ (replay it with
# `cargo fuzz run <target> <file>`, then turn it into a named regression test in
# crates/gossip/tests/ when the bug is ours).
#
# The fuzz crate depends on ferrolb-gossip only (foca, postcard, hmac/sha2, serde; no kube,
# k8s-openapi or rustls), so the first, instrumented build is small. Measured on this 2-core
# machine shared with other builds (load 2.4-4.3), empty target dir: `time cargo fuzz build`
# 2 min 17 s wall (122 s user CPU, 294 MB target dir); this whole script with the default 20 s
# per target 2 min 55 s. Later runs only relink. (When the harness depended on all of ferrolb-speaker, the cold
# build took 16 min 57 s here.)
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer); only a stable toolchain is available
# here, and RUSTC_BOOTSTRAP=1 lets stable rustc accept them. Skips (exit 0, loudly) when
# cargo-fuzz is not installed: `cargo install cargo-fuzz`.
# The bounded run itself is scripts/fuzz-run-targets.sh, shared by the three smokes.
set -euo pipefail
cd "$(dirname "$0")/../crates/gossip/fuzz"
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "SKIPPED fuzz smoke (crates/gossip): cargo-fuzz is not installed" >&2
    exit 0
fi

exec ../../../scripts/fuzz-run-targets.sh crates/gossip "$seconds" 8192 gossip_open gossip_datagram
