//! The speaker behaves as MetalLB's does where a user switching would notice: which nodes
//! announce (cordon, Ready, NetworkUnavailable, the exclude label) in BGP and Layer 2, which
//! interfaces answer in Layer 2, and the TTL of eBGP sessions.

mod announce_fixtures;

use std::collections::BTreeSet;

use announce_fixtures::*;
use ferrolb_api::model::Config;
use ferrolb_speaker::announce::bgp::compute_bgp;
use ferrolb_speaker::announce::input::{Cluster, LABEL_EXCLUDE_FROM_LB};
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::l2::election::compute_l2;

/// Nodes n1..n3, each with a ready endpoint of ns/web (192.0.2.10); pool v4 advertised in both
/// BGP (to r1) and Layer 2. The L2 winner for 192.0.2.10 among all three is n2
/// (`announce_l2.rs`, golden ranking).
fn base() -> (Config, Cluster) {
    let config = config(
        vec![pool("v4", "192.0.2.0/24")],
        vec![peer("r1", "198.51.100.1", 64501)],
        vec![bgp_adv("a", &["v4"])],
        vec![l2_adv("l2", &["v4"])],
    );
    let cluster = cluster(
        vec![svc("web", &["192.0.2.10"])],
        vec![slice(
            "web",
            "a",
            vec![
                ep("10.0.0.1", "n1"),
                ep("10.0.0.2", "n2"),
                ep("10.0.0.3", "n3"),
            ],
        )],
        vec![node("n1", &[]), node("n2", &[]), node("n3", &[])],
    );
    (config, cluster)
}

fn node_mut<'c>(
    cluster: &'c mut Cluster,
    name: &str,
) -> &'c mut ferrolb_speaker::announce::input::Node {
    cluster.nodes.get_mut(name).expect("known node")
}

/// Whether `node`'s speaker sends 192.0.2.10 to r1.
fn bgp_announces(config: &Config, cluster: &Cluster, node: &str) -> bool {
    let plan = compute_bgp(config, cluster, &SpeakerOptions::for_node(node));
    plan.desired
        .peers
        .get("r1")
        .is_some_and(|p| !p.routes.is_empty())
}

/// The node that answers for 192.0.2.10, checking every speaker agrees.
fn l2_owner(config: &Config, cluster: &Cluster, live: Option<&BTreeSet<String>>) -> Option<String> {
    let owners: Vec<String> = ["n1", "n2", "n3"]
        .into_iter()
        .filter(|n| {
            compute_l2(config, cluster, &SpeakerOptions::for_node(*n), live)
                .desired
                .vips
                .contains_key(&ip("192.0.2.10"))
        })
        .map(str::to_string)
        .collect();
    assert!(owners.len() <= 1, "two owners: {owners:?}");
    owners.into_iter().next()
}

#[test]
fn a_cordoned_node_keeps_announcing_over_bgp() {
    let (config, mut cluster) = base();
    node_mut(&mut cluster, "n1").unschedulable = true;
    assert!(
        bgp_announces(&config, &cluster, "n1"),
        "a cordon stops new Pods only; MetalLB keeps announcing"
    );
}

#[test]
fn a_cordoned_node_keeps_its_layer2_vips() {
    let (config, mut cluster) = base();
    assert_eq!(l2_owner(&config, &cluster, None).as_deref(), Some("n2"));
    node_mut(&mut cluster, "n2").unschedulable = true;
    assert_eq!(
        l2_owner(&config, &cluster, None).as_deref(),
        Some("n2"),
        "cordoning the owner moves nothing"
    );
}

#[test]
fn a_not_ready_node_keeps_announcing_over_bgp() {
    let (config, mut cluster) = base();
    node_mut(&mut cluster, "n1").ready = Some(false);
    assert!(bgp_announces(&config, &cluster, "n1"));
}

