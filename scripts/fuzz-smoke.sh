#!/usr/bin/env bash
# Bounded fuzz smoke for crates/bgp: runs each cargo-fuzz target for FUZZ_SECONDS (default 25)
# starting from the checked-in seed corpus. New inputs go to a scratch directory, so the
# checked-in corpus stays as crates/bgp/fuzz/gen_corpus.py wrote it; a crash fails the script
# and leaves its input in crates/bgp/fuzz/artifacts/<target>/, which
# crates/bgp/tests/fuzz_corpus.rs then replays (turn it into a named regression test).
#
# cargo-fuzz passes nightly-only rustc flags (-Zsanitizer); only a stable toolchain exists here,
# and RUSTC_BOOTSTRAP=1 lets stable rustc accept them. Installs cargo-fuzz when missing; skips
# (exit 0, loudly) if it cannot be installed or a target cannot be built.
# The bounded run itself is scripts/fuzz-run-targets.sh, shared by the three smokes.
set -euo pipefail
cd "$(dirname "$0")/../crates/bgp/fuzz"
seconds="${FUZZ_SECONDS:-25}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "::: installing cargo-fuzz"
    if ! cargo install --locked cargo-fuzz >/dev/null 2>&1; then
        echo "SKIPPED fuzz smoke (crates/bgp): cargo-fuzz could not be installed" >&2
        exit 0
    fi
fi

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz build >/dev/null 2>build.log; then
    echo "SKIPPED fuzz smoke (crates/bgp): fuzz targets do not build (see below)" >&2
    tail -20 build.log >&2
    rm -f build.log
    exit 0
fi
rm -f build.log

exec ../../../scripts/fuzz-run-targets.sh crates/bgp "$seconds" 70000 decode_message framing
