#!/usr/bin/env python3
"""scripts/bench-bfd.py -- failure detection with BFD: how long a frozen node's VIP stays in
the router's FIB, for our speaker and, in the same run, for FRR as the announcing node.

    sudo scripts/bench-bfd.py              # RUNS=5 by default
    RUNS=10 HOLD_RUN=0 sudo scripts/bench-bfd.py

Topology (three network namespaces, documentation addresses, nothing linked to the host):

    ns ours  ferrolb-speaker AS 64500 ---- eth0 192.0.2.0/24 ----+
                                                                   ns rtr  FRR zebra + bfdd + bgpd
    ns frr   FRR zebra + bfdd + bgpd AS 64501 -- eth1 192.0.3.0/24-+  AS 65000, installs the VIPs
                                                                       in its (namespace's) FIB

Both nodes peer with the router over eBGP with hold time 90 s and BFD profile 50 ms x 3 on both
ends. Ours announces 198.51.100.10/32 (a Service in its config directory), the FRR node
announces 198.51.100.20/32 (`network`). Per run and node: t0 = SIGSTOP of the node (ours: the
speaker process; FRR node: its bfdd and bgpd), t1 = first poll of the router's kernel FIB
(`ip -n rtr route show exact VIP`, a few ms per poll) without the VIP; printed: t1 - t0 and the
poll's own duration (the resolution). Then SIGCONT, and the next run waits until both VIPs are
back. A last run (HOLD_RUN=1, default) measures the hold timer alone: our BGPPeer is rewritten
without bfdProfile and with holdTime 9s (the router keeps 90 s; the smaller is negotiated), and
the same freeze is timed.

Prints one CSV line per measurement: run,node,mechanism,seconds,resolution_ms. Needs root, FRR
(/usr/lib/frr/{zebra,bfdd,bgpd}), ip, and the speaker binary (FERROLB_SPEAKER, default
target/debug/ferrolb-speaker; built if missing). Everything started is stopped by PID and the
namespaces are deleted on every exit path.
"""

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

RUNS = int(os.environ.get("RUNS", "5"))
HOLD_RUN = os.environ.get("HOLD_RUN", "1") == "1"
BIN = os.environ.get("FERROLB_SPEAKER", "target/debug/ferrolb-speaker")
FRR = "/usr/lib/frr"
TAG = f"flbbfd{os.getpid()}"
RTR, OURS, FRRN = f"{TAG}-rtr", f"{TAG}-ours", f"{TAG}-frr"
VIP_OURS, VIP_FRR = "198.51.100.10/32", "198.51.100.20/32"
# Every wait is bounded.
UP_LIMIT = 60.0
DOWN_LIMIT = 30.0

WORK = tempfile.mkdtemp(prefix="flbbfd.")
# FRR's daemons drop to the frr user and must read their configuration files here.
os.chmod(WORK, 0o755)
PROCS = []  # (name, Popen)


def log(msg):
    print(f"bench-bfd: {msg}", file=sys.stderr, flush=True)


def run(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def cleanup():
    for _, p in PROCS:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5
    for _, p in PROCS:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for ns in (RTR, OURS, FRRN):
        run("ip", "netns", "del", ns, check=False)
        shutil.rmtree(f"/var/run/frr/{ns}", ignore_errors=True)
    if os.environ.get("KEEP_WORK") != "1":
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        log(f"kept {WORK}")


def spawn(name, ns, args):
    out = open(os.path.join(WORK, f"{name}.log"), "w")
    p = subprocess.Popen(["ip", "netns", "exec", ns, *args], stdout=out, stderr=subprocess.STDOUT)
    PROCS.append((name, p))
    return p


def proc(name):
    return next(p for n, p in PROCS if n == name)


def wait(what, limit, probe):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.05)
    raise SystemExit(f"bench-bfd: timed out waiting for {what} (logs in {WORK}, KEEP_WORK=1 keeps them)")


def in_fib(vip):
    out = run("ip", "-n", RTR, "route", "show", "exact", vip, check=False).stdout
    return bool(out.strip())


