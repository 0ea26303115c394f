#!/usr/bin/env bash
# scripts/bench-bgp.sh — convergence benchmark of `ferrolb-bgp announce` against a BIRD2
# receiver in network namespaces, with GoBGP (gobgpd) and BIRD as reference announcers on the
# same workload in the same run.
#
#   sudo scripts/bench-bgp.sh [N ...]          # default: 1000 10000 100000
#   RUNS=3 SPEAKERS="ferrolb gobgp bird" sudo scripts/bench-bgp.sh 100000
#
# For each speaker and N: t0 = speaker start; est = t0 -> receiver Established; full = t0 ->
# receiver holds N routes; wd = withdraw-all issued -> receiver empty (ferrolb: SIGUSR1, the
# session stays; bird: `disable` of its static protocol; gobgp: `gobgp global rib del all`,
# the session stays); rss = speaker's peak RSS (VmHWM; for gobgp the gobgpd process, not the
# `gobgp` client that injects the routes).
# GoBGP gets its routes the fast way: `gobgp mrt inject global` of an MRT TABLE_DUMP_V2 file
# (RFC 6396 §4.3) generated here, one gRPC stream instead of one process per route. gobgp 3.10's
# inject can drop the last records of its stream, so the file ends with GOBGP_PAD IPv6 records
# that the IPv4-only session never advertises, and a missing tail is injected again (bounded).
# Prints one CSV line per run on stdout. Needs root, bird2, birdc, python3, ip,
# target/release/ferrolb-bgp (built if missing), and gobgpd + gobgp for the gobgp speaker.
#
# Isolation: two namespaces flbb-spk-<pid> / flbb-rtr-<pid> joined by a veth with documentation
# addresses (192.0.2.0/24); nothing links to the host; BIRD installs nothing in a kernel FIB.
# Everything started is stopped by PID and the namespaces are deleted on every exit path.
set -euo pipefail

cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-bgp: needs root (network namespaces)" >&2; exit 2; }
for p in bird birdc python3 ip; do
  command -v "$p" >/dev/null || { echo "bench-bgp: missing $p" >&2; exit 2; }
done
BIN=${FERROLB_BGP:-target/release/ferrolb-bgp}
[ -x "$BIN" ] || cargo build --release -p ferrolb-bgp --bin ferrolb-bgp >&2

RUNS=${RUNS:-1}
SPEAKERS=${SPEAKERS:-ferrolb gobgp bird}
GOBGP_PAD=${GOBGP_PAD:-2048}
case " $SPEAKERS " in
  *" gobgp "*)
    for p in gobgpd gobgp; do
      command -v "$p" >/dev/null || { echo "bench-bgp: missing $p (SPEAKERS=\"ferrolb bird\" skips GoBGP)" >&2; exit 2; }
    done ;;
esac
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1000 10000 100000)
TIMEOUT_S=${TIMEOUT_S:-180}

SPK=flbb-spk-$$
RTR=flbb-rtr-$$
WORK=$(mktemp -d /tmp/flbb.XXXXXX)
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true
  done
  sleep 0.2
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null || true
  done
  ip netns del "$SPK" 2>/dev/null || true
  ip netns del "$RTR" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

now_ms() { date +%s%3N; }

up() {
  ip netns add "$SPK"
  ip netns add "$RTR"
  ip -n "$SPK" link add eth0 type veth peer name eth0 netns "$RTR"
  ip -n "$SPK" addr add 192.0.2.1/24 dev eth0
  ip -n "$RTR" addr add 192.0.2.2/24 dev eth0
  for ns in "$SPK" "$RTR"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
  done
}

down() {
  ip netns del "$SPK" 2>/dev/null || true
  ip netns del "$RTR" 2>/dev/null || true
}

start_receiver() {
  cat > "$WORK/rcv.conf" <<EOF
router id 192.0.2.2;
protocol device { scan time 60; }
protocol bgp spk {
  local 192.0.2.2 as 64500; neighbor 192.0.2.1 as 64512;
  passive on;
  ipv4 { import all; export none; };
}
EOF
  ip netns exec "$RTR" bird -f -c "$WORK/rcv.conf" -s "$WORK/rcv.ctl" > "$WORK/rcv.log" 2>&1 &
  RCV_PID=$!
  PIDS+=("$RCV_PID")
  local i
  for i in $(seq 1 100); do
    birdc -s "$WORK/rcv.ctl" show status >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "bench-bgp: receiver did not start" >&2
  return 1
}

