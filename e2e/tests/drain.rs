//! A node drain under traffic: the stream moves to the other node before the drained node
//! withdraws, and nothing is lost.
//!
//! ```text
//!   ns "client" 10.99.0.2 ──veth── 10.99.0.1 ns "rtr" FRR: multipath, routes in its kernel,
//!     UDP, one numbered datagram               RFC 8326 policy (GRACEFUL_SHUTDOWN → LOCAL_PREF 0)
//!     every 5 ms to 198.51.100.20:5002         eth0 192.0.2.254/24 ─┐
//!   ns "node-a" speaker, VIP on lo, receiver ── eth0 192.0.2.1/24 ───┼─ ns "sw" br0
//!   ns "node-b" speaker, VIP on lo, receiver ── eth0 192.0.2.2/24 ───┘
//! ```
//!
//! Both nodes announce an externalTrafficPolicy Cluster VIP; the router spreads flows over both
//! (one flow, the stream, hashes to one of them). The node carrying the stream is drained with
//! the `ferrolb.io/drain` annotation: it re-announces with GRACEFUL_SHUTDOWN and LOCAL_PREF 0,
//! the router moves the flow to the other node, and after the drain period (3 s here) the
//! drained node withdraws. Zero datagrams lost.
//!
//! Skips loudly without root, FRR, or the `ferrolb-speaker` binary.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrolb_e2e::fixture::{self, yaml};
use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::stream::{self, Receiver};
use ferrolb_e2e::{
    ip, net, require_root_and_routers, wait_until, Daemon, Frr, Neighbor, Netns, Router,
    RouterConfig, RouterKind, Switch, CONVERGE,
};

const RTR: &str = "192.0.2.254";
const VIP: &str = "198.51.100.20";
const AS: u32 = 65000;
/// One datagram every 5 ms for 7 s: the stream found, the 3 s drain, the withdrawal, a margin.
const COUNT: u32 = 1400;
const INTERVAL: Duration = Duration::from_millis(5);
const DRAIN_SECONDS: &str = "3";

const NODES: [(&str, &str, &str); 2] = [
    ("node-a", "192.0.2.1", "10.255.0.1"),
    ("node-b", "192.0.2.2", "10.255.0.2"),
];

struct Node {
    name: &'static str,
    addr: &'static str,
    ns: Netns,
    conf: PathBuf,
    speaker: Option<Daemon>,
}

struct Lab {
    rtr: Frr,
    nodes: Vec<Node>,
    // Dropped last: namespaces go after the daemons inside them.
    client: Netns,
    _sw: Switch,
    _rtr_ns: Netns,
}

fn write_atomic(dir: &Path, name: &str, text: &str) {
    let tmp = dir
        .parent()
        .expect("conf has a parent")
        .join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write tmp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename into conf");
}

impl Lab {
    fn start() -> Option<Lab> {
        if !require_root_and_routers(&[RouterKind::Frr]) {
            return None;
        }
        let bin = FlbCommand::find("ferrolb-speaker")?;
        let mut sw = Switch::new().expect("switch");
        let rtr_ns = Netns::new("rtr").expect("netns");
        sw.attach(&rtr_ns, "eth0", &[&format!("{RTR}/24")])
            .expect("attach rtr");
        let client = stream::client_behind(&rtr_ns).expect("client behind the router");
        let mut cfg = RouterConfig::new(RTR.parse().expect("id"), AS);
        cfg.install_fib = true;
        cfg.graceful_shutdown_policy = true;
        let mut nodes = Vec::new();
        for (name, addr, router_id) in NODES {
            let ns = Netns::new(name).expect("netns");
            sw.attach(&ns, "eth0", &[&format!("{addr}/24")])
                .expect("attach node");
            ns.add_addrs("lo", &[&format!("{VIP}/32")]).expect("vip");
            cfg = cfg.neighbor(Neighbor::new(ip(addr), AS).passive());
            let conf = ns.dir().join("conf");
            std::fs::create_dir(&conf).expect("conf dir");
            write_atomic(
                &conf,
                "config.yaml",
                &yaml(&[
                    fixture::pool("pool", &["198.51.100.0/24"]),
                    fixture::bgp_advertisement("adv", &["pool"]),
                    fixture::bgp_peer("rtr", AS, AS, RTR, router_id),
                ]),
            );
            write_atomic(
                &conf,
                "svc.yaml",
                &fixture::service_with_endpoints("svc", &[VIP], "Cluster", &["node-a", "node-b"]),
            );
            let speaker = bin
                .clone()
                .speaker_standalone(&conf, name)
                .args(["--drain-seconds", DRAIN_SECONDS])
                .spawn_in(&ns, "speaker")
                .expect("speaker starts");
            nodes.push(Node {
                name,
                addr,
                ns,
                conf,
                speaker: Some(speaker),
            });
        }
        let rtr = Frr::start(&rtr_ns, cfg).expect("frr starts");
        Some(Lab {
            rtr,
            nodes,
            client,
            _sw: sw,
            _rtr_ns: rtr_ns,
        })
    }

