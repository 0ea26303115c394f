#!/usr/bin/env bash
# The bounded run shared by the fuzz smokes (scripts/fuzz-smoke*.sh): runs each cargo-fuzz
# target of the fuzz crate in the current directory for SECONDS from its checked-in seed corpus.
#
#   scripts/fuzz-run-targets.sh LABEL SECONDS MAX_LEN TARGET...
#
# LABEL names the crate in the output; MAX_LEN is libFuzzer's -max_len (empty: its default).
# New inputs go to a scratch directory, so the checked-in corpus stays as its generator wrote
# it. A crash fails the script with the tail of libFuzzer's log and leaves the input in
# artifacts/<target>/. RUSTC_BOOTSTRAP=1 lets the stable rustc accept cargo-fuzz's
# nightly-only flags (-Zsanitizer).
set -euo pipefail
label="$1" seconds="$2" max_len="$3"
shift 3
export RUSTC_BOOTSTRAP=1

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

for target in "$@"; do
    echo "::: fuzz ${target} for ${seconds}s (${label})"
    mkdir -p "${scratch}/${target}"
    log="${scratch}/${target}.log"
    # libFuzzer's progress lines go to a log; on a crash its tail is shown.
    if ! cargo fuzz run "${target}" "${scratch}/${target}" "corpus/${target}" -- \
        -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 \
        ${max_len:+-max_len="${max_len}"} -print_final_stats=1 >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "FAILED fuzz ${target}: crashing input in ${label}/fuzz/artifacts/${target}/" >&2
        exit 1
    fi
    grep -E "^(Done|stat::number_of_executed_units)" "$log" || true
done
