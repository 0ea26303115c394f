//! Weighted ECMP end to end: two standalone speakers announce an `externalTrafficPolicy: Local`
//! VIP to FRR with the link bandwidth extended community in proportion to their endpoints
//! (`ferrolb.io/weighted-ecmp: endpoints`), and FRR, with multipath, installs the two next hops
//! weighted in that proportion in zebra and the kernel, which then splits real flows so.
//!
//! ```text
//!   ns "cli" eth0 203.0.113.1/30 ── eth1 203.0.113.2/30 ns "rtr" FRR AS 65000, FIB installed,
//!                                        eth0 192.0.2.254/24  fib_multipath_hash_policy=1
//!   ns "node-a" speaker AS 64512, eth0 192.0.2.1/24 ─┐   │
//!   ns "node-b" speaker AS 64512, eth0 192.0.2.2/24 ─┴─ ns "sw" bridge
//! ```
//!
//! node-a has 3 ready endpoints, node-b 1 ready and 1 terminating: FRR's FIB holds 3:1. A client
//! behind the router sends one UDP datagram from each of 10k source ports to the VIP; the router
//! hashes on ports (policy 1), and each node counts what reaches it (`Udp NoPorts`: the VIP sits
//! on its loopback with nothing listening). Then node-b scales to 3 (1:1), and finally the
//! annotation is removed (no link bandwidth: FRR's plain ECMP). The splits are printed for
//! docs/weighted-ecmp.md and asserted within 5 points: hashing 10k flows is not timing, its
//! standard deviation at 75/25 is under half a point.
//!
//! Skips loudly without root, FRR, python3 or the `ferrolb-speaker` binary (build it first:
//! `cargo build -p ferrolb-speaker`).

use std::path::{Path, PathBuf};

use ferrolb_e2e::fixture::{self, yaml, Object};
use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::{
    assert_holds, net, require_root_and, require_root_and_routers, try_wait_until, wait_until,
    Daemon, Frr, Neighbor, Netns, Router, RouterConfig, RouterKind, Switch, CONVERGE,
};
use serde_json::{json, Value};

const RTR: &str = "192.0.2.254";
const RTR_AS: u32 = 65000;
const NODE_AS: u32 = 64512;
const VIP: &str = "198.51.100.10";
const CLIENT: &str = "203.0.113.1";
/// Flows sent per measurement: one datagram from each of this many source ports.
const FLOWS: u32 = 10_000;
/// First source port of the flows.
const FIRST_PORT: u32 = 20_000;
/// How long a state must hold to count as kept: the speakers poll every 50 ms and FRR
/// reflects at once (iBGP advertisement interval 0 s).
const HOLD: std::time::Duration = std::time::Duration::from_secs(2);

const NODES: [(&str, &str, &str); 2] = [
    ("node-a", "192.0.2.1", "10.255.0.1"),
    ("node-b", "192.0.2.2", "10.255.0.2"),
];

/// The route reflector of [`Topology::Reflector`], on the nodes' LAN.
const RR: &str = "192.0.2.253";

/// How the nodes reach the router that forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topology {
    /// eBGP from each node (AS 64512) to the router (AS 65000).
    Direct,
    /// iBGP (AS 65000) from each node to an FRR route reflector, which reflects to the
    /// router, its client: every path with ADD-PATH (`add_path`), else only its best.
    Reflector { add_path: bool },
}

impl Topology {
    /// (BGPPeer address, the nodes' AS) of the nodes' one session.
    fn peering(self) -> (&'static str, u32) {
        match self {
            Topology::Direct => (RTR, NODE_AS),
            Topology::Reflector { .. } => (RR, RTR_AS),
        }
    }
}

/// The node's configuration: one pool, one BGPPeer, one advertisement, weighted or not.
fn config_yaml(topology: Topology, router_id: &str, weighted: bool) -> String {
    let mut adv = fixture::bgp_advertisement("adv", &["pool"]);
    if weighted {
        adv = adv.set(
            "metadata.annotations",
            json!({"ferrolb.io/weighted-ecmp": "endpoints"}),
        );
    }
    yaml(&[fixture::pool("pool", &["198.51.100.0/24"]), adv, {
        let (address, my_as) = topology.peering();
        fixture::bgp_peer("rtr", my_as, RTR_AS, address, router_id)
    }])
}

