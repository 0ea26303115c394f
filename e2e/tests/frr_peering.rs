//! FRR-mode peering options of a BGPPeer, each against FRR in network namespaces, with our
//! speaker in standalone mode: `localASN` (FRR's `local-as N no-prepend replace-as`), `vrf`
//! (the session bound to a Linux VRF device; a missing device leaves that peer down, clearly,
//! and others up) and `connectTime`.
//!
//! ```text
//!   ns "node" ferrolb-speaker                ns "rtr" FRR bgpd AS 65000
//!     eth0 192.0.2.1/24 (in VRF "red" for the VRF test) ── eth0 192.0.2.2/24
//! ```
//!
//! Every assertion reads FRR's own JSON view: the session Established, the VIP with the node's
//! address as next hop and the expected AS_PATH, withdrawn when the Service goes. Skips loudly
//! without root, FRR, the `ferrolb-speaker` binary, or (VRF test) kernel VRF support.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrolb_e2e::fixture::{self, yaml, Object};
use ferrolb_e2e::ours::FlbCommand;
use ferrolb_e2e::{
    ip, net, require_root_and_routers, wait_until, Daemon, Frr, Neighbor, Netns, ReceivedRoute,
    Router, RouterConfig, RouterKind, CONVERGE, UP,
};

const NODE: &str = "192.0.2.1";
const RTR: &str = "192.0.2.2";
const RTR_AS: u32 = 65000;
const MY_AS: u32 = 64500;
const LOCAL_AS: u32 = 64600;
const VIP: &str = "198.51.100.40";

/// The node and router namespaces, FRR, and the node's config directory.
struct Lab {
    rtr: Frr,
    node: Netns,
    conf: PathBuf,
    bin: FlbCommand,
    _rtr_ns: Netns,
}

impl Lab {
    /// Namespaces and FRR with one passive neighbor, `NODE` in `remote_as`; `setup` runs on the
    /// node namespace before FRR starts and may skip the test (returns false).
    fn start(remote_as: u32, setup: impl FnOnce(&Netns) -> bool) -> Option<Lab> {
        Lab::start_with(Neighbor::new(ip(NODE), remote_as).passive(), setup)
    }

    /// [`Lab::start`] with FRR's one neighbor given.
    fn start_with(neighbor: Neighbor, setup: impl FnOnce(&Netns) -> bool) -> Option<Lab> {
        if !require_root_and_routers(&[RouterKind::Frr]) {
            return None;
        }
        let bin = FlbCommand::find("ferrolb-speaker")?;
        let (node, rtr_ns) = Netns::pair("node", "rtr").expect("namespaces");
        if !setup(&node) {
            return None;
        }
        let rtr = Frr::start(
            &rtr_ns,
            RouterConfig::new(RTR.parse().expect("id"), RTR_AS).neighbor(neighbor),
        )
        .expect("frr starts");
        let conf = node.dir().join("conf");
        std::fs::create_dir(&conf).expect("conf dir");
        Some(Lab {
            rtr,
            node,
            conf,
            bin,
            _rtr_ns: rtr_ns,
        })
    }

    fn write(&self, name: &str, text: &str) {
        write_atomic(&self.conf, name, text);
    }

    /// Writes the pool, advertisement, `peers` and a Service with `VIP`, then starts the
    /// speaker.
    fn run(&self, peers: Vec<Object>) -> Daemon {
        let mut objects = vec![
            fixture::pool("pool", &["198.51.100.0/24"]),
            fixture::bgp_advertisement("adv", &["pool"]),
            fixture::node("node-a", &[NODE]),
        ];
        objects.extend(peers);
        self.write("config.yaml", &yaml(&objects));
        self.write(
            "svc.yaml",
            &fixture::service_with_endpoints("web", &[VIP], "Cluster", &["node-a"]),
        );
        self.bin
            .clone()
            .speaker_standalone(&self.conf, "node-a")
            .spawn_in(&self.node, "speaker")
            .expect("speaker starts")
    }

    /// Waits for FRR to hold the VIP's /32 and returns it.
    fn wait_vip(&self, speaker: &Daemon) -> ReceivedRoute {
        self.wait_vip_within(CONVERGE, speaker)
    }

    fn wait_vip_within(&self, limit: Duration, speaker: &Daemon) -> ReceivedRoute {
        let got = wait_until(
            limit,
            "FRR holds the VIP",
            || {
                self.rtr
                    .route(net(&format!("{VIP}/32")))
                    .expect("frr route")
            },
            |r| r.as_ref().is_some_and(|r| !r.next_hops.is_empty()),
        );
        got.unwrap_or_else(|| panic!("no route for {VIP}\n{}", speaker.log()))
    }

