#!/usr/bin/env bash
# Peak RSS (VmHWM) of ferrolb-speaker in standalone mode while a large file (200 MB by
# default) is copied into its --config-dir. The size limits (--max-file-bytes, default
# 16 MiB) should make it a source error read from the file's metadata, not a parse.
#
# Usage: scripts/measure-config-rss.sh [SPEAKER_BINARY] [SIZE_MB]
# (default binary: target/debug/ferrolb-speaker; build it with `cargo build -p ferrolb-speaker`).
# Runs on loopback only (metrics on 127.0.0.1, gossip disabled); cleans up after itself.
set -euo pipefail

BIN=${1:-target/debug/ferrolb-speaker}
SIZE_MB=${2:-200}
[ -x "$BIN" ] || { echo "no speaker binary at $BIN (cargo build -p ferrolb-speaker)" >&2; exit 1; }

WORK=$(mktemp -d)
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir "$WORK/cfg"
cat > "$WORK/cfg/pool.yaml" <<'YAML'
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec: {addresses: [192.0.2.0/24]}
YAML

# A big but valid file: LoadBalancer Services, one document each.
python3 - "$WORK/big.yaml" "$SIZE_MB" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
doc = ("apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: default}}\n"
       "spec: {{type: LoadBalancer, ports: [{{port: 80, protocol: TCP}}]}}\n---\n")
with open(path, "w") as f:
    i, size = 0, 0
    while size < mb * 1000 * 1000:
        s = doc.format(i=i)
        f.write(s)
        size += len(s)
        i += 1
PY

hwm() { awk '/^VmHWM/ {print $2, $3}' "/proc/$PID/status"; }

"$BIN" --config-dir "$WORK/cfg" --node-name rss-probe --metrics-addr 127.0.0.1:0 \
    --memberlist-port 0 2> "$WORK/speaker.log" &
PID=$!
# Bounded wait for the first load to be logged.
for _ in $(seq 1 100); do
    grep -q "standalone mode" "$WORK/speaker.log" 2>/dev/null && break
    sleep 0.1
done
sleep 1
echo "before the copy: VmHWM $(hwm)"
cp "$WORK/big.yaml" "$WORK/cfg/big.yaml"
# Past the settle window (500 ms) and a check: the file is stable, then refused.
sleep 3
echo "after copying $(du -h "$WORK/big.yaml" | cut -f1) into --config-dir: VmHWM $(hwm)"
grep -m1 -o "big.yaml: [0-9]* bytes, more than the limit[^\"]*" "$WORK/speaker.log" \
    || { echo "no size-limit error logged; log:" >&2; tail -20 "$WORK/speaker.log" >&2; }