/// Service `web` (Local) at [`VIP`] with `ready` ready endpoints on node-a, `ready_b` on node-b,
/// and `terminating_b` terminating (still serving) ones on node-b.
fn service_yaml(ready_a: u32, ready_b: u32, terminating_b: u32) -> String {
    let mut eps = Vec::new();
    let mut n = 0;
    let mut push = |node: &str, count: u32, ready: bool| {
        for _ in 0..count {
            n += 1;
            eps.push(json!({
                "addresses": [format!("10.0.0.{n}")],
                "nodeName": node,
                "conditions": {"ready": ready, "serving": true, "terminating": !ready},
            }));
        }
    };
    push("node-a", ready_a, true);
    push("node-b", ready_b, true);
    push("node-b", terminating_b, false);
    let slice: Object = fixture::endpoint_slice("web", "default", &[("10.0.0.1", "node-a")])
        .set("endpoints", Value::Array(eps));
    yaml(&[
        fixture::service("web", "default", &[VIP]).set("spec.externalTrafficPolicy", "Local"),
        slice,
    ])
}

/// Write then rename, so the speaker's poller never reads half a file.
fn write_atomic(dir: &Path, name: &str, text: &str) {
    let tmp = dir
        .parent()
        .expect("conf has a parent")
        .join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write tmp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename into conf");
}

struct Node {
    name: &'static str,
    ns: Netns,
    conf: PathBuf,
    speaker: Option<Daemon>,
}

struct Lab {
    topology: Topology,
    rtr: Frr,
    rr: Option<Frr>,
    nodes: Vec<Node>,
    cli: Netns,
    // Dropped last: namespaces go after the daemons inside them.
    _sw: Switch,
    rtr_ns: Netns,
    _rr_ns: Option<Netns>,
}

