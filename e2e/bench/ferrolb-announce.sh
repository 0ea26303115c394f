#!/usr/bin/env bash
# e2e/bench/ferrolb-announce.sh — `ferrolb-bgp announce` as a `cmd:` speaker of a netns
# convergence lab that provides the LAB_* environment (see scripts/bench-bgp.sh):
#   LAB_PREFIX_FILE LAB_LOCAL_ADDR LAB_PEER_ADDR LAB_LOCAL_AS LAB_PEER_AS LAB_ROUTER_ID LAB_AF
#   LAB_RUN_DIR. The PID goes to $LAB_RUN_DIR/ferrolb.pid so the withdraw command can send
#   SIGUSR1 (withdraw all, session kept):
#   WITHDRAW_CMD='kill -USR1 "$(cat "$LAB_RUN_DIR/ferrolb.pid")"'
set -euo pipefail
bin=${FERROLB_BGP:-$(dirname "$0")/../../target/release/ferrolb-bgp}
v6=()
[ "${LAB_AF:-4}" = 6 ] && v6=(--ipv6)
echo $$ > "$LAB_RUN_DIR/ferrolb.pid"
exec "$bin" announce --peer "$LAB_PEER_ADDR" --local-as "$LAB_LOCAL_AS" --peer-as "$LAB_PEER_AS" \
  --router-id "$LAB_ROUTER_ID" --local-address "$LAB_LOCAL_ADDR" "${v6[@]}" \
  --prefixes "$LAB_PREFIX_FILE"
