#!/usr/bin/env bash
# Measurement, not a test: RSS of a release ferrolb-speaker announcing N VIPs (default 10000,
# one YAML file) to a loopback `ferrolb-bgp listen`, the time from start to the last route,
# and the file-to-route latency of one more Service added on top. Loopback only; cleans up.
# Diagnostics (env): MALLOC_STATS=1 glibc's malloc_stats via gdb; TRIM_PROBE=1 the RSS after an
# external malloc_trim(0) (how much is free memory glibc holds); SMAPS=1 the big mappings;
# HEAPTRACK=FILE runs the speaker under heaptrack, writing FILE.zst, and stops it with SIGINT
# once every route is announced (read it with `heaptrack_print --print-peaks 1 -f FILE.zst`).
#   cargo build --release -p ferrolb-speaker -p ferrolb-bgp && scripts/measure-speaker.sh [N]
set -euo pipefail
N=${1:-10000}
PORT=${PORT:-11790}
BIN=${BIN:-target/release}
W=$(mktemp -d)
cleanup() { kill "${SP:-}" "${LP:-}" 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$W/speaker.log" "$KEEP_LOG"; rm -rf "$W"; }
trap cleanup EXIT
mkdir "$W/cfg"
svc() { # svc I: one Service with its EndpointSlice; VIPs from 100.64.0.0/16
  local i=$1 ip="100.64.$((($1 + 1) / 256)).$((($1 + 1) % 256))"
  printf -- '---\napiVersion: v1\nkind: Service\nmetadata: {name: s%s, namespace: default}\nspec: {type: LoadBalancer, externalTrafficPolicy: Cluster, ports: [{port: 80}]}\nstatus: {loadBalancer: {ingress: [{ip: %s}]}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s%s-x, namespace: default, labels: {kubernetes.io/service-name: s%s}}\naddressType: IPv4\nendpoints: [{addresses: [10.0.0.1], nodeName: node-a, conditions: {ready: true}}]\n' "$i" "$ip" "$i" "$i"
}
cat > "$W/cfg/config.yaml" <<YAML
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: pool, namespace: metallb-system}
spec: {addresses: ["100.64.0.0/16"]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: router, namespace: metallb-system}
spec: {myASN: 64500, peerASN: 64512, peerAddress: 127.0.0.1, peerPort: $PORT, routerID: 10.255.0.2}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: adv, namespace: metallb-system}
spec: {ipAddressPools: [pool]}
YAML
for ((i = 0; i < N; i++)); do svc "$i"; done > "$W/services.yaml.tmp"
mv "$W/services.yaml.tmp" "$W/cfg/services.yaml"
"$BIN/ferrolb-bgp" listen --listen 127.0.0.1 --port "$PORT" --local-as 64512 \
  --router-id 10.255.0.1 > "$W/routes" 2>&1 &
LP=$!
sleep 0.3
now() { date +%s%N; }
t0=$(now)
env RUST_LOG=warn ${PRELOAD:+LD_PRELOAD=$PRELOAD} ${HEAPTRACK:+heaptrack -o "$HEAPTRACK"} \
  "$BIN/ferrolb-speaker" --config-dir "$W/cfg" --node-name node-a \
  --metrics-addr 127.0.0.1:0 2> "$W/speaker.log" &
SP=$!
if [ -n "${HEAPTRACK:-}" ]; then # the figures below are the speaker's, not heaptrack's shell's
  HT=$SP
  for ((t = 0; t < 200; t++)); do c=$(pgrep -P "$HT" -n || true); [ -n "$c" ] && break; sleep 0.05; done
  SP=${c:?heaptrack did not start the speaker}
fi
count() { grep -c '"event":"announce"' "$W/routes" || true; }
for ((t = 0; t < 1200; t++)); do [ "$(count)" -ge "$N" ] && break; sleep 0.05; done
t1=$(now)
echo "announced $(count)/$N routes $(((t1 - t0) / 1000000)) ms after start (load + reconcile + BGP)"
sleep 2
echo "RSS with $N announced: $(awk '/VmRSS/ {print $2, $3}' /proc/$SP/status); peak (VmHWM): $(awk '/VmHWM/ {print $2, $3}' /proc/$SP/status)"
if [ -n "${MALLOC_STATS:-}" ] && command -v gdb >/dev/null; then
  # glibc's own accounting: "in use bytes" is the live heap, "system bytes" what it holds.
  gdb -p "$SP" -batch -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || true
  echo "  glibc malloc_stats (total): $(grep -A3 '^Total' "$W/speaker.log" | tr '\n' ' ')"
fi
if [ -n "${TRIM_PROBE:-}" ] && command -v gdb >/dev/null; then
  gdb -p "$SP" -batch -ex 'call (int) malloc_trim(0)' >/dev/null 2>&1 || true
  echo "  after an external malloc_trim(0): $(awk '/VmRSS/ {print $2, $3}' /proc/$SP/status)"
fi
if [ -n "${SMAPS:-}" ]; then # the mappings holding more than 200 kB resident
  awk '/^[0-9a-f]+-[0-9a-f]+ / {name = $6; perm = $2} /^Rss:/ && $2 > 200 {print "   ", $2, "kB", perm, name}' "/proc/$SP/smaps"
fi
echo "  of which: $(awk '/^(Anonymous|Rss|Pss_File|Pss_Anon):/ {printf "%s %s kB; ", $1, $2}' /proc/$SP/smaps_rollup) threads $(awk '/Threads/ {print $2}' /proc/$SP/status)"
if [ -n "${HEAPTRACK:-}" ]; then # stop here: heaptrack writes its file as the speaker exits
  kill -INT "$SP"; wait "$HT" || true; exit 0
fi
# One more Service in its own file: file write -> route at the listener.
svc "$N" > "$W/extra.tmp"
want="100.64.$(((N + 1) / 256)).$(((N + 1) % 256))/32"
t0=$(now)
mv "$W/extra.tmp" "$W/cfg/extra.yaml"
for ((t = 0; t < 2000; t++)); do grep -q "\"$want\"" "$W/routes" && break; sleep 0.01; done
t1=$(now)
echo "one Service added on top of $N: file -> route $(((t1 - t0) / 1000000)) ms (inotify; 10 ms sampling)"
sleep 1
echo "RSS 1 s after that reload: $(awk '/VmRSS/ {print $2, $3}' /proc/$SP/status)"
