//! Property tests: the plans depend only on the inputs — not on the order objects arrive in,
//! not on anything but their values — and every speaker agrees on the L2 owner.

mod announce_fixtures;
#[path = "announce_fixtures/arb.rs"]
mod arb;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use announce_fixtures::*;
use arb::*;
use ferrolb_speaker::announce::bgp::ServiceStatus;
use ferrolb_speaker::announce::bgp::{compute_bgp, VipStatus};
use ferrolb_speaker::announce::input::{EndpointSlice, ServiceKey};
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::l2::election::{compute_l2, L2Plan, L2ServiceStatus};
use proptest::prelude::*;

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
