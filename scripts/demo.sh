#!/usr/bin/env bash
# README's first command. Until the speaker demo lands, this decodes a few sample BGP messages
# with `ferrolb-bgp decode` to show the codec at work.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q --release -p ferrolb-bgp -- decode --reencode < crates/bgp/testdata/demo.hex
