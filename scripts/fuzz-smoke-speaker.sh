#!/usr/bin/env bash
# Bounded fuzz smoke for the speaker's Layer 2 gossip (crates/speaker/src/l2/memberlist): runs
# each cargo-fuzz target for FUZZ_SECONDS (default 20) starting from the checked-in seed corpus.
#
#   gossip_open      arbitrary bytes -> l2::memberlist::auth::open, with the secret and without;
#                    never panics and accepts only what auth::seal writes.
#   gossip_datagram  a mode octet and up to 16 length-prefixed datagrams -> the receive path of
#                    the memberlist task on one speaker that already knows a peer: auth::open,
#                    foca's handle_data (PostcardCodec, MemberId, tuning::foca_config), then its
#                    timers on a virtual clock. The mode picks the secret and whether each
#                    datagram is sealed first, so fuzzed foca payloads get past the HMAC. Checks
#                    that every reply seals, opens back and fits the receive buffer, and that no
#                    active member ever has our address. Harness: crates/speaker/fuzz/src/lib.rs.
#
# New inputs go to a scratch directory, so the checked-in corpus stays as
# `cargo run --example gen_corpus` (in crates/speaker/fuzz) wrote it; a crash fails the script
# and leaves its input in crates/speaker/fuzz/artifacts/<target>/ (replay it with
# `cargo fuzz run <target> <file>`, then turn it into a named regression test in
# crates/speaker/tests/ when the bug is ours).
#
# The first build instruments ferrolb-speaker and all its dependencies (kube, k8s-openapi,
# rustls/ring) with ASan and coverage, one codegen unit per crate, into crates/speaker/fuzz/target
# (1.7 GB). Measured cold (`time cargo fuzz build`, empty target dir, 2-core machine shared with
# other builds, load 3-4.6): 16 min 57 s wall, 949 s user CPU. Later runs only relink.
# `cargo fuzz build --dev` (no optimisation) built cold in 7 min 36 s, but then runs
# gossip_datagram at 26 exec/s instead of ~420, so a 20 s smoke barely replays the corpus.
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer); only a stable toolchain is available
# here, and RUSTC_BOOTSTRAP=1 lets stable rustc accept them. Skips (exit 0, loudly) when
# cargo-fuzz is not installed: `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")/../crates/speaker/fuzz"
seconds="${FUZZ_SECONDS:-20}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "SKIPPED fuzz smoke (crates/speaker): cargo-fuzz is not installed" >&2
    exit 0
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

for target in gossip_open gossip_datagram; do
    echo "::: fuzz ${target} for ${seconds}s (crates/speaker)"
    mkdir -p "${scratch}/${target}"
    log="${scratch}/${target}.log"
    # libFuzzer's progress lines go to a log; on a crash its tail is shown.
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "${target}" "${scratch}/${target}" "corpus/${target}" -- \
        -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "FAILED fuzz ${target}: crashing input in crates/speaker/fuzz/artifacts/${target}/" >&2
        exit 1
    fi
    grep -E "^(Done|stat::number_of_executed_units)" "$log" || true
done
