//! A speaker upgrade under traffic: SIGTERM, and the same command line 1.5 s later.
//!
//! ```text
//!   ns "client" 10.99.0.2 ──veth── 10.99.0.1 ns "rtr" FRR (GR helper, routes in its kernel)
//!     UDP, one numbered datagram                 eth0 192.0.2.254/24 ─┐
//!     every 5 ms to 198.51.100.10:5001                                ├─ ns "sw" br0
//!   ns "node-a" ferrolb-speaker, 198.51.100.10/32 on lo, receiver ────┘ eth0 192.0.2.1/24
//! ```
//!
//! node-a holds the only endpoint of an externalTrafficPolicy Local Service, so while its route
//! is gone the router has nowhere to send the stream. With `enableGracefulRestart` the speaker
//! closes the session keeping Graceful Restart (RFC 8538 §4), the router keeps the route as
//! stale, the new speaker finds its restart marker and comes back with the Restart State and
//! Forwarding State bits (RFC 4724 §4.1), and nothing is lost. Without it, the route goes with
//! the Cease and the stream loses the gap. Both figures are printed (see docs/upgrades.md).
//!
//! Skips loudly without root, FRR, or the `ferrolb-speaker` binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrolb_e2e::fixture::{self, yaml};
use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::stream::{self, Receiver, StreamReport};
use ferrolb_e2e::{
    net, require_root_and_routers, wait_until, Daemon, Frr, Neighbor, Netns, Router, RouterConfig,
    RouterKind, Switch, CONVERGE,
};

const RTR: &str = "192.0.2.254";
const NODE: &str = "192.0.2.1";
const VIP: &str = "198.51.100.10";
const AS: u32 = 65000;
/// One datagram every 5 ms for 6 s: about 1 s before the SIGTERM, the 1.5 s pause, the
/// restart and its session, and a margin after.
const COUNT: u32 = 1200;
const INTERVAL: Duration = Duration::from_millis(5);

struct Lab {
    rtr: Frr,
    bin: FlbCommand,
    conf: PathBuf,
    // Dropped last: namespaces go after the daemons inside them.
    node: Netns,
    client: Netns,
    _sw: Switch,
    rtr_ns: Netns,
}

fn config_yaml(graceful_restart: bool) -> String {
    yaml(&[
        fixture::pool("pool", &["198.51.100.0/24"]),
        fixture::bgp_advertisement("adv", &["pool"]),
        fixture::bgp_peer("rtr", AS, AS, RTR, "10.255.0.1")
            .set("spec.enableGracefulRestart", graceful_restart),
    ])
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
    fn start(graceful_restart: bool) -> Option<Lab> {
        if !require_root_and_routers(&[RouterKind::Frr]) {
            return None;
        }
        let bin = FlbCommand::find("ferrolb-speaker")?;
        let mut sw = Switch::new().expect("switch");
        let rtr_ns = Netns::new("rtr").expect("netns");
        sw.attach(&rtr_ns, "eth0", &[&format!("{RTR}/24")])
            .expect("attach rtr");
        let node = Netns::new("node-a").expect("netns");
        sw.attach(&node, "eth0", &[&format!("{NODE}/24")])
            .expect("attach node");
        // The VIP is local on the node, as kube-proxy makes it.
        node.add_addrs("lo", &[&format!("{VIP}/32")]).expect("vip");
        let client = stream::client_behind(&rtr_ns).expect("client behind the router");
        let mut cfg = RouterConfig::new(RTR.parse().expect("id"), AS)
            .neighbor(Neighbor::new(NODE.parse().expect("ip"), AS).passive());
        cfg.install_fib = true;
        let conf = node.dir().join("conf");
        std::fs::create_dir(&conf).expect("conf dir");
        write_atomic(&conf, "config.yaml", &config_yaml(graceful_restart));
        write_atomic(
            &conf,
            "svc.yaml",
            &fixture::service_with_endpoints("svc", &[VIP], "Local", &["node-a"]),
        );
        let rtr = Frr::start(&rtr_ns, cfg).expect("frr starts");
        Some(Lab {
            rtr,
            bin,
            conf,
            node,
            client,
            _sw: sw,
            rtr_ns,
        })
    }

    fn speaker(&self) -> Daemon {
        self.bin
            .clone()
            .speaker_standalone(&self.conf, "node-a")
            .spawn_in(&self.node, "speaker")
            .expect("speaker starts")
    }

    /// Whether the router's kernel forwards the VIP to node-a.
    fn forwards(&self) -> bool {
        self.rtr
            .vtysh(&format!("show ip route {VIP}/32"))
            .is_ok_and(|s| s.contains(NODE) && s.contains("bgp"))
    }
}