impl Lab {
    fn start(topology: Topology) -> Option<Lab> {
        if !require_root_and_routers(&[RouterKind::Frr]) || !require_root_and(&["python3"]) {
            return None;
        }
        let bin = FlbCommand::find("ferrolb-speaker")?;
        let mut sw = Switch::new().expect("switch");
        let rtr_ns = Netns::new("rtr").expect("netns");
        sw.attach(&rtr_ns, "eth0", &[&format!("{RTR}/24")])
            .expect("attach rtr");
        let cli = Netns::new("cli").expect("netns");
        cli.veth(
            "eth0",
            &[&format!("{CLIENT}/30")],
            &rtr_ns,
            "eth1",
            &["203.0.113.2/30"],
        )
        .expect("client link");
        cli.ip(&["route", "add", "default", "via", "203.0.113.2"])
            .expect("client route");
        // The router forwards, and hashes flows on their ports (policy 1: L4 5-tuple), so
        // 10k source ports spread by the next hops' weights.
        for sysctl in [
            "net.ipv4.ip_forward=1",
            "net.ipv4.fib_multipath_hash_policy=1",
        ] {
            rtr_ns.exec(&["sysctl", "-qw", sysctl]).expect("sysctl");
        }
        let mut cfg = RouterConfig::new(RTR.parse().expect("id"), RTR_AS);
        cfg.install_fib = true;
        // The reflector: the nodes and the router are its clients; only the router needs
        // every path, the nodes announce and need none.
        let mut rr_cfg = RouterConfig::new(RR.parse().expect("id"), RTR_AS);
        let rr_ns = matches!(topology, Topology::Reflector { .. }).then(|| {
            let ns = Netns::new("rr").expect("netns");
            sw.attach(&ns, "eth0", &[&format!("{RR}/24")])
                .expect("attach rr");
            cfg = cfg
                .clone()
                .neighbor(Neighbor::new(RR.parse().expect("rr"), RTR_AS));
            let rtr = Neighbor::new(RTR.parse().expect("rtr"), RTR_AS)
                .passive()
                .reflector_client();
            rr_cfg = rr_cfg.clone().neighbor(match topology {
                Topology::Reflector { add_path: true } => rtr.add_path_tx_all(),
                _ => rtr,
            });
            ns
        });
        let mut nodes = Vec::new();
        for (name, addr, router_id) in NODES {
            let ns = Netns::new(name).expect("netns");
            sw.attach(&ns, "eth0", &[&format!("{addr}/24")])
                .expect("attach node");
            // The VIP is local (nothing listens: each datagram counts as Udp NoPorts), and
            // the client's source is accepted without a route back.
            ns.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"])
                .expect("vip on lo");
            for sysctl in [
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.eth0.rp_filter=0",
                "net.ipv4.icmp_ratelimit=0",
            ] {
                ns.exec(&["sysctl", "-qw", sysctl]).expect("sysctl");
            }
            let (_, node_as) = topology.peering();
            let node = Neighbor::new(addr.parse().expect("addr"), node_as).passive();
            match topology {
                Topology::Direct => cfg = cfg.neighbor(node),
                Topology::Reflector { .. } => {
                    rr_cfg = rr_cfg.neighbor(node.reflector_client());
                }
            }
            let conf = ns.dir().join("conf");
            std::fs::create_dir(&conf).expect("conf dir");
            write_atomic(
                &conf,
                "config.yaml",
                &config_yaml(topology, router_id, true),
            );
            nodes.push(Node {
                name,
                ns,
                conf,
                speaker: None,
            });
        }
        let rr = rr_ns
            .as_ref()
            .map(|ns| Frr::start(ns, rr_cfg).expect("reflector starts"));
        let rtr = Frr::start(&rtr_ns, cfg).expect("frr starts");
        let mut lab = Lab {
            topology,
            rtr,
            rr,
            nodes,
            cli,
            _sw: sw,
            rtr_ns,
            _rr_ns: rr_ns,
        };
        for n in &mut lab.nodes {
            let speaker = bin
                .clone()
                .speaker_standalone(&n.conf, n.name)
                .arg("--status-file")
                .arg(n.ns.dir().join("status.json"));
            n.speaker = Some(speaker.spawn_in(&n.ns, "speaker").expect("speaker starts"));
        }
        Some(lab)
    }

    fn write_all(&self, name: &str, text: &str) {
        for n in &self.nodes {
            write_atomic(&n.conf, name, text);
        }
    }

    fn set_weighted(&self, weighted: bool) {
        for (n, (_, _, router_id)) in self.nodes.iter().zip(NODES) {
            write_atomic(
                &n.conf,
                "config.yaml",
                &config_yaml(self.topology, router_id, weighted),
            );
        }
    }

    fn logs(&self) -> String {
        let mut out: String = self
            .nodes
            .iter()
            .map(|n| {
                let log = n.speaker.as_ref().map(Daemon::log).unwrap_or_default();
                format!("--- {} ---\n{log}", n.name)
            })
            .collect();
        for q in [
            "show bgp ipv4 unicast".to_owned(),
            format!("show ip route {VIP}/32 json"),
        ] {
            for (name, router) in [("rtr", Some(&self.rtr)), ("rr", self.rr.as_ref())] {
                let Some(router) = router else { continue };
                out.push_str(&format!("--- {name}: {q} ---\n"));
                match router.vtysh(&q) {
                    Ok(text) => out.push_str(&text),
                    Err(e) => out.push_str(&format!("{e}\n")),
                }
            }
        }
        out
    }

