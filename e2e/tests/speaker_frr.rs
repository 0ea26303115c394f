//! Standalone mode end to end: two nodes, each running its own `ferrolb-speaker` in standalone mode
//! (`--config-dir`), announce to one FRR over iBGP; every assertion reads FRR's own JSON view.
//!
//! ```text
//!   ns "node-a" ferrolb-speaker            ns "rtr" FRR bgpd, AS 65000, maximum-paths (+ibgp)
//!     eth0 192.0.2.1/24 fd00:db8::1/64 ─┐     eth0 192.0.2.254/24 fd00:db8::fe/64
//!   ns "node-b" ferrolb-speaker         ├─ ns "sw" bridge br0 ─┘
//!     eth0 192.0.2.2/24 fd00:db8::2/64 ─┘
//! ```
//!
//! Each node has two BGPPeers (AS 65000 both sides, so iBGP and LOCAL_PREF is visible): one to
//! FRR's IPv4 address and one to its IPv6 address, since a session carries only its peer
//! address's family unless `dualStackAddressFamily` is set (the BGPPeer CRD). FRR is passive;
//! the speakers connect.
//!
//! One topology serves every check, in order, because each start of FRR and two speakers costs
//! seconds. Skips loudly without root, FRR, or the `ferrolb-speaker` binary (build it first:
//! `cargo build -p ferrolb-speaker`; `scripts/test.sh` over the workspace does).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferrolb_e2e::fixture::{self, yaml};
use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::{
    assert_holds, ip, net, require_root_and_routers, wait_for, wait_until, Af, Daemon, Frr,
    Neighbor, Netns, ReceivedRoute, Router, RouterConfig, RouterKind, Switch, CONVERGE, UP,
};
use ipnet::IpNet;

const RTR4: &str = "192.0.2.254";
const RTR6: &str = "fd00:db8::fe";
const AS: u32 = 65000;
/// The speakers poll their directory every 50 ms; this window covers 20 polls.
const HOLD_WINDOW: Duration = Duration::from_secs(1);

/// One node of the lab: its namespace, addresses, config directory and daemon.
struct Node {
    name: &'static str,
    v4: &'static str,
    v6: &'static str,
    router_id: &'static str,
    ns: Netns,
    conf: PathBuf,
    speaker: Option<Daemon>,
}

const NODES: [(&str, &str, &str, &str); 2] = [
    ("node-a", "192.0.2.1", "fd00:db8::1", "10.255.0.1"),
    ("node-b", "192.0.2.2", "fd00:db8::2", "10.255.0.2"),
];

/// Pools, advertisements and the two BGPPeers of one node. `pool` gets communities and
/// LOCAL_PREF; `agg` is announced aggregated to /24; `pool6` is IPv6.
fn config_yaml(router_id: &str) -> String {
    yaml(&[
        fixture::pool("pool", &["198.51.100.0/24"]),
        fixture::pool("agg", &["203.0.113.0/24"]),
        fixture::pool("pool6", &["2001:db8:ff::/64"]),
        fixture::bgp_advertisement("adv", &["pool"])
            .set(
                "spec.communities",
                serde_json::json!(["65000:100", "65000:200"]),
            )
            .set("spec.localPref", 150),
        fixture::bgp_advertisement("adv-agg", &["agg"]).set("spec.aggregationLength", 24),
        fixture::bgp_advertisement("adv6", &["pool6"]),
        fixture::bgp_peer("rtr4", AS, AS, RTR4, router_id),
        fixture::bgp_peer("rtr6", AS, AS, RTR6, router_id),
    ])
}

/// A LoadBalancer Service with `vip` and one ready endpoint on each of `nodes`.
fn service_yaml(name: &str, vip: &str, local: bool, nodes: &[&str]) -> String {
    let policy = if local { "Local" } else { "Cluster" };
    fixture::service_with_endpoints(name, &[vip], policy, nodes)
}

