#!/usr/bin/env bash
# Bounded fuzz smoke for crates/bfd: runs each cargo-fuzz target for FUZZ_SECONDS (default 20)
# starting from the checked-in seed corpus. See docs/bfd.md.
#
#   decode_packet  arbitrary bytes -> ferrolb_bfd::packet::decode; never panics, and what
#                  decodes re-encodes to the same packet.
#   session_step   bytes as a sequence of events (received packets, timers, profile changes,
#                  AdminDown/Up) -> ferrolb_bfd::session::step; every packet to send encodes,
#                  and the RFC 5880 §6.8.3 invariants hold after each step.
#                  Harness: crates/bfd/fuzz/checks.rs.
#
# New inputs go to a scratch directory, so the checked-in corpus stays as
# crates/bfd/fuzz/gen_corpus.py wrote it; a crash fails the script and leaves its input in
# crates/bfd/fuzz/artifacts/<target>/ (replay it with `cargo fuzz run <target> <file>`, then
# add it to the corpus, which crates/bfd/tests/fuzz_corpus.rs replays as a test).
#
# The fuzz crate depends on ferrolb-bfd without its `tool` feature (no CLI dependencies).
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer); only a stable toolchain is available
# here, and RUSTC_BOOTSTRAP=1 lets stable rustc accept them. Skips (exit 0, loudly) when
# cargo-fuzz is not installed: `cargo install cargo-fuzz` (scripts/fuzz-smoke.sh installs it).
# The bounded run itself is scripts/fuzz-run-targets.sh, shared by the smokes.
set -euo pipefail
cd "$(dirname "$0")/../crates/bfd/fuzz"
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "SKIPPED fuzz smoke (crates/bfd): cargo-fuzz is not installed" >&2
    exit 0
fi

exec ../../../scripts/fuzz-run-targets.sh crates/bfd "$seconds" 4096 decode_packet session_step