/// Runs the upgrade under the stream; returns what was lost and the speakers' logs.
fn upgrade(graceful_restart: bool) -> Option<(StreamReport, String)> {
    let lab = Lab::start(graceful_restart)?;
    let mut first = lab.speaker();
    wait_until(
        CONVERGE,
        "the router forwards the VIP",
        || lab.forwards(),
        |f| *f,
    );
    let target = SocketAddr::new(VIP.parse().expect("ip"), 5001);
    let receiver = Receiver::start(&lab.node, target, Duration::from_secs(60)).expect("receiver");
    let sender = stream::send(&lab.client, target, COUNT, INTERVAL).expect("sender");
    wait_until(
        CONVERGE,
        "the stream flows",
        || receiver.count(),
        |n| *n >= 200,
    );
    // The upgrade: SIGTERM, exit, the same command line 1.5 s later (the scenario's pause,
    // not a synchronisation).
    first.stop();
    if graceful_restart {
        // RFC 4724 §4.2: kept, marked stale, until the new session's End-of-RIB.
        let kept = lab
            .rtr
            .route(net(&format!("{VIP}/32")))
            .expect("frr route query");
        assert!(
            kept.as_ref().is_some_and(|r| r.stale),
            "the router did not keep the route as stale at the SIGTERM: {kept:?}\n{}",
            first.log()
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    let second = lab.speaker();
    let (report, _) = stream::collect(sender, vec![receiver]);
    // What the router made of the close (RFC 8538: a Cease other than Hard Reset with N).
    let bgpd = std::fs::read_to_string(lab.rtr_ns.dir().join("frr/bgpd.log")).unwrap_or_default();
    for line in bgpd
        .lines()
        .filter(|l| l.contains("NOTIFICATION") || l.contains("raceful"))
    {
        eprintln!("frr: {line}");
    }
    let logs = format!(
        "--- first ---\n{}\n--- second ---\n{}",
        first.log(),
        second.log()
    );
    if graceful_restart {
        assert!(
            second.log().contains("restart: Graceful Restart peers"),
            "the second speaker did not detect its restart\n{logs}"
        );
    }
    Some((report, logs))
}

#[test]
fn graceful_restart_upgrade_loses_nothing() {
    let Some((report, logs)) = upgrade(true) else {
        return;
    };
    eprintln!(
        "measurement: upgrade with enableGracefulRestart: sent {}, lost {} (gaps {:?})",
        report.sent,
        report.lost(),
        report.gaps
    );
    assert_eq!(report.lost(), 0, "{report:?}\n{logs}");
}

#[test]
fn upgrade_without_graceful_restart_loses_the_gap() {
    let Some((report, logs)) = upgrade(false) else {
        return;
    };
    eprintln!(
        "measurement: upgrade without enableGracefulRestart: sent {}, lost {} ({} ms; gaps {:?})",
        report.sent,
        report.lost(),
        u128::from(report.lost()) * INTERVAL.as_millis(),
        report.gaps
    );
    // The route goes with the Cease and comes back with the new session: at least the
    // 1.5 s pause (300 datagrams) is lost.
    assert!(report.lost() >= 300, "{report:?}\n{logs}");
}
