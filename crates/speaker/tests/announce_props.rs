//! Property tests: the plans depend only on the inputs — not on the order objects arrive in,
//! not on anything but their values — and every speaker agrees on the L2 owner.

mod announce_fixtures;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use announce_fixtures::*;
use ferrolb_api::model::{BgpAdvertisement, BgpCommunity, BgpPeer, Config, PeerAsn};
use ferrolb_speaker::announce::bgp::ServiceStatus;
use ferrolb_speaker::announce::bgp::{compute_bgp, VipStatus};
use ferrolb_speaker::announce::input::{
    Cluster, Endpoint, EndpointSlice, Node, Service, ServiceKey, TrafficPolicy,
};
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::l2::election::{compute_l2, L2Plan, L2ServiceStatus};
use proptest::prelude::*;

const NODE_NAMES: [&str; 4] = ["n0", "n1", "n2", "n3"];
const VIPS: [&str; 6] = [
    "192.0.2.1",
    "192.0.2.200",
    "198.51.100.7", // in no pool
    "2001:db8::1",
    "2001:db8::ff",
    "192.0.2.1", // shared with the first
];

fn zone() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b"])
}

fn arb_node(name: &'static str) -> impl Strategy<Value = Node> {
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

fn arb_service(index: usize) -> impl Strategy<Value = Service> {
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

fn arb_endpoint() -> impl Strategy<Value = Endpoint> {
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

fn arb_slice(service: usize, index: usize) -> impl Strategy<Value = EndpointSlice> {
    prop::collection::vec(arb_endpoint(), 0..4)
        .prop_map(move |eps| slice(&format!("s{service}"), &format!("{index}"), eps))
}

fn arb_peer(name: &'static str, address: &'static str) -> impl Strategy<Value = BgpPeer> {
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

fn arb_adv(name: &'static str) -> impl Strategy<Value = BgpAdvertisement> {
    (
        prop::sample::subsequence(vec!["v4", "v6"], 0..=2),
        any::<u8>(),
        any::<u8>(),
        prop::option::of(0u32..300),
        prop::collection::vec(0u32..4, 0..3),
        prop::sample::subsequence(vec!["r1", "r2", "r9"], 0..=3),
        prop::option::of(zone()),
        prop::option::of(prop::sample::select(vec!["x", "y"])),
    )
        .prop_map(
            move |(pools, agg4, agg6, local_pref, comms, peers, zone, app)| {
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
                a
            },
        )
}

/// A world as object lists, in generation order.
#[derive(Debug, Clone)]
struct World {
    config: Config,
    services: Vec<Service>,
    slices: Vec<EndpointSlice>,
    nodes: Vec<Node>,
}

fn arb_world() -> impl Strategy<Value = World> {
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
    let peers = (
        arb_peer("r1", "198.51.100.1"),
        arb_peer("r2", "2001:db8:ffff::2"),
    );
    let ads = (arb_adv("a"), arb_adv("b"));
    let l2_pools = prop::sample::subsequence(vec!["v4", "v6"], 0..=2);
    (nodes, services, slices, peers, ads, l2_pools).prop_map(
        |(nodes, services, slices, (r1, r2), (a, b), l2_pools)| World {
            config: config(
                vec![pool("v4", "192.0.2.0/24"), pool("v6", "2001:db8::/64")],
                vec![r1, r2],
                vec![a, b],
                vec![l2_adv("l2", &l2_pools)],
            ),
            services,
            slices,
            nodes,
        },
    )
}

/// The world and the same objects in another order (endpoints within slices too).
fn arb_world_and_permutation() -> impl Strategy<Value = (World, World)> {
    arb_world().prop_flat_map(|w| {
        let shuffled_slices: Vec<_> = w
            .slices
            .iter()
            .map(|s| {
                let s = s.clone();
                Just(s.endpoints.clone())
                    .prop_shuffle()
                    .prop_map(move |eps| EndpointSlice {
                        endpoints: eps,
                        ..s.clone()
                    })
            })
            .collect();
        (
            Just(w.clone()),
            Just(w.services.clone()).prop_shuffle(),
            shuffled_slices.prop_shuffle(),
            Just(w.nodes.clone()).prop_shuffle(),
        )
            .prop_map(|(w, services, slices, nodes)| {
                let permuted = World {
                    services,
                    slices,
                    nodes,
                    config: w.config.clone(),
                };
                (w, permuted)
            })
    })
}

/// Every (Service, VIP) election's ranking in a plan.
fn rankings(plan: &L2Plan) -> BTreeMap<(ServiceKey, IpAddr), Vec<String>> {
    plan.services
        .iter()
        .filter_map(|(k, st)| match st {
            L2ServiceStatus::Vips(vips) => Some(
                vips.iter()
                    .map(|(v, (e, _))| ((k.clone(), *v), e.ranking.clone()))
                    .collect::<Vec<_>>(),
            ),
            L2ServiceStatus::Skipped(_) => None,
        })
        .flatten()
        .collect()
}

fn cluster_of(w: &World) -> Cluster {
    Cluster::from_objects(w.services.clone(), w.slices.clone(), w.nodes.clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plans_depend_only_on_inputs((w, p) in arb_world_and_permutation()) {
        let (cw, cp) = (cluster_of(&w), cluster_of(&p));
        for n in NODE_NAMES {
            let opts = SpeakerOptions::for_node(n);
            let bgp = compute_bgp(&w.config, &cw, &opts);
            prop_assert_eq!(&bgp, &compute_bgp(&w.config, &cw, &opts), "same inputs, same plan");
            prop_assert_eq!(&bgp, &compute_bgp(&p.config, &cp, &opts), "input order is irrelevant");
            let l2 = compute_l2(&w.config, &cw, &opts, None);
            prop_assert_eq!(&l2, &compute_l2(&p.config, &cp, &opts, None));
        }
    }

    #[test]
    fn speakers_agree_on_at_most_one_l2_owner_per_vip(w in arb_world()) {
        let c = cluster_of(&w);
        let plans: Vec<_> = NODE_NAMES
            .iter()
            .map(|n| compute_l2(&w.config, &c, &SpeakerOptions::for_node(*n), None))
            .collect();
        // Every speaker computes the same election for every (Service, VIP)...
        for pair in plans.windows(2) {
            if let [a, b] = pair {
                prop_assert_eq!(&rankings(a), &rankings(b));
            }
        }
        // ...so a VIP has at most one owner unless Services sharing it have different eligible
        // sets (e.g. Local policy with endpoints on different nodes), as in MetalLB.
        for vip in VIPS {
            let owners: Vec<&str> = NODE_NAMES
                .iter()
                .zip(&plans)
                .filter(|(_, p)| p.desired.vips.contains_key(&ip(vip)))
                .map(|(n, _)| *n)
                .collect();
            let rankings: BTreeSet<_> = rankings(&plans[0])
                .into_iter()
                .filter(|((_, v), _)| *v == ip(vip))
                .map(|(_, r)| r)
                .collect();
            if rankings.len() <= 1 {
                prop_assert!(owners.len() <= 1, "{} owned by {:?}", vip, owners);
            }
        }
    }

    #[test]
    fn announced_routes_cover_their_vip_and_respect_ibgp(w in arb_world()) {
        let c = cluster_of(&w);
        for n in NODE_NAMES {
            let plan = compute_bgp(&w.config, &c, &SpeakerOptions::for_node(n));
            for (name, peer) in &plan.desired.peers {
                prop_assert!(peer.session.is_ibgp() || peer.routes.values().all(|r| r.local_pref.is_none()),
                    "LOCAL_PREF sent to eBGP peer {}", name);
            }
            for status in plan.services.values() {
                let ServiceStatus::Vips(vips) = status else { continue };
                for (vip, st) in vips {
                    if let VipStatus::Announced { prefixes, peers, .. } = st {
                        prop_assert!(prefixes.iter().all(|p| p.contains(vip)));
                        for peer in peers {
                            let routes = &plan.desired.peers[&**peer].routes;
                            prop_assert!(routes.keys().any(|p| p.contains(vip)));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn deleting_a_service_only_withdraws(w in arb_world(), victim in 0usize..4) {
        let with = cluster_of(&w);
        let mut without = with.clone();
        without.remove_service(&key(&format!("s{victim}")));
        for n in NODE_NAMES {
            let opts = SpeakerOptions::for_node(n);
            let before = compute_bgp(&w.config, &with, &opts).desired;
            let after = compute_bgp(&w.config, &without, &opts).desired;
            prop_assert_eq!(before.peers.keys().collect::<Vec<_>>(), after.peers.keys().collect::<Vec<_>>(),
                "sessions do not depend on Services");
            for (name, peer) in &after.peers {
                for prefix in peer.routes.keys() {
                    prop_assert!(before.peers[name].routes.contains_key(prefix),
                        "{} appeared at {} after a delete", prefix, name);
                }
            }
        }
    }
}