/// Write then rename, as config management does, so the poller never reads half a file.
fn write_atomic(dir: &Path, name: &str, text: &str) {
    let tmp = dir
        .parent()
        .expect("conf has a parent")
        .join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write tmp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename into conf");
}

struct Lab {
    rtr: Frr,
    nodes: Vec<Node>,
    bin: FlbCommand,
    // Dropped last: namespaces go after the daemons inside them.
    _sw: Switch,
    _rtr_ns: Netns,
}

impl Lab {
    fn start() -> Option<Lab> {
        if !require_root_and_routers(&[RouterKind::Frr]) {
            return None;
        }
        let bin = FlbCommand::find("ferrolb-speaker")?;
        let mut sw = Switch::new().expect("switch");
        let rtr_ns = Netns::new("rtr").expect("netns");
        sw.attach(
            &rtr_ns,
            "eth0",
            &[&format!("{RTR4}/24"), &format!("{RTR6}/64")],
        )
        .expect("attach rtr");
        let mut cfg = RouterConfig::new(RTR4.parse().expect("id"), AS);
        let mut nodes = Vec::new();
        for (name, v4, v6, router_id) in NODES {
            let ns = Netns::new(name).expect("netns");
            sw.attach(&ns, "eth0", &[&format!("{v4}/24"), &format!("{v6}/64")])
                .expect("attach node");
            cfg = cfg
                .neighbor(Neighbor::new(ip(v4), AS).passive())
                .neighbor(Neighbor::new(ip(v6), AS).passive());
            let conf = ns.dir().join("conf");
            std::fs::create_dir(&conf).expect("conf dir");
            write_atomic(&conf, "config.yaml", &config_yaml(router_id));
            nodes.push(Node {
                name,
                v4,
                v6,
                router_id,
                ns,
                conf,
                speaker: None,
            });
        }
        let rtr = Frr::start(&rtr_ns, cfg).expect("frr starts");
        Some(Lab {
            rtr,
            nodes,
            bin,
            _sw: sw,
            _rtr_ns: rtr_ns,
        })
    }

    /// Writes `name` into every node's config directory.
    fn write_all(&self, name: &str, text: &str) {
        for n in &self.nodes {
            write_atomic(&n.conf, name, text);
        }
    }

    fn remove_all(&self, name: &str) {
        for n in &self.nodes {
            std::fs::remove_file(n.conf.join(name)).expect("rm service file");
        }
    }

    fn start_speakers(&mut self) {
        for n in &mut self.nodes {
            let speaker = self.bin.clone().speaker_standalone(&n.conf, n.name);
            n.speaker = Some(speaker.spawn_in(&n.ns, "speaker").expect("speaker starts"));
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let log = n.speaker.as_ref().map(Daemon::log).unwrap_or_default();
                format!("--- {} ({}) ---\n{log}", n.name, n.router_id)
            })
            .collect()
    }

    /// FRR's IPv4 and IPv6 tables: prefix -> selected next hops.
    fn table(&self) -> BTreeMap<IpNet, Vec<IpAddr>> {
        let mut all = BTreeMap::new();
        for af in [Af::V4, Af::V6] {
            for r in self.rtr.routes(af).expect("frr routes") {
                all.insert(r.prefix, r.next_hops);
            }
        }
        all
    }

    fn route(&self, prefix: &str) -> Option<ReceivedRoute> {
        self.rtr.route(net(prefix)).expect("frr route query")
    }

    /// Waits until FRR's whole table is exactly `want`; panics with the last table and logs.
    fn wait_table(&self, what: &str, want: &BTreeMap<IpNet, Vec<IpAddr>>) {
        let got = wait_until(CONVERGE, what, || self.table(), |t| t == want);
        assert_eq!(&got, want, "{what}\n{}", self.logs());
    }
}