    /// Removes the Service and waits for FRR to drop the VIP.
    fn withdraw_and_wait(&self, speaker: &Daemon) {
        std::fs::remove_file(self.conf.join("svc.yaml")).expect("rm svc");
        let got = wait_until(
            CONVERGE,
            "FRR withdrew the VIP",
            || {
                self.rtr
                    .route(net(&format!("{VIP}/32")))
                    .expect("frr route")
            },
            Option::is_none,
        );
        assert!(got.is_none(), "still announced: {got:?}\n{}", speaker.log());
    }
}

/// Write then rename, so the poller never reads half a file.
fn write_atomic(dir: &Path, name: &str, text: &str) {
    let tmp = dir
        .parent()
        .expect("conf has a parent")
        .join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write tmp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename into conf");
}

fn peer(name: &str) -> Object {
    fixture::bgp_peer(name, MY_AS, RTR_AS, RTR, "10.255.0.1")
}

/// `localASN`: FRR knows the node as AS 64600 (not myASN 64500) and the VIP's AS_PATH is that
/// AS alone (`replace-as`: myASN is not prepended). `connectTime` is set too: the peer is
/// honoured with it (the retry interval itself is covered by crates/bgp's unit tests).
#[test]
fn local_asn_is_the_session_as_in_the_open_and_the_as_path() {
    let Some(lab) = Lab::start(LOCAL_AS, |_| true) else {
        return;
    };
    let speaker = lab.run(vec![peer("rtr")
        .set("spec.localASN", LOCAL_AS)
        .set("spec.connectTime", "2s")]);
    lab.rtr.wait_established(ip(NODE), UP);
    let route = lab.wait_vip(&speaker);
    assert_eq!(route.next_hops, [ip(NODE)], "{}", speaker.log());
    assert_eq!(route.as_path, [LOCAL_AS], "{}", speaker.log());
    let n = lab
        .rtr
        .vtysh_json(&format!("show bgp neighbors {NODE} json"))
        .expect("frr neighbor json");
    assert_eq!(n[NODE]["remoteAs"], LOCAL_AS, "{n:#}");
    assert!(
        !speaker.log().contains("is ignored"),
        "no ignored-field warning for localASN or connectTime:\n{}",
        speaker.log()
    );
    lab.withdraw_and_wait(&speaker);
}

/// A BGPPeer in a VRF this node does not have: that peer stays down with a clear log line
/// and never connects from the default VRF; another BGPPeer to the same router is unaffected.
#[test]
fn missing_vrf_leaves_that_peer_down_and_others_up() {
    let Some(lab) = Lab::start(MY_AS, |_| true) else {
        return;
    };
    let speaker = lab.run(vec![peer("plain"), peer("in-vrf").set("spec.vrf", "red")]);
    lab.rtr.wait_established(ip(NODE), UP);
    let route = lab.wait_vip(&speaker);
    assert_eq!(route.next_hops, [ip(NODE)], "{}", speaker.log());
    assert_eq!(route.as_path, [MY_AS]);
    if let Err(e) = speaker.wait_log(CONVERGE, "does not exist on this node") {
        panic!("{e}\n{}", speaker.log());
    }
    if let Err(e) = speaker.wait_log(CONVERGE, "connect failed: the VRF device is missing") {
        panic!("{e}\n{}", speaker.log());
    }
    // The VRF peer never opened a session from the default VRF: FRR saw one session only, the
    // plain peer's, and it is still the first one (a second connection from the same address
    // would have been a collision and reset it).
    let n = lab
        .rtr
        .vtysh_json(&format!("show bgp neighbors {NODE} json"))
        .expect("frr neighbor json");
    assert_eq!(n[NODE]["bgpState"], "Established", "{n:#}");
    assert_eq!(n[NODE]["connectionsEstablished"], 1, "{n:#}");
    lab.withdraw_and_wait(&speaker);
}

/// A BGPPeer with `vrf: red`, the node's only link to the router enslaved to VRF red: the
/// default VRF has no route to the router, so the session comes up only if it is made in the
/// VRF; the VIP's next hop is the node's address in the VRF.
#[test]
fn vrf_session_is_made_in_the_vrf() {
    let mut vrf_supported = true;
    let Some(lab) = Lab::start(MY_AS, |node| {
        vrf_supported = node.vrf("red", 10, &["eth0"]).expect("ip link add vrf");
        vrf_supported
    }) else {
        if !vrf_supported {
            eprintln!(
                "\n**********\nSKIPPED: vrf_session_is_made_in_the_vrf: the kernel has no VRF \
                 support (ip link add type vrf: Unknown device type)\n**********\n"
            );
        }
        return;
    };
    let speaker = lab.run(vec![peer("rtr").set("spec.vrf", "red")]);
    lab.rtr.wait_established(ip(NODE), UP);
    let route = lab.wait_vip(&speaker);
    assert_eq!(route.next_hops, [ip(NODE)], "{}", speaker.log());
    assert_eq!(route.as_path, [MY_AS]);
    lab.withdraw_and_wait(&speaker);
}