    /// The next hops FRR selected for the VIP.
    fn next_hops(&self) -> Vec<IpAddr> {
        self.rtr
            .route(net(&format!("{VIP}/32")))
            .expect("frr route query")
            .map(|r| {
                let mut h = r.next_hops;
                h.sort();
                h
            })
            .unwrap_or_default()
    }

    /// How many paths FRR holds for the VIP (selected or not).
    fn paths(&self) -> usize {
        let v = self
            .rtr
            .vtysh_json(&format!("show bgp ipv4 unicast {VIP}/32 json"))
            .expect("frr path query");
        v["paths"].as_array().map_or(0, Vec::len)
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let log = n.speaker.as_ref().map(Daemon::log).unwrap_or_default();
                format!("--- {} ---\n{log}", n.name)
            })
            .collect()
    }
}

#[test]
fn a_drained_node_hands_its_traffic_over_before_withdrawing() {
    let Some(lab) = Lab::start() else {
        return;
    };
    let both: Vec<IpAddr> = NODES.iter().map(|(_, a, _)| ip(a)).collect();
    wait_until(
        CONVERGE,
        "the router spreads the VIP over both nodes",
        || lab.next_hops(),
        |h| *h == both,
    );
    wait_until(
        CONVERGE,
        "the router's kernel forwards the VIP to both",
        || {
            lab.rtr
                .vtysh(&format!("show ip route {VIP}/32"))
                .unwrap_or_default()
        },
        |s| both.iter().all(|a| s.contains(&a.to_string())),
    );
    let target = SocketAddr::new(ip(VIP), 5002);
    let receivers: Vec<Receiver> = lab
        .nodes
        .iter()
        .map(|n| Receiver::start(&n.ns, target, Duration::from_secs(60)).expect("receiver"))
        .collect();
    let sender = stream::send(&lab.client, target, COUNT, INTERVAL).expect("sender");
    let counts = wait_until(
        CONVERGE,
        "the stream flows",
        || receivers.iter().map(Receiver::count).collect::<Vec<_>>(),
        |c| c.iter().sum::<usize>() >= 200,
    );
    // One flow hashes to one node: drain that one.
    let carrier = counts.iter().position(|c| *c > 0).expect("a node receives");
    let other = 1 - carrier;
    let drained = &lab.nodes[carrier];
    eprintln!("draining {}, which carries the stream", drained.name);
    let node = fixture::node(drained.name, &[drained.addr]).set(
        "metadata.annotations",
        serde_json::json!({"ferrolb.io/drain": "true"}),
    );
    write_atomic(&drained.conf, "node.yaml", &node.yaml());

    let only_other = vec![ip(lab.nodes[other].addr)];
    wait_until(
        CONVERGE,
        "the router prefers the other node (GRACEFUL_SHUTDOWN)",
        || lab.next_hops(),
        |h| *h == only_other,
    );
    assert_eq!(
        lab.paths(),
        2,
        "the drained node still announces during the drain period\n{}",
        lab.logs()
    );
    wait_until(
        CONVERGE,
        "the drained node withdraws after the drain period",
        || lab.paths(),
        |p| *p == 1,
    );
    let (report, per_node) = stream::collect(sender, receivers);
    eprintln!(
        "measurement: BGP drain: sent {}, lost {} (gaps {:?}), received per node {:?}",
        report.sent,
        report.lost(),
        report.gaps,
        per_node
    );
    assert!(
        per_node[other] > 0,
        "the traffic never moved\n{}",
        lab.logs()
    );
    assert_eq!(report.lost(), 0, "{report:?}\n{}", lab.logs());
}