fn wait_for_log(node: &Node, needle: &str) {
    let speaker = node.speaker.as_ref().expect("speaker running");
    if let Err(e) = speaker.wait_log(CONVERGE, needle) {
        panic!("{}: {e}", node.name);
    }
}

/// Probes back to back (each probe is a `vtysh` query, tens of ms, which paces the loop) until
/// `done` or until `limit` after `start`; returns the time from `start` to the end of the first
/// probe that satisfied `done`, that probe's own duration (the measurement's resolution) and its
/// observation. For a measurement only: the caller asserts on the observation, never the time.
fn time_until<O>(
    start: Instant,
    limit: Duration,
    mut observe: impl FnMut() -> O,
    done: impl Fn(&O) -> bool,
) -> (Duration, Duration, O) {
    loop {
        let before = Instant::now();
        let seen = observe();
        let probe = before.elapsed();
        if done(&seen) || start.elapsed() >= limit {
            return (start.elapsed(), probe, seen);
        }
    }
}

fn hops(addrs: &[&str]) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
    v.sort();
    v
}

fn table(rows: &[(&str, &[&str])]) -> BTreeMap<IpNet, Vec<IpAddr>> {
    rows.iter().map(|(p, h)| (net(p), hops(h))).collect()
}

const BOTH4: &[&str] = &["192.0.2.1", "192.0.2.2"];
const BOTH6: &[&str] = &["fd00:db8::1", "fd00:db8::2"];
const A4: &[&str] = &["192.0.2.1"];
const A6: &[&str] = &["fd00:db8::1"];