rcv_state() { birdc -s "$WORK/rcv.ctl" show protocols spk 2>/dev/null | awk '$1 == "spk" { print $6 }'; }
rcv_count() {
  birdc -s "$WORK/rcv.ctl" show route count 2>/dev/null |
    awk '/routes for/ { print $1; found = 1 } END { if (!found) print 0 }' | head -1
}

gen_prefixes() { # N -> file: 10.100.0.1/32 + i
  python3 - "$1" "$WORK/prefixes-$1.txt" <<'EOF'
import ipaddress, sys
n, path = int(sys.argv[1]), sys.argv[2]
base = int(ipaddress.IPv4Address("10.100.0.1"))
with open(path, "w") as f:
    for i in range(n):
        f.write(f"{ipaddress.IPv4Address(base + i)}/32\n")
EOF
}

gen_mrt() { # N -> file: the same /32s as an MRT TABLE_DUMP_V2 dump + GOBGP_PAD IPv6 records
  python3 - "$1" "$GOBGP_PAD" "$WORK/prefixes-$1.mrt" <<'EOF'
import ipaddress, struct, sys
n, pad, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
spk = ipaddress.IPv4Address("192.0.2.1")

def attr(flags, code, value):  # RFC 4271 §4.3 path attribute, one-octet length
    return struct.pack("!BBB", flags, code, len(value)) + value

def record(subtype, body):  # RFC 6396 §2: timestamp, type 13 TABLE_DUMP_V2, subtype, length
    return struct.pack("!IHHI", 0, 13, subtype, len(body)) + body

origin = attr(0x40, 1, b"\x00")  # IGP
as_path = attr(0x40, 2, b"")  # empty: gobgpd prepends its own AS towards the eBGP peer
v4_attrs = origin + as_path + attr(0x40, 3, spk.packed)
with open(path, "wb") as f:
    # §4.3.1 PEER_INDEX_TABLE: collector ID, empty view name, one peer (AS4, IPv4 address).
    peer = struct.pack("!B", 0x02) + spk.packed + spk.packed + struct.pack("!I", 64512)
    f.write(record(1, spk.packed + struct.pack("!HH", 0, 1) + peer))
    base = int(ipaddress.IPv4Address("10.100.0.1"))
    for i in range(n):
        # §4.3.2 RIB_IPV4_UNICAST: sequence, prefix, one RIB entry (peer 0, time 0, attrs).
        entry = struct.pack("!HIH", 0, 0, len(v4_attrs)) + v4_attrs
        body = struct.pack("!IB", i, 32) + ipaddress.IPv4Address(base + i).packed
        f.write(record(2, body + struct.pack("!H", 1) + entry))
    # RIB_IPV6_UNICAST padding; gobgp's MRT reader wants the full RFC 4760 MP_REACH_NLRI.
    nh = ipaddress.IPv6Address("fd00::1").packed
    base6 = int(ipaddress.IPv6Address("fd00:fe::1"))
    for i in range(pad):
        net = ipaddress.IPv6Address(base6 + i).packed
        mp = attr(0x80, 14, struct.pack("!HBB", 2, 1, 16) + nh + b"\x00" + b"\x80" + net)
        a = origin + as_path + mp
        entry = struct.pack("!HIH", 0, 0, len(a)) + a
        f.write(record(4, struct.pack("!IB", n + i, 128) + net + struct.pack("!H", 1) + entry))
EOF
}

gobgp_rib() { # IPv4 destinations in gobgpd's global RIB
  ip netns exec "$SPK" gobgp global rib summary -a ipv4 2>/dev/null |
    awk -F'[:, ]+' '/Destination/ { print $2; found = 1 } END { if (!found) print 0 }' | head -1
}

gobgp_inject() { # N: runs in the background; bounded waits and retries
  local n=$1 i k prev try=0
  for i in $(seq 1 500); do
    ip netns exec "$SPK" gobgp global >/dev/null 2>&1 && break
    sleep 0.02
  done
  ip netns exec "$SPK" gobgp mrt inject global "$WORK/prefixes-$n.mrt" >> "$WORK/inject.log" 2>&1
  while [ "$try" -lt 5 ]; do
    prev=-1
    k=$(gobgp_rib)
    for i in $(seq 1 20); do
      [ "$k" = "$prev" ] && break
      prev=$k
      sleep 0.1
      k=$(gobgp_rib)
    done
    [ "$k" -ge "$n" ] && break
    try=$((try + 1))
    echo "inject: $k of $n in gobgpd's RIB, injecting from record $k again (try $try)" >> "$WORK/inject.log"
    ip netns exec "$SPK" gobgp mrt inject global "$WORK/prefixes-$n.mrt" \
      $((n - k + GOBGP_PAD)) "$k" >> "$WORK/inject.log" 2>&1
  done
}

