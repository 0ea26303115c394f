#!/usr/bin/env bash
# README's first command: FerroLB end to end in one process, no root, no cluster.
# A BGP listener on 127.0.0.1 plays the router; the controller's allocator gives three demo
# Services IPs from a demo pool; the speaker announces them (prefix, next hop, communities are
# printed as the listener receives them), then one Service is deleted and its withdraw shown.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run -q --release -p ferrolb-speaker -- demo