def vtysh_json(ns, daemon, command):
    r = run("timeout", "5", "vtysh", "-N", ns, "-d", daemon, "-c", command, check=False)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def bfd_up(ns, peer):
    peers = vtysh_json(ns, "bfdd", "show bfd peers json") or []
    return any(p.get("peer") == peer and p.get("status") == "up" for p in peers)


def setup_net():
    for ns in (RTR, OURS, FRRN):
        run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
    run("ip", "-n", RTR, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", OURS)
    run("ip", "-n", RTR, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", FRRN)
    for ns, dev, addr in [
        (RTR, "eth0", "192.0.2.254/24"),
        (RTR, "eth1", "192.0.3.254/24"),
        (OURS, "eth0", "192.0.2.1/24"),
        (FRRN, "eth0", "192.0.3.1/24"),
    ]:
        run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
        run("ip", "-n", ns, "link", "set", dev, "up")


BFDD_CONF = """frr defaults traditional
bfd
 profile fast
  receive-interval 50
  transmit-interval 50
  detect-multiplier 3
 !
!
"""

RTR_BGPD = """frr defaults traditional
router bgp 65000
 bgp router-id 192.0.2.254
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 192.0.2.1 remote-as 64500
 neighbor 192.0.2.1 passive
 neighbor 192.0.2.1 timers 30 90
 neighbor 192.0.2.1 bfd profile fast
 neighbor 192.0.3.1 remote-as 64501
 neighbor 192.0.3.1 timers 30 90
 neighbor 192.0.3.1 timers connect 1
 neighbor 192.0.3.1 bfd profile fast
 address-family ipv4 unicast
  neighbor 192.0.2.1 activate
  neighbor 192.0.3.1 activate
 exit-address-family
!
"""

NODE_BGPD = """frr defaults traditional
router bgp 64501
 bgp router-id 192.0.3.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor 192.0.3.254 remote-as 65000
 neighbor 192.0.3.254 timers 30 90
 neighbor 192.0.3.254 timers connect 1
 neighbor 192.0.3.254 bfd profile fast
 address-family ipv4 unicast
  network 198.51.100.20/32
  neighbor 192.0.3.254 activate
 exit-address-family
!
"""


def start_frr(ns, bgpd_conf):
    d = os.path.join(WORK, ns)
    os.makedirs(d)
    confs = {"zebra": "frr defaults traditional\n", "bfdd": BFDD_CONF, "bgpd": bgpd_conf}
    for daemon, text in confs.items():
        with open(os.path.join(d, f"{daemon}.conf"), "w") as f:
            f.write(text)
    rundir = f"/var/run/frr/{ns}"
    os.makedirs(rundir, exist_ok=True)
    shutil.chown(rundir, "frr", "frr")
    common = ["-N", ns, "-P", "0", "--log", "stdout", "--log-level", "info"]
    spawn(f"{ns}-zebra", ns, [f"{FRR}/zebra", "-f", f"{d}/zebra.conf", *common])
    wait("zebra's socket", UP_LIMIT, lambda: os.path.exists(f"{rundir}/zserv.api"))
    spawn(f"{ns}-bfdd", ns, [f"{FRR}/bfdd", "-f", f"{d}/bfdd.conf", *common])
    spawn(f"{ns}-bgpd", ns, [f"{FRR}/bgpd", "-f", f"{d}/bgpd.conf", *common])


def ours_config(bfd, hold):
    peer_bfd = "\n  bfdProfile: fast" if bfd else ""
    return f"""apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: pool, namespace: metallb-system}}
spec: {{addresses: ["198.51.100.0/24"]}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: adv, namespace: metallb-system}}
spec: {{ipAddressPools: [pool]}}
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {{name: fast, namespace: metallb-system}}
spec: {{receiveInterval: 50, transmitInterval: 50, detectMultiplier: 3}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: rtr, namespace: metallb-system}}
spec:
  myASN: 64500
  peerASN: 65000
  peerAddress: 192.0.2.254
  holdTime: {hold}{peer_bfd}
"""


SERVICE = """apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, externalTrafficPolicy: Cluster, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 198.51.100.10}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-x
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], nodeName: ours, conditions: {ready: true}}]
"""


def write_atomic(d, name, text):
    tmp = os.path.join(WORK, f".{name}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(d, name))


def time_until_gone(vip, t0):
    """Polls the router's FIB back to back; returns (seconds from t0, probe duration)."""
    while True:
        before = time.monotonic()
        present = in_fib(vip)
        probe = time.monotonic() - before
        if not present:
            return time.monotonic() - t0, probe
        if time.monotonic() - t0 > DOWN_LIMIT:
            raise SystemExit(f"bench-bfd: {vip} still in the FIB after {DOWN_LIMIT} s")


def freeze(names):
    for n in names:
        os.kill(proc(n).pid, signal.SIGSTOP)


def thaw(names):
    for n in names:
        os.kill(proc(n).pid, signal.SIGCONT)


def main():
    if os.geteuid() != 0:
        log("needs root (network namespaces)")
        return 2
    for f in ("zebra", "bfdd", "bgpd"):
        if not os.access(f"{FRR}/{f}", os.X_OK):
            log(f"missing {FRR}/{f}")
            return 2
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    if not os.access(BIN, os.X_OK):
        subprocess.run(["cargo", "build", "-p", "ferrolb-speaker"], check=True)
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    setup_net()
    start_frr(RTR, RTR_BGPD)
    start_frr(FRRN, NODE_BGPD)
    conf = os.path.join(WORK, "conf")
    os.makedirs(conf)
    write_atomic(conf, "config.yaml", ours_config(True, "90s"))
    write_atomic(conf, "svc.yaml", SERVICE)
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"), NO_COLOR="1")
    out = open(os.path.join(WORK, "speaker.log"), "w")
    speaker = subprocess.Popen(
        ["ip", "netns", "exec", OURS, os.path.abspath(BIN), "--config-dir", conf,
         "--node-name", "ours", "--poll-ms", "50", "--metrics-addr", "127.0.0.1:0"],
        stdout=out, stderr=subprocess.STDOUT, env=env)
    PROCS.append(("speaker", speaker))

    print("run,node,mechanism,seconds,resolution_ms", flush=True)
    nodes = [
        ("ferrolb", VIP_OURS, "192.0.2.1", ["speaker"]),
        ("frr", VIP_FRR, "192.0.3.1", [f"{FRRN}-bfdd", f"{FRRN}-bgpd"]),
    ]
    for i in range(1, RUNS + 1):
        for node, vip, addr, procs in nodes:
            wait(f"{vip} in the router's FIB", UP_LIMIT, lambda: in_fib(vip))
            wait(f"BFD with {addr} up at the router", UP_LIMIT, lambda: bfd_up(RTR, addr))
            # Let the session settle past its Poll Sequence and a few packets.
            time.sleep(1.0)
            t0 = time.monotonic()
            freeze(procs)
            secs, probe = time_until_gone(vip, t0)
            thaw(procs)
            print(f"{i},{node},bfd-50msx3,{secs:.3f},{probe * 1000:.1f}", flush=True)

    if HOLD_RUN:
        write_atomic(conf, "config.yaml", ours_config(False, "9s"))
        # The peer's settings changed: the session restarts with hold 9 s and no BFD.
        wait("the session restarted with hold time 9 s", UP_LIMIT,
             lambda: (vtysh_json(RTR, "bgpd", "show bgp neighbors 192.0.2.1 json") or {})
             .get("192.0.2.1", {}).get("bgpTimerHoldTimeMsecs") == 9000)
        wait(f"{VIP_OURS} in the router's FIB", UP_LIMIT, lambda: in_fib(VIP_OURS))
        time.sleep(1.0)
        t0 = time.monotonic()
        freeze(["speaker"])
        secs, probe = time_until_gone(VIP_OURS, t0)
        thaw(["speaker"])
        print(f"hold,ferrolb,hold-9s-no-bfd,{secs:.3f},{probe * 1000:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