    /// Zebra's next hops of the VIP with their weights, sorted by address
    /// (`show ip route <vip>/32 json`: FRR 8.4 prints `weight` per next hop when weighted).
    fn fib(&self) -> Vec<(String, u64)> {
        let q = format!("show ip route {VIP}/32 json");
        let v = self.rtr.vtysh_json(&q).unwrap_or(Value::Null);
        let mut hops: Vec<(String, u64)> = v
            .get(format!("{VIP}/32"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("selected").and_then(Value::as_bool) == Some(true))
            .flat_map(|r| {
                r.get("nexthops")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|nh| nh.get("fib").and_then(Value::as_bool) == Some(true))
            .filter_map(|nh| {
                let ip = nh.get("ip")?.as_str()?.to_owned();
                let weight = nh.get("weight").and_then(Value::as_u64).unwrap_or(1);
                Some((ip, weight))
            })
            .collect();
        hops.sort();
        hops
    }

    /// Waits until the FIB holds both nodes with weights in the ratio `a`:`b`.
    fn wait_ratio(&self, what: &str, a: u64, b: u64) -> Vec<(String, u64)> {
        let fib = try_wait_until(
            CONVERGE,
            what,
            || self.fib(),
            |f| {
                matches!(f.as_slice(), [(ip_a, wa), (ip_b, wb)]
                if ip_a == "192.0.2.1" && ip_b == "192.0.2.2" && wa * b == wb * a)
            },
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        println!("{what}: FIB next hops and weights {fib:?}");
        // FRR installs routes through nexthop groups: the weights are on the group.
        let kernel = self
            .rtr_ns
            .ip(&["nexthop", "show"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        println!("{what}: kernel nexthops:\n{}", kernel.trim());
        fib
    }

    /// Sends [`FLOWS`] one-datagram flows from distinct source ports and returns what each
    /// node received, in [`NODES`] order.
    fn split(&self) -> [u64; 2] {
        // Resolve the next hops' MAC addresses first: behind a reflector the router has never
        // talked to the nodes, and datagrams queued on an unresolved neighbour may be dropped.
        for (_, addr, _) in NODES {
            assert!(
                self.rtr_ns.ping(addr.parse().expect("addr")),
                "router reaches {addr}"
            );
        }
        let before = self.nodes.iter().map(no_ports).collect::<Vec<_>>();
        let script = format!(
            "import socket\n\
             for port in range({FIRST_PORT}, {end}):\n\
             \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             \x20   s.bind(('{CLIENT}', port))\n\
             \x20   s.sendto(b'x', ('{VIP}', 9))\n\
             \x20   s.close()\n",
            end = FIRST_PORT + FLOWS,
        );
        self.cli
            .exec(&["python3", "-c", &script])
            .expect("client sends");
        // Every datagram was handed to the router before python3 exited; wait for the
        // counters to account for all of them (bounded: veth delivery is immediate).
        let got = wait_until(
            CONVERGE,
            "datagrams counted at the nodes",
            || {
                let now: Vec<u64> = self.nodes.iter().map(no_ports).collect();
                [now[0] - before[0], now[1] - before[1]]
            },
            |[a, b]| a + b >= u64::from(FLOWS),
        );
        got
    }
}

/// The namespace's `Udp: NoPorts` counter (/proc/net/snmp): datagrams for a local address
/// with no socket.
fn no_ports(node: &Node) -> u64 {
    let out = node.ns.exec(&["cat", "/proc/net/snmp"]).expect("read snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        panic!("no Udp lines in /proc/net/snmp:\n{text}");
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "NoPorts")
        .and_then(|(_, v)| v.parse().ok())
        .expect("NoPorts counter")
}

fn share_of_a(split: [u64; 2]) -> f64 {
    split[0] as f64 / (split[0] + split[1]) as f64
}

/// The weight node `node`'s status file says it announces for the VIP to the router.
fn status_weight(node: &Node) -> Option<f64> {
    let text = std::fs::read_to_string(node.ns.dir().join("status.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["services"]["default/web"]["vips"][VIP]["weights"]["rtr"][format!("{VIP}/32")].as_f64()
}

/// Measures the split at the nodes, prints it for docs/weighted-ecmp.md and asserts it is
/// within 5 points of `want_a` (node-a's share).
fn measure(lab: &Lab, what: &str, want_a: f64) {
    let got = lab.split();
    let share = share_of_a(got);
    println!(
        "{what}: node-a {} node-b {} of {FLOWS} flows: {:.2}% / {:.2}%",
        got[0],
        got[1],
        share * 100.0,
        (1.0 - share) * 100.0
    );
    assert!(
        (share - want_a).abs() <= 0.05,
        "{what}: split {got:?} is not within 5 points of {want_a}\n{}",
        lab.logs()
    );
}

#[test]
fn frr_installs_next_hops_weighted_by_ready_endpoints_and_flows_follow() {
    let Some(lab) = Lab::start(Topology::Direct) else {
        return;
    };
    // node-a: 3 ready; node-b: 1 ready and 1 terminating, which takes no new share.
    lab.write_all("svc-web.yaml", &service_yaml(3, 1, 1));
    let fib = lab.wait_ratio("weighted, 3 ready on node-a, 1 on node-b", 3, 1);
    assert!(
        fib.iter().all(|(_, w)| *w > 1),
        "weights present: {fib:?}\n{}",
        lab.logs()
    );
    measure(&lab, "weighted 3:1", 0.75);
    // Each node's status file shows the weight it announces, in endpoints.
    for (node, want) in lab.nodes.iter().zip([3.0, 1.0]) {
        wait_until(
            CONVERGE,
            &format!("{}'s status file shows weight {want}", node.name),
            || status_weight(node),
            |w| *w == Some(want),
        );
    }

    // Scaled: node-b has 3 ready too; a new UPDATE from node-b makes the weights equal.
    lab.write_all("svc-web.yaml", &service_yaml(3, 3, 0));
    lab.wait_ratio("weighted, 3 ready on each node", 1, 1);
    measure(&lab, "weighted 1:1", 0.5);

    // Back to 3:1, then the annotation removed: the routes lose their link bandwidth and FRR
    // falls back to plain ECMP, 50/50 whatever the endpoints (what every peer gives without
    // weighted ECMP). Going through 3:1 first makes "equal weights" a change to wait for.
    lab.write_all("svc-web.yaml", &service_yaml(3, 1, 1));
    lab.wait_ratio("weighted again, 3 ready on node-a, 1 on node-b", 3, 1);
    lab.set_weighted(false);
    lab.wait_ratio("unweighted, 3 ready on node-a, 1 on node-b", 1, 1);
    measure(&lab, "unweighted (3 vs 1 endpoints)", 0.5);
}

/// iBGP through a route reflector: FRR as the reflector keeps both nodes' paths and, with
/// ADD-PATH (`addpath-tx-all-paths`) towards its client, reflects both with their link
/// bandwidths unchanged; the client installs them weighted 3:1, and the split follows.
#[test]
fn through_an_frr_route_reflector_with_add_path_the_weights_survive() {
    let Some(lab) = Lab::start(Topology::Reflector { add_path: true }) else {
        return;
    };
    lab.write_all("svc-web.yaml", &service_yaml(3, 1, 1));
    lab.wait_ratio("via the reflector, 3 ready on node-a, 1 on node-b", 3, 1);
    measure(&lab, "via the reflector, weighted 3:1", 0.75);
    lab.write_all("svc-web.yaml", &service_yaml(3, 3, 0));
    lab.wait_ratio("via the reflector, 3 ready on each node", 1, 1);
}

/// Without ADD-PATH the reflector sends its client only its best path (RFC 4456): the client
/// sees one node and no proportion, whatever the weights. What docs/weighted-ecmp.md asks of a
/// reflector, shown by its absence.
#[test]
fn through_a_route_reflector_without_add_path_the_client_sees_one_path() {
    let Some(lab) = Lab::start(Topology::Reflector { add_path: false }) else {
        return;
    };
    lab.write_all("svc-web.yaml", &service_yaml(3, 1, 1));
    let rr = lab.rr.as_ref().expect("reflector");
    // The reflector itself holds both paths...
    wait_until(
        CONVERGE,
        "the reflector holds both nodes' paths",
        || rr.route(net(&format!("{VIP}/32"))).ok().flatten(),
        |r| r.as_ref().is_some_and(|r| r.next_hops.len() == 2),
    );
    // ...but its client installs one next hop, and keeps one.
    wait_until(
        CONVERGE,
        "the client installs the VIP",
        || lab.fib(),
        |f| !f.is_empty(),
    );
    assert_holds(
        HOLD,
        "the client holds one next hop",
        || lab.fib(),
        |f| f.len() == 1,
    );
}