start_speaker() { # KIND N
  local kind=$1 n=$2
  case $kind in
    ferrolb)
      ip netns exec "$SPK" "$BIN" announce --peer 192.0.2.2 --local-as 64512 --peer-as 64500 \
        --router-id 192.0.2.1 --local-address 192.0.2.1 \
        --prefixes "$WORK/prefixes-$n.txt" 2> "$WORK/spk.log" &
      ;;
    bird)
      {
        echo "router id 192.0.2.1;"
        echo "protocol device { scan time 60; }"
        echo "protocol static bench { ipv4;"
        sed 's/.*/  route & blackhole;/' "$WORK/prefixes-$n.txt"
        echo "}"
        echo "protocol bgp rtr { local 192.0.2.1 as 64512; neighbor 192.0.2.2 as 64500;"
        echo "  connect delay time 0; ipv4 { import none; export where proto = \"bench\"; }; }"
      } > "$WORK/spk.conf"
      ip netns exec "$SPK" bird -f -c "$WORK/spk.conf" -s "$WORK/spk.ctl" > "$WORK/spk.log" 2>&1 &
      ;;
    gobgp)
      cat > "$WORK/gobgp.toml" <<EOF
[global.config]
  as = 64512
  router-id = "192.0.2.1"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "192.0.2.2"
    peer-as = 64500
  [neighbors.timers.config]
    connect-retry = 1
  [neighbors.transport.config]
    local-address = "192.0.2.1"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
EOF
      # The API listens on the speaker namespace's own loopback.
      ip netns exec "$SPK" gobgpd -f "$WORK/gobgp.toml" --api-hosts 127.0.0.1:50051 \
        > "$WORK/spk.log" 2>&1 &
      SPK_PID=$!
      PIDS+=("$SPK_PID")
      gobgp_inject "$n" &
      PIDS+=("$!")
      return 0
      ;;
    *) echo "bench-bgp: unknown speaker $kind" >&2; return 1 ;;
  esac
  SPK_PID=$!
  PIDS+=("$SPK_PID")
}

withdraw_all() { # KIND
  case $1 in
    ferrolb) kill -USR1 "$SPK_PID" ;;
    bird) birdc -s "$WORK/spk.ctl" disable bench >/dev/null ;;
    gobgp) ip netns exec "$SPK" gobgp global rib -a ipv4 del all >/dev/null ;;
  esac
}

hwm_kb() { awk '/VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

one_run() { # KIND N
  local kind=$1 n=$2 t0 est="" full="" wd="" deadline rss t1
  up
  start_receiver
  t0=$(now_ms)
  start_speaker "$kind" "$n"
  deadline=$((t0 + TIMEOUT_S * 1000))
  # Every loop below is bounded by the deadline.
  while [ "$(now_ms)" -lt "$deadline" ]; do
    if [ -z "$est" ] && [ "$(rcv_state)" = Established ]; then est=$(($(now_ms) - t0)); fi
    if [ -n "$est" ] && [ "$(rcv_count)" -ge "$n" ]; then full=$(($(now_ms) - t0)); break; fi
    sleep 0.02
  done
  rss=$(hwm_kb "$SPK_PID")
  if [ -n "$full" ]; then
    t1=$(now_ms)
    withdraw_all "$kind"
    deadline=$((t1 + TIMEOUT_S * 1000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
      if [ "$(rcv_count)" -eq 0 ]; then wd=$(($(now_ms) - t1)); break; fi
      sleep 0.02
    done
    rss=$(hwm_kb "$SPK_PID")
  fi
  echo "$(date -u +%FT%TZ),$kind,$n,${est:-timeout},${full:-timeout},${wd:-timeout},$rss"
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  down
}

echo "date,speaker,n,est_ms,full_ms,withdraw_ms,peak_rss_kb"
for n in "${SIZES[@]}"; do
  gen_prefixes "$n"
  case " $SPEAKERS " in *" gobgp "*) gen_mrt "$n" ;; esac
  for r in $(seq 1 "$RUNS"); do
    for s in $SPEAKERS; do
      one_run "$s" "$n"
    done
  done
done