/// The standalone-mode checklist against FRR, in one topology:
/// ECMP from two nodes; externalTrafficPolicy Local; communities and LOCAL_PREF; aggregation to
/// /24; IPv6 /128 over its own session; an unreadable config dir keeps routes; one Service file
/// removed withdraws only that Service; SIGTERM withdraws the node's next hop (time reported).
#[test]
fn two_speakers_announce_to_frr_through_the_whole_service_lifecycle() {
    let Some(mut lab) = Lab::start() else {
        return;
    };
    lab.write_all(
        "svc-web.yaml",
        &service_yaml("web", "198.51.100.10", false, &["node-a", "node-b"]),
    );
    lab.write_all(
        "svc-local.yaml",
        &service_yaml("local", "198.51.100.20", true, &["node-a", "node-b"]),
    );
    lab.write_all(
        "svc-agg.yaml",
        &service_yaml("agg", "203.0.113.7", false, &["node-a"]),
    );
    lab.write_all(
        "svc-v6.yaml",
        &service_yaml("v6", "2001:db8:ff::7", false, &["node-a", "node-b"]),
    );
    lab.start_speakers();
    for n in &lab.nodes {
        lab.rtr.wait_established(ip(n.v4), UP);
        lab.rtr.wait_established(ip(n.v6), UP);
    }

    // Ready endpoints on both nodes: each /32 with both nodes as next hops (ECMP); the
    // aggregated pool as its /24 (aggregationLength 24); the IPv6 VIP as a /128 over the IPv6
    // sessions (RFC 4760 MP_REACH_NLRI).
    lab.wait_table(
        "FRR holds every VIP from both nodes",
        &table(&[
            ("198.51.100.10/32", BOTH4),
            ("198.51.100.20/32", BOTH4),
            ("203.0.113.0/24", BOTH4),
            ("2001:db8:ff::7/128", BOTH6),
        ]),
    );

    // The BGPAdvertisement's communities and localPref, as FRR's best path shows them (iBGP
    // carries LOCAL_PREF, RFC 4271 §5.1.5).
    let web = lab.route("198.51.100.10/32").expect("web route");
    assert_eq!(web.communities, ["65000:100", "65000:200"]);
    assert_eq!(web.local_pref, Some(150));
    let agg = lab.route("203.0.113.0/24").expect("agg route");
    assert!(agg.communities.is_empty(), "{agg:?}");

    // externalTrafficPolicy Local: node B's endpoint gone -> only node A announces.
    lab.write_all(
        "svc-local.yaml",
        &service_yaml("local", "198.51.100.20", true, &["node-a"]),
    );
    lab.wait_table(
        "198.51.100.20/32 only from node A",
        &table(&[
            ("198.51.100.10/32", BOTH4),
            ("198.51.100.20/32", A4),
            ("203.0.113.0/24", BOTH4),
            ("2001:db8:ff::7/128", BOTH6),
        ]),
    );
    let steady = lab.table();

    // Node A's config dir renamed away, node B's replaced by a regular file: each logs an
    // error and nothing is withdrawn (a source outage is not a delete, docs/speaker.md).
    let a = &lab.nodes[0];
    let b = &lab.nodes[1];
    let away_a = a.ns.dir().join("conf.away");
    let away_b = b.ns.dir().join("conf.away");
    std::fs::rename(&a.conf, &away_a).expect("mv conf away");
    std::fs::rename(&b.conf, &away_b).expect("mv conf away");
    std::fs::write(&b.conf, "not a directory\n").expect("file in place of conf");
    for n in &lab.nodes {
        wait_for_log(n, "configuration source unreadable");
    }
    assert_holds(
        HOLD_WINDOW,
        "FRR keeps every route while both sources are unreadable",
        || lab.table(),
        |t| *t == steady,
    );
    std::fs::rename(&away_a, &a.conf).expect("mv conf back");
    std::fs::remove_file(&b.conf).expect("rm the file");
    std::fs::rename(&away_b, &b.conf).expect("mv conf back");
    for n in &lab.nodes {
        wait_for_log(n, "configuration source readable again");
    }

    // One Service file removed from readable directories: only that Service is withdrawn.
    lab.remove_all("svc-agg.yaml");
    lab.wait_table(
        "203.0.113.0/24 withdrawn, the rest unchanged",
        &table(&[
            ("198.51.100.10/32", BOTH4),
            ("198.51.100.20/32", A4),
            ("2001:db8:ff::7/128", BOTH6),
        ]),
    );

    // SIGTERM to node B: Cease 6/2 (RFC 4486 §4) on both sessions, so FRR drops B's next hops
    // at once rather than after the hold time. Measured, reported, not asserted (a timing is
    // never a test assertion).
    let b = lab.nodes[1].speaker.as_ref().expect("speaker b");
    let want = table(&[
        ("198.51.100.10/32", A4),
        ("198.51.100.20/32", A4),
        ("2001:db8:ff::7/128", A6),
    ]);
    let t0 = Instant::now();
    ferrolb_e2e::signal(b.pid(), "TERM").expect("SIGTERM node B");
    let (elapsed, probe, got) = time_until(t0, CONVERGE, || lab.table(), |t| *t == want);
    assert_eq!(got, want, "{}", lab.logs());
    eprintln!(
        "MEASURED: SIGTERM to node B -> FRR shows only node A's next hops after {} ms \
         (resolution: one probe = two vtysh queries, the last took {} ms)",
        elapsed.as_millis(),
        probe.as_millis()
    );
    // FRR saw the reason: Cease / Administrative Shutdown with the RFC 9003 message on both of
    // node B's sessions (a TCP reset or hold-timer expiry would show otherwise).
    for peer in [lab.nodes[1].v4, lab.nodes[1].v6] {
        let n = lab
            .rtr
            .vtysh_json(&format!("show bgp neighbors {peer} json"))
            .expect("frr neighbor json");
        let n = &n[peer];
        assert_eq!(n["lastErrorCodeSubcode"], "0602", "{peer}: {n:#}");
        assert_eq!(
            n["lastResetDueTo"], "BGP Notification received",
            "{peer}: {n:#}"
        );
        assert_eq!(
            n["lastShutdownDescription"], "ferrolb-speaker shutting down",
            "{peer}: {n:#}"
        );
    }
    let b = lab.nodes[1].speaker.as_mut().expect("speaker b");
    let status = wait_for(CONVERGE, "node B's speaker exits", || b.exit_status());
    assert!(status.contains("exit status: 0"), "{status}\n{}", b.log());
}

