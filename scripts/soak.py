#!/usr/bin/env python3
"""Soak bench (a measurement, not a CI test): a standalone daemon under churn for a while.

  speaker:    ferrolb-speaker with a BIRD2 peer on loopback and N Services (default 10k) under
              churn (RATE changes per second: create, delete, endpoint flips, IP moves). At each
              checkpoint the churn pauses until BIRD's table equals the expected set (or a
              deadline passes: a mismatch is reported). Reports RSS over time, the growth over
              the last half of the run, table checks and BGP session flaps.
  controller: ferrolb-controller --config-dir with N Services created and deleted under churn;
              at each checkpoint every existing Service must hold a distinct address in the
              allocations file. Reports RSS the same way.

Loopback only, every wait bounded, everything in a temporary directory removed at the end.

  cargo build --release -p ferrolb-speaker -p ferrolb-controller
  scripts/soak.py speaker --seconds 600 && scripts/soak.py controller --seconds 600

Churn spreads over 100 files written atomically (write, then rename), each file rewritten at
most every few seconds, so the file source's settle window (500 ms) never holds a file back.
"""
import argparse
import ipaddress
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

FILES = 100
POOL = ipaddress.ip_network("100.64.0.0/16")
NODE = "node-a"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port():
    """A free loopback port a BGPPeer may name (MetalLB's peerPort is at most 16384)."""
    for port in random.sample(range(11000, 16384), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 11000..16384")


class Cluster:
    """The Services as the soak wants them, and their files."""

    def __init__(self, n, cfg, with_status):
        self.n, self.cfg, self.with_status = n, cfg, with_status
        hosts = POOL.hosts()
        self.spare = [str(next(hosts)) for _ in range(min(POOL.num_addresses - 2, 3 * n))]
        self.ip = {i: self.spare.pop() for i in range(n)}  # existing Services and their IP
        self.ready = {i: True for i in range(n)}
        self.cursor = 0

    def doc(self, i):
        name = f"s{i}"
        status = (
            f"status: {{loadBalancer: {{ingress: [{{ip: {self.ip[i]}}}]}}}}\n"
            if self.with_status
            else ""
        )
        ready = "true" if self.ready[i] else "false"
        return (
            f"---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\n"
            f"spec: {{type: LoadBalancer, externalTrafficPolicy: Local, ports: [{{port: 80}}]}}\n"
            f"{status}"
            f"---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
            f"metadata: {{name: {name}-x, namespace: default, labels: "
            f"{{kubernetes.io/service-name: {name}}}}}\naddressType: IPv4\n"
            f"endpoints: [{{addresses: [10.0.0.1], nodeName: {NODE}, "
            f"conditions: {{ready: {ready}}}}}]\n"
        )

    def write(self, f):
        path = os.path.join(self.cfg, f"svc-{f:02}.yaml")
        tmp = os.path.join(self.cfg, f".svc-{f:02}.tmp")
        with open(tmp, "w") as out:
            for i in range(f, self.n, FILES):
                if i in self.ip:
                    out.write(self.doc(i))
        os.rename(tmp, path)

    def write_all(self):
        for f in range(FILES):
            self.write(f)

    def churn(self, changes, kinds):
        """`changes` random changes in the next files of the rotation, then rewrites them."""
        files = max(1, changes // 10)
        touched = []
        for _ in range(files):
            f = self.cursor % FILES
            self.cursor += 1
            touched.append(f)
            for _ in range(changes // files):
                i = random.randrange(f, self.n, FILES)
                kind = random.choice(kinds)
                if kind == "create/delete":
                    if i in self.ip:
                        self.spare.append(self.ip.pop(i))
                    else:
                        self.ip[i] = self.spare.pop(random.randrange(len(self.spare)))
                        self.ready[i] = True
                elif kind == "endpoints" and i in self.ip:
                    self.ready[i] = not self.ready[i]
                elif kind == "ip" and i in self.ip:
                    old = self.ip[i]
                    self.ip[i] = self.spare.pop(random.randrange(len(self.spare)))
                    self.spare.append(old)
            self.write(f)
        return touched

    def expected_routes(self):
        return {f"{ip}/32" for i, ip in self.ip.items() if self.ready[i]}


def config_yaml(port):
    return f"""apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: pool, namespace: metallb-system}}
spec: {{addresses: ["{POOL}"]}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: bird, namespace: metallb-system}}
spec: {{myASN: 64500, peerASN: 64512, peerAddress: 127.0.0.1, peerPort: {port}, routerID: 10.255.0.2}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: adv, namespace: metallb-system}}
spec: {{ipAddressPools: [pool]}}
"""


class Bird:
    def __init__(self, work, port):
        self.sock = os.path.join(work, "bird.ctl")
        conf = os.path.join(work, "bird.conf")
        with open(conf, "w") as f:
            f.write(
                "router id 10.255.0.1;\nprotocol device {}\n"
                f"protocol bgp soak {{\n  local 127.0.0.1 port {port} as 64512;\n"
                "  neighbor 127.0.0.1 as 64500;\n  multihop;\n  passive on;\n"
                "  ipv4 { import all; export none; };\n}\n"
            )
        self.proc = subprocess.Popen(["bird", "-f", "-c", conf, "-s", self.sock])

    def ctl(self, *args):
        out = subprocess.run(["birdc", "-s", self.sock, *args], capture_output=True, text=True, timeout=30)
        return out.stdout

    def routes(self):
        got = set()
        for line in self.ctl("show", "route", "protocol", "soak").splitlines():
            head = line.split(" ", 1)[0]
            if "/" in head and head[0].isdigit():
                got.add(head)
        return got

    def established_since(self):
        for line in self.ctl("show", "protocols", "soak").splitlines():
            if line.startswith("soak ") and "Established" in line:
                return " ".join(line.split()[3:5])
        return None


def allocations_ok(path, cluster):
    """Every existing Service has an address in the allocations file, no address twice."""
    try:
        text = open(path).read()
    except OSError:
        return False, "no allocations file yet"
    ips, names = [], set()
    name = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("name:"):
            name = s.split(":", 1)[1].strip()
        if s.startswith("- ip:") or s.startswith("ip:"):
            ips.append(s.split(":", 1)[1].strip().strip('"'))
            names.add(name)
    want = {f"s{i}" for i in cluster.ip}
    missing, extra = len(want - names), len(names - want)
    dup = len(ips) - len(set(ips))
    ok = missing == 0 and extra == 0 and dup == 0
    return ok, f"{len(names)} allocated, {missing} missing, {extra} of deleted Services, {dup} duplicated"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("daemon", choices=["speaker", "controller"])
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=100, help="changes per second")
    ap.add_argument("--checkpoint", type=int, default=60, help="seconds between checkpoints")
    ap.add_argument("--bin", default="target/release")
    args = ap.parse_args()
    random.seed(7)
    work = tempfile.mkdtemp(prefix="ferrolb-soak-")
    procs = []
    try:
        cfg = os.path.join(work, "cfg")
        os.mkdir(cfg)
        port = free_port()
        speaker = args.daemon == "speaker"
        with open(os.path.join(cfg, "config.yaml"), "w") as f:
            f.write(config_yaml(port))
        cluster = Cluster(args.services, cfg, with_status=speaker)
        cluster.write_all()
        log = open(os.path.join(work, "daemon.log"), "w")
        env = dict(os.environ, RUST_LOG="warn")
        if speaker:
            bird = Bird(work, port)
            procs.append(bird.proc)
            cmd = [f"{args.bin}/ferrolb-speaker", "--config-dir", cfg, "--node-name", NODE,
                   "--metrics-addr", "127.0.0.1:0"]
            kinds = ["create/delete", "endpoints", "ip"]
        else:
            alloc = os.path.join(work, "allocations.yaml")
            cmd = [f"{args.bin}/ferrolb-controller", "--config-dir", cfg, "--allocations-file", alloc,
                   "--metrics-addr", "127.0.0.1:0"]
            kinds = ["create/delete"]
        daemon = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
        procs.append(daemon)

        def check(deadline_s=60):
            t0 = time.time()
            while time.time() - t0 < deadline_s:
                if speaker:
                    got, want = bird.routes(), cluster.expected_routes()
                    if got == want:
                        return True, f"table = expected ({len(want)} routes) after {time.time() - t0:.1f} s"
                    detail = f"{len(got)} routes, {len(want - got)} missing, {len(got - want)} extra"
                else:
                    ok, detail = allocations_ok(alloc, cluster)
                    if ok:
                        return True, f"{detail} after {time.time() - t0:.1f} s"
                time.sleep(0.5)
            return False, detail

        ok, detail = check(180)
        if not ok and speaker:
            print(bird.ctl("show", "protocols", "all", "soak"), file=sys.stderr)
            print(open(os.path.join(work, "daemon.log")).read()[-2000:], file=sys.stderr)
        print(f"start: {'OK' if ok else 'MISMATCH'} {detail}; RSS {rss_kb(daemon.pid)} kB", flush=True)
        since = bird.established_since() if speaker else None
        samples, checks, flaps = [], [], 0
        start = time.time()
        next_cp = start + args.checkpoint
        while time.time() - start < args.seconds:
            tick = time.time()
            cluster.churn(args.rate, kinds)
            if daemon.poll() is not None:
                print("daemon exited", file=sys.stderr)
                return 1
            samples.append((tick - start, rss_kb(daemon.pid)))
            if tick >= next_cp:
                ok, detail = check()
                if speaker:
                    now_since = bird.established_since()
                    if now_since != since:
                        flaps += 1
                        since = now_since
                checks.append(ok)
                print(f"t={tick - start:5.0f} s: {'OK' if ok else 'MISMATCH'} {detail}; "
                      f"RSS {samples[-1][1]} kB; flaps {flaps}", flush=True)
                next_cp = time.time() + args.checkpoint
            time.sleep(max(0.0, 1.0 - (time.time() - tick)))
        ok, detail = check()
        checks.append(ok)
        half = [r for t, r in samples if t >= args.seconds / 2]
        print(f"end: {'OK' if ok else 'MISMATCH'} {detail}")
        print(f"RSS kB: start {samples[0][1]}, max {max(r for _, r in samples)}, "
              f"last half min {min(half)} max {max(half)} (growth {max(half) - min(half)} kB), end {samples[-1][1]}")
        print(f"checkpoints OK {sum(checks)}/{len(checks)}; session flaps {flaps}")
        return 0 if all(checks) and flaps == 0 else 1
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