#[test]
fn a_not_ready_node_whose_speaker_is_live_keeps_its_layer2_vips() {
    let (config, mut cluster) = base();
    node_mut(&mut cluster, "n2").ready = Some(false);
    let all: BTreeSet<String> = ["n1", "n2", "n3"].map(String::from).into();
    assert_eq!(
        l2_owner(&config, &cluster, Some(&all)).as_deref(),
        Some("n2"),
        "MetalLB's Layer 2 liveness is memberlist's, not the Ready condition"
    );
    assert_eq!(
        l2_owner(&config, &cluster, None).as_deref(),
        Some("n2"),
        "without liveness tracking every node is a candidate, Ready or not"
    );
    let without_n2: BTreeSet<String> = ["n1", "n3"].map(String::from).into();
    assert_eq!(
        l2_owner(&config, &cluster, Some(&without_n2)).as_deref(),
        Some("n3"),
        "a speaker that left the gossip loses its VIPs"
    );
}

#[test]
fn network_unavailable_and_the_exclude_label_still_withdraw_in_both_modes() {
    for (what, mutate) in [
        (
            "NetworkUnavailable",
            (|n| n.network_unavailable = true) as fn(&mut ferrolb_speaker::announce::input::Node),
        ),
        ("exclude label", |n| {
            n.labels.insert(LABEL_EXCLUDE_FROM_LB.into(), String::new());
        }),
    ] {
        let (config, mut cluster) = base();
        mutate(node_mut(&mut cluster, "n2"));
        assert!(!bgp_announces(&config, &cluster, "n2"), "{what}: BGP");
        assert_eq!(
            l2_owner(&config, &cluster, None).as_deref(),
            Some("n3"),
            "{what}: Layer 2 moves to the next node"
        );
    }
}

/// The TTL an eBGP session to `peer` sends with (`None` = the kernel's default).
fn ebgp_ttl(peer: &ferrolb_api::model::BgpPeer) -> Option<u8> {
    let c = ferrolb_speaker::backend::bgp::peer_config(peer);
    let ibgp = c.peer_as == Some(peer.my_asn);
    assert!(!ibgp, "an eBGP peer");
    ferrolb_bgp::net::session_ttl(ibgp, c.ebgp_multihop, c.ebgp_system_ttl)
}

#[test]
fn ebgp_without_multihop_keeps_the_kernel_default_ttl() {
    let p = peer("r1", "198.51.100.1", 64501);
    assert_eq!(
        ebgp_ttl(&p),
        None,
        "MetalLB's native speaker sets no TTL: a router two hops away must still peer"
    );
}

#[test]
fn ebgp_multihop_sends_with_ttl_255() {
    let mut p = peer("r1", "198.51.100.1", 64501);
    p.ebgp_multihop = true;
    assert_eq!(ebgp_ttl(&p), Some(255));
}

#[test]
fn layer2_without_interfaces_answers_on_every_usable_interface_whatever_its_subnet() {
    use ferrolb_arp::iface::InterfaceInfo;
    use ferrolb_speaker::advertiser::{Interfaces, L2Desired, L2Vip};
    use ferrolb_speaker::backend::l2::responder_vips;

    let iface = |name: &str, addrs: &[&str]| InterfaceInfo {
        name: name.into(),
        up: true,
        broadcast: true,
        addrs: addrs.iter().map(|a| a.parse().expect("net")).collect(),
        ..InterfaceInfo::default()
    };
    let node = [
        InterfaceInfo {
            loopback: true,
            broadcast: false,
            ..iface("lo", &["127.0.0.1/8"])
        },
        iface("eth0", &["10.0.0.5/24"]),
        iface("eth1", &["198.51.100.5/24"]),
        // kube-proxy's IPVS dummy holds every VIP but is NOARP: MetalLB never answers there.
        InterfaceInfo {
            noarp: true,
            ..iface("kube-ipvs0", &["192.0.2.10/32"])
        },
        // A bridge port answers through its bridge, not itself.
        InterfaceInfo {
            enslaved: true,
            ..iface("veth0", &[])
        },
    ];
    let desired = L2Desired {
        vips: [(
            ip("192.0.2.10"),
            L2Vip {
                interfaces: Interfaces::All,
                services: [key("web")].into(),
            },
        )]
        .into(),
    };
    let got = responder_vips(&desired, &node, &[]);
    assert_eq!(
        got.keys().map(String::as_str).collect::<Vec<_>>(),
        ["eth0", "eth1"],
        "no interface holds 192.0.2.0/24, yet MetalLB answers on both"
    );
}