/// The IPv6 link-local address of `ifname` in `ns`.
fn link_local(ns: &Netns, ifname: &str) -> IpAddr {
    let out = ns
        .ip(&["-6", "-o", "addr", "show", "dev", ifname, "scope", "link"])
        .expect("ip addr");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| w.strip_suffix("/64").and_then(|a| a.parse().ok()))
        .unwrap_or_else(|| panic!("no link-local address on {ifname}: {text}"))
}

/// Unnumbered eBGP as data-centre fabrics run it: FRR's `neighbor eth0 interface remote-as
/// external`, our BGPPeer with `interface: eth0` and no `peerAddress`. The speaker finds FRR's
/// link-local address from its Router Advertisements and FRR finds ours from our RAs; the IPv4
/// VIP arrives with our link-local address as next hop (RFC 8950 Extended Next Hop Encoding).
#[test]
fn unnumbered_session_announces_ipv4_with_the_link_local_next_hop() {
    let Some(lab) = Lab::start_with(Neighbor::unnumbered("eth0"), |_| true) else {
        return;
    };
    let node_ll = link_local(&lab.node, "eth0");
    let speaker = lab.run(vec![peer("fabric")
        .set("spec.peerAddress", serde_json::Value::Null)
        .set("spec.interface", "eth0")]);
    let state = wait_until(
        UP,
        "FRR's unnumbered session on eth0 Established",
        || {
            lab.rtr
                .vtysh_json("show bgp neighbors eth0 json")
                .ok()
                .and_then(|n| n["eth0"]["bgpState"].as_str().map(str::to_owned))
        },
        |s| s.as_deref() == Some("Established"),
    );
    assert_eq!(state.as_deref(), Some("Established"), "{}", speaker.log());
    let route = lab.wait_vip_within(UP, &speaker);
    assert_eq!(route.as_path, [MY_AS], "{}", speaker.log());
    assert_eq!(route.next_hops, [node_ll], "{route:?}\n{}", speaker.log());
    assert!(
        !speaker.log().contains("is ignored"),
        "no ignored-field warning for spec.interface:\n{}",
        speaker.log()
    );
    lab.withdraw_and_wait(&speaker);
}

/// The same unnumbered BGPPeer against BIRD 2 (`protocol radv` on the link and a dynamic BGP
/// protocol for any link-local peer there, IPv4 with extended next hop): BIRD holds the VIP
/// via our link-local address, and drops it when the Service goes.
#[test]
fn unnumbered_session_with_bird2() {
    if !require_root_and_routers(&[RouterKind::Bird]) {
        return;
    }
    let Some(bin) = FlbCommand::find("ferrolb-speaker") else {
        return;
    };
    let (node, rtr_ns) = Netns::pair("node", "rtr").expect("namespaces");
    let rtr = ferrolb_e2e::Bird::start(
        &rtr_ns,
        RouterConfig::new(RTR.parse().expect("id"), RTR_AS).neighbor(Neighbor::unnumbered("eth0")),
    )
    .expect("bird starts");
    let node_ll = link_local(&node, "eth0");
    let conf = node.dir().join("conf");
    std::fs::create_dir(&conf).expect("conf dir");
    write_atomic(
        &conf,
        "config.yaml",
        &yaml(&[
            fixture::pool("pool", &["198.51.100.0/24"]),
            fixture::bgp_advertisement("adv", &["pool"]),
            fixture::node("node-a", &[NODE]),
            peer("fabric")
                .set("spec.peerAddress", serde_json::Value::Null)
                .set("spec.interface", "eth0"),
        ]),
    );
    write_atomic(
        &conf,
        "svc.yaml",
        &fixture::service_with_endpoints("web", &[VIP], "Cluster", &["node-a"]),
    );
    let speaker = bin
        .speaker_standalone(&conf, "node-a")
        .spawn_in(&node, "speaker")
        .expect("speaker starts");
    let vip = net(&format!("{VIP}/32"));
    let route = wait_until(
        UP,
        "BIRD holds the VIP",
        || rtr.route(vip).expect("bird route"),
        |r| r.as_ref().is_some_and(|r| !r.next_hops.is_empty()),
    );
    let route = route.unwrap_or_else(|| panic!("no route for {VIP}\n{}", speaker.log()));
    assert_eq!(route.as_path, [MY_AS], "{}", speaker.log());
    assert_eq!(route.next_hops, [node_ll], "{route:?}\n{}", speaker.log());
    std::fs::remove_file(conf.join("svc.yaml")).expect("rm svc");
    let gone = wait_until(
        CONVERGE,
        "BIRD withdrew the VIP",
        || rtr.route(vip).expect("bird route"),
        Option::is_none,
    );
    assert!(
        gone.is_none(),
        "still announced: {gone:?}\n{}",
        speaker.log()
    );
}