/// `dualStackAddressFamily: true` on a BGPPeer with an IPv4 address: the IPv6 VIP goes over the
/// IPv4 session as RFC 4760 MP_REACH_NLRI and FRR holds its /128 beside the IPv4 /32, with the
/// Node's IPv6 InternalIP as next hop (RFC 2545 §3; `announce::bgp` rule 8).
///
/// Regression test: the speaker used to ask for the session's local address (IPv4 here), so
/// crates/bgp had no IPv6 next hop and skipped the prefix while the report said "announced".
#[test]
fn dual_stack_peer_carries_an_ipv6_vip_over_the_ipv4_session() {
    if !require_root_and_routers(&[RouterKind::Frr]) {
        return;
    }
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let (node, rtr_ns) = Netns::pair("node", "rtr").expect("namespaces");
    // PAIR_A / PAIR_B: 192.0.2.1 + fd00:db8::1 (node), 192.0.2.2 + fd00:db8::2 (router).
    let rtr = Frr::start(
        &rtr_ns,
        RouterConfig::new("192.0.2.2".parse().expect("id"), AS).neighbor(
            Neighbor::new(ip("192.0.2.1"), AS)
                .passive()
                .families(&[Af::V4, Af::V6]),
        ),
    )
    .expect("frr starts");
    let conf = node.dir().join("conf");
    std::fs::create_dir(&conf).expect("conf dir");
    write_atomic(
        &conf,
        "config.yaml",
        &yaml(&[
            fixture::pool("pool", &["198.51.100.0/24", "2001:db8:ff::/64"]),
            fixture::bgp_advertisement("adv", &["pool"]),
            fixture::bgp_peer("rtr", AS, AS, "192.0.2.2", "10.255.0.1")
                .set("spec.dualStackAddressFamily", true),
            fixture::node("node-a", &["192.0.2.1", "fd00:db8::1"]),
        ]),
    );
    write_atomic(
        &conf,
        "svc-v4.yaml",
        &service_yaml("v4", "198.51.100.30", false, &["node-a"]),
    );
    write_atomic(
        &conf,
        "svc-v6.yaml",
        &service_yaml("v6", "2001:db8:ff::30", false, &["node-a"]),
    );
    let speaker = bin
        .speaker_standalone(&conf, "node-a")
        .spawn_in(&node, "speaker")
        .expect("speaker starts");
    rtr.wait_established(ip("192.0.2.1"), UP);
    let prefixes = |af| -> Vec<IpNet> {
        rtr.routes(af)
            .expect("frr routes")
            .into_iter()
            .map(|r| r.prefix)
            .collect()
    };
    let v6 = wait_until(
        CONVERGE,
        "FRR holds the IPv6 /128 from the IPv4 session",
        || prefixes(Af::V6),
        |p| !p.is_empty(),
    );
    assert_eq!(v6, [net("2001:db8:ff::30/128")], "{}", speaker.log());
    // FRR may hold the path before zebra has resolved its next hop (the IPv6 address can still
    // be tentative), so wait for it to be selected rather than reading it once.
    let v6_next_hops = wait_until(
        CONVERGE,
        "FRR selects the /128 via the Node's IPv6 InternalIP",
        || {
            rtr.route(net("2001:db8:ff::30/128"))
                .expect("frr route query")
                .map(|r| r.next_hops)
        },
        |hops| hops.as_deref() == Some(&[ip("fd00:db8::1")][..]),
    );
    assert_eq!(
        v6_next_hops,
        Some(vec![ip("fd00:db8::1")]),
        "{}",
        speaker.log()
    );
    assert_eq!(
        prefixes(Af::V4),
        [net("198.51.100.30/32")],
        "{}",
        speaker.log()
    );
}
