//! Random worlds for the announcement property tests (`announce_props`,
//! `announce_incremental`): a few nodes, Services, EndpointSlices, peers and advertisements
//! drawn so that shared VIPs, aggregated prefixes, LOCAL_PREF disagreements and every skip
//! reason come up often.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeSet;

use ferrolb_api::model::{BgpAdvertisement, BgpCommunity, BgpPeer, Config, PeerAsn, WeightedEcmp};
use ferrolb_speaker::announce::input::{
    Cluster, Endpoint, EndpointSlice, Node, Service, TrafficPolicy,
};
use proptest::prelude::*;

use crate::announce_fixtures::*;

pub const NODE_NAMES: [&str; 4] = ["n0", "n1", "n2", "n3"];
pub const VIPS: [&str; 6] = [
    "192.0.2.1",
    "192.0.2.200",
    "198.51.100.7", // in no pool
    "2001:db8::1",
    "2001:db8::ff",
    "192.0.2.1", // shared with the first
];

pub fn zone() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b"])
}

pub fn arb_node(name: &'static str) -> impl Strategy<Value = Node> {
    (
        zone(),
        prop::option::of(any::<bool>()),
        prop::bool::weighted(0.1),
        any::<bool>(),
    )
        .prop_map(move |(z, ready, unschedulable, excluded)| {
            let mut n = node(name, &[("zone", z)]);
            n.ready = ready;
            n.unschedulable = unschedulable;
            if excluded && name == "n3" {
                n.labels.insert(
                    ferrolb_speaker::announce::input::LABEL_EXCLUDE_FROM_LB.into(),
                    String::new(),
                );
            }
            n
        })
}

pub fn arb_service(index: usize) -> impl Strategy<Value = Service> {
    (
        prop::collection::vec(prop::sample::select(VIPS.to_vec()), 0..3),
        any::<bool>(),
        prop::sample::select(vec!["x", "y"]),
        prop::bool::weighted(0.9),
    )
        .prop_map(move |(ips, local, app, lb)| {
            let mut s = svc(&format!("s{index}"), &[]);
            s.ips = ips.iter().map(|v| ip(v)).collect();
            s.ips.dedup();
            s.traffic_policy = if local {
                TrafficPolicy::Local
            } else {
                TrafficPolicy::Cluster
            };
            s.labels = labels(&[("app", app)]);
            s.is_load_balancer = lb;
            s
        })
}

pub fn arb_endpoint() -> impl Strategy<Value = Endpoint> {
    (
        0u8..6,
        prop::option::of(prop::sample::select(NODE_NAMES.to_vec())),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(addr, node_name, ready, serving, terminating)| Endpoint {
            addresses: vec![format!("10.0.0.{addr}").into()],
            node_name: node_name.map(Into::into),
            ready,
            serving,
            terminating,
        })
}

pub fn arb_slice(service: usize, index: usize) -> impl Strategy<Value = EndpointSlice> {
    prop::collection::vec(arb_endpoint(), 0..4)
        .prop_map(move |eps| slice(&format!("s{service}"), &format!("{index}"), eps))
}

pub fn arb_peer(name: &'static str, address: &'static str) -> impl Strategy<Value = BgpPeer> {
    (prop::option::of(zone()), any::<bool>(), any::<bool>()).prop_map(
        move |(zone, ibgp, dual_stack)| {
            let mut p = peer(name, address, if ibgp { 64500 } else { 64501 });
            p.peer_asn = if ibgp {
                PeerAsn::Internal
            } else {
                PeerAsn::Fixed(64501)
            };
            p.node_selectors = zone
                .map(|z| vec![selector(&[("zone", z)])])
                .unwrap_or_default();
            p.dual_stack_address_family = dual_stack;
            p
        },
    )
}

pub fn arb_adv(name: &'static str) -> impl Strategy<Value = BgpAdvertisement> {
    (
        prop::sample::subsequence(vec!["v4", "v6"], 0..=2),
        any::<u8>(),
        any::<u8>(),
        prop::option::of(0u32..300),
        prop::collection::vec(0u32..4, 0..3),
        prop::sample::subsequence(vec!["r1", "r2", "r9"], 0..=3),
        prop::option::of(zone()),
        prop::option::of(prop::sample::select(vec!["x", "y"])),
        any::<bool>(),
    )
        .prop_map(
            move |(pools, agg4, agg6, local_pref, comms, peers, zone, app, weighted)| {
                let mut a = bgp_adv(name, &pools);
                // Mostly valid lengths, sometimes anything: the computation must never panic.
                a.aggregation_length = if agg4 > 200 { agg4 } else { 24 + agg4 % 9 };
                a.aggregation_length_v6 = if agg6 > 200 { agg6 } else { 64 + agg6 % 65 };
                a.local_pref = local_pref;
                a.communities = comms
                    .into_iter()
                    .map(|c| {
                        if c == 3 {
                            BgpCommunity::Large(1, 2, 3)
                        } else {
                            BgpCommunity::Standard(c)
                        }
                    })
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                a.peers = peers.into_iter().map(str::to_string).collect();
                a.node_selectors = zone
                    .map(|z| vec![selector(&[("zone", z)])])
                    .unwrap_or_default();
                a.service_selectors = app
                    .map(|v| vec![selector(&[("app", v)])])
                    .unwrap_or_default();
                a.weighted_ecmp = weighted.then_some(WeightedEcmp::Endpoints);
                a
            },
        )
}

/// A world as object lists, in generation order.
#[derive(Debug, Clone)]
pub struct World {
    pub config: Config,
    pub services: Vec<Service>,
    pub slices: Vec<EndpointSlice>,
    pub nodes: Vec<Node>,
}

/// A configuration: two pools, two peers (one per family), two BGP advertisements and one L2
/// advertisement, each with random selectors and attributes.
pub fn arb_config() -> impl Strategy<Value = Config> {
    let peers = (
        arb_peer("r1", "198.51.100.1"),
        arb_peer("r2", "2001:db8:ffff::2"),
    );
    let ads = (arb_adv("a"), arb_adv("b"));
    let l2_pools = prop::sample::subsequence(vec!["v4", "v6"], 0..=2);
    (peers, ads, l2_pools).prop_map(|((r1, r2), (a, b), l2_pools)| {
        config(
            vec![pool("v4", "192.0.2.0/24"), pool("v6", "2001:db8::/64")],
            vec![r1, r2],
            vec![a, b],
            vec![l2_adv("l2", &l2_pools)],
        )
    })
}

pub fn arb_world() -> impl Strategy<Value = World> {
    let nodes = (
        arb_node("n0"),
        arb_node("n1"),
        arb_node("n2"),
        arb_node("n3"),
    )
        .prop_map(|(a, b, c, d)| vec![a, b, c, d]);
    let services = (
        arb_service(0),
        arb_service(1),
        arb_service(2),
        arb_service(3),
    )
        .prop_map(|(a, b, c, d)| vec![a, b, c, d]);
    let slices = (
        arb_slice(0, 0),
        arb_slice(0, 1),
        arb_slice(1, 0),
        arb_slice(2, 0),
        arb_slice(3, 0),
    )
        .prop_map(|(a, b, c, d, e)| vec![a, b, c, d, e]);
    (nodes, services, slices, arb_config()).prop_map(|(nodes, services, slices, config)| World {
        config,
        services,
        slices,
        nodes,
    })
}

pub fn cluster_of(w: &World) -> Cluster {
    Cluster::from_objects(w.services.clone(), w.slices.clone(), w.nodes.clone())
}
