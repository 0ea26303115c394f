//! A Layer 2 node drain under traffic: the next owner takes the VIP and moves the client with
//! its gratuitous ARP while the drained owner still answers; nothing is lost.
//!
//! ```text
//!   ns "client"  eth0 192.168.51.100/24, UDP to 192.168.51.200:5003 every 5 ms ─┐
//!   ns "node-a"  eth0 192.168.51.1/24, VIP on lo, receiver, speaker           ─┼─ ns "sw" br0
//!   ns "node-b"  eth0 192.168.51.2/24, VIP on lo, receiver, speaker           ─┘
//!   nodes: arp_ignore=1, arp_announce=2 (only the speakers answer ARP for the VIP)
//! ```
//!
//! Gossip off (`--memberlist-port 0`): both Nodes are candidates. The owner (the node whose
//! receiver gets the stream) is drained with `ferrolb.io/drain`; the other node must receive the
//! stream while the drained node is still in its drain period (3 s), and no datagram may be lost.
//!
//! Skips loudly without root or the `ferrolb-speaker` binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrolb_e2e::fixture::{self, yaml};
use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::stream::{self, Receiver};
use ferrolb_e2e::{ip, require_root_and, wait_until, Daemon, Netns, Switch};

const VIP: &str = "192.168.51.200";
const NODES: [(&str, &str); 2] = [("node-a", "192.168.51.1"), ("node-b", "192.168.51.2")];
/// One datagram every 5 ms for 7 s: the stream found, the 3 s drain, a margin.
const COUNT: u32 = 1400;
const INTERVAL: Duration = Duration::from_millis(5);
const CONVERGE: Duration = Duration::from_secs(30);

fn nodes_yaml(drained: Option<&str>) -> String {
    let nodes: Vec<_> = NODES
        .iter()
        .map(|(name, addr)| {
            let n = fixture::node(name, &[addr]);
            if drained == Some(*name) {
                n.set(
                    "metadata.annotations",
                    serde_json::json!({"ferrolb.io/drain": "true"}),
                )
            } else {
                n
            }
        })
        .collect();
    yaml(&nodes)
}

fn write_atomic(dir: &Path, name: &str, text: &str) {
    let tmp = dir
        .parent()
        .expect("conf has a parent")
        .join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write tmp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename into conf");
}

#[test]
fn an_l2_drain_hands_the_vip_over_without_loss() {
    if !require_root_and(&["ip"]) {
        return;
    }
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let mut sw = Switch::new().expect("switch");
    let client = Netns::new("client").expect("netns");
    sw.attach(&client, "eth0", &["192.168.51.100/24"])
        .expect("attach client");
    let conf: PathBuf = client.dir().join("conf");
    std::fs::create_dir(&conf).expect("conf dir");
    write_atomic(
        &conf,
        "config.yaml",
        &format!(
            "{}---\n{}",
            yaml(&[
                fixture::pool("lan", &["192.168.51.200/32"]),
                fixture::l2_advertisement("lan", &["lan"]),
            ]),
            fixture::service_with_endpoints("svc", &[VIP], "Cluster", &["node-a", "node-b"])
        ),
    );
    write_atomic(&conf, "nodes.yaml", &nodes_yaml(None));
    let mut nodes: Vec<(Netns, Daemon)> = Vec::new();
    for (name, addr) in NODES {
        let ns = Netns::new(name).expect("netns");
        sw.attach(&ns, "eth0", &[&format!("{addr}/24")])
            .expect("attach node");
        ns.exec(&[
            "sysctl",
            "-qw",
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
        ])
        .expect("sysctl");
        ns.add_addrs("lo", &[&format!("{VIP}/32")]).expect("vip");
        let speaker = bin
            .clone()
            .speaker_standalone(&conf, name)
            .args(["--memberlist-port", "0", "--drain-seconds", "3"])
            .spawn_in(&ns, &format!("speaker-{name}"))
            .expect("speaker starts");
        nodes.push((ns, speaker));
    }
    let logs = |nodes: &[(Netns, Daemon)]| -> String {
        nodes
            .iter()
            .map(|(_, d)| format!("--- {} ---\n{}", d.name(), d.log()))
            .collect()
    };
    let target = SocketAddr::new(ip(VIP), 5003);
    let receivers: Vec<Receiver> = nodes
        .iter()
        .map(|(ns, _)| Receiver::start(ns, target, Duration::from_secs(60)).expect("receiver"))
        .collect();
    let sender = stream::send(&client, target, COUNT, INTERVAL).expect("sender");
    let counts = wait_until(
        CONVERGE,
        "the stream reaches the VIP's owner",
        || receivers.iter().map(Receiver::count).collect::<Vec<_>>(),
        |c| c.iter().sum::<usize>() >= 200,
    );
    let owner = counts.iter().position(|c| *c > 0).expect("a node receives");
    let other = 1 - owner;
    eprintln!("draining {}, the owner", NODES[owner].0);
    write_atomic(&conf, "nodes.yaml", &nodes_yaml(Some(NODES[owner].0)));
    let before = receivers[other].count();
    wait_until(
        CONVERGE,
        "the stream moves to the next owner",
        || receivers[other].count(),
        |c| *c > before,
    );
    if let Err(e) = nodes[owner].1.wait_log(CONVERGE, "drain period over") {
        panic!(
            "the drained owner's period never ended: {e}\n{}",
            logs(&nodes)
        );
    }
    let (report, per_node) = stream::collect(sender, receivers);
    eprintln!(
        "measurement: L2 drain: sent {}, lost {} (gaps {:?}), received per node {:?}",
        report.sent,
        report.lost(),
        report.gaps,
        per_node
    );
    assert_eq!(report.lost(), 0, "{report:?}\n{}", logs(&nodes));
}
