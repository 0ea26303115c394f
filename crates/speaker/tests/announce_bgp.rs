//! Table tests for the BGP announcement rules (`announce::bgp` module doc, rules 1-9).

mod announce_fixtures;

use std::collections::BTreeSet;

use announce_fixtures::*;
use ferrolb_api::model::{BgpCommunity, Config, PeerAsn, WeightedEcmp};
use ferrolb_bgp::wire::{Community, ExtendedCommunity, LargeCommunity};
use ferrolb_speaker::announce::bgp::{
    announced_weight, compute_bgp, BgpPlan, NextHop, PeerName, Route, ServiceStatus, VipStatus,
};
use ferrolb_speaker::announce::input::{Cluster, Endpoint, TrafficPolicy, LABEL_EXCLUDE_FROM_LB};
use ferrolb_speaker::announce::reason::{PeerSkip, SkipReason};
use ferrolb_speaker::announce::SpeakerOptions;

/// Everything one computation reads; rows mutate a copy of [`base`].
#[derive(Clone)]
struct Scenario {
    config: Config,
    cluster: Cluster,
    opts: SpeakerOptions,
}

impl Scenario {
    fn plan(&self) -> BgpPlan {
        compute_bgp(&self.config, &self.cluster, &self.opts)
    }
    fn web(&mut self) -> &mut ferrolb_speaker::announce::input::Service {
        self.cluster
            .services
            .get_mut(&key("web"))
            .expect("base has web")
    }
    fn n1(&mut self) -> &mut ferrolb_speaker::announce::input::Node {
        self.cluster.nodes.get_mut("n1").expect("base has n1")
    }
    fn set_endpoints(&mut self, eps: Vec<ferrolb_speaker::announce::input::Endpoint>) {
        self.cluster.endpoint_slices.clear();
        self.cluster.upsert_endpoint_slice(slice("web", "a", eps));
    }
    fn adv(&mut self) -> &mut ferrolb_api::model::BgpAdvertisement {
        self.config
            .bgp_advertisements
            .get_mut("a")
            .expect("base has a")
    }
}

/// Speaker on n1 (InternalIPs 10.0.0.1 and fd00::1); pools v4 192.0.2.0/24 and v6 2001:db8::/64; eBGP peer r1; one default
/// advertisement for both pools; Service ns/web at 192.0.2.10 with a ready endpoint on n1.
fn base() -> Scenario {
    Scenario {
        config: config(
            vec![pool("v4", "192.0.2.0/24"), pool("v6", "2001:db8::/64")],
            vec![peer("r1", "198.51.100.1", 64501)],
            vec![bgp_adv("a", &["v4", "v6"])],
            vec![],
        ),
        cluster: cluster(
            vec![svc("web", &["192.0.2.10"])],
            vec![slice("web", "a", vec![ep("10.0.0.1", "n1")])],
            vec![
                {
                    let mut n1 = node("n1", &[("zone", "a")]);
                    n1.internal_addresses = vec![ip("10.0.0.1"), ip("fd00::1")];
                    n1
                },
                node("n2", &[("zone", "b")]),
            ],
        ),
        opts: SpeakerOptions::for_node("n1"),
    }
}

#[derive(Debug)]
enum Expect {
    /// The Service is announced to exactly these (peer, prefix) pairs.
    Routes(&'static [(&'static str, &'static str)]),
    /// The whole Service is skipped.
    Skipped(SkipReason),
    /// Its only VIP is not announced.
    VipSkipped(SkipReason),
}

fn routes_of(plan: &BgpPlan) -> BTreeSet<(String, String)> {
    plan.desired
        .peers
        .iter()
        .flat_map(|(name, a)| a.routes.keys().map(move |p| (name.clone(), p.to_string())))
        .collect()
}

fn check(name: &str, scenario: &Scenario, expect: &Expect) {
    let plan = scenario.plan();
    let status = plan.services.get(&key("web"));
    match expect {
        Expect::Routes(want) => {
            let want: BTreeSet<(String, String)> = want
                .iter()
                .map(|(p, r)| (p.to_string(), r.to_string()))
                .collect();
            assert_eq!(routes_of(&plan), want, "{name}: routes");
            let peers: BTreeSet<String> = want.iter().map(|(p, _)| p.clone()).collect();
            let status = status.unwrap_or_else(|| panic!("{name}: no status"));
            assert_eq!(status.peers(), peers, "{name}: status peers");
        }
        Expect::Skipped(reason) => {
            assert_eq!(routes_of(&plan), BTreeSet::new(), "{name}: routes");
            assert_eq!(
                status,
                Some(&ServiceStatus::Skipped(reason.clone())),
                "{name}"
            );
        }
        Expect::VipSkipped(reason) => {
            assert_eq!(routes_of(&plan), BTreeSet::new(), "{name}: routes");
            let Some(ServiceStatus::Vips(vips)) = status else {
                panic!("{name}: expected per-VIP status, got {status:?}");
            };
            assert_eq!(vips.len(), 1, "{name}");
            match vips.values().next() {
                Some(VipStatus::NotAnnounced { reason: got, .. }) => {
                    assert_eq!(got, reason, "{name}")
                }
                other => panic!("{name}: expected NotAnnounced({reason:?}), got {other:?}"),
            }
        }
    }
}

type Row = (&'static str, fn(&mut Scenario), Expect);

#[test]
fn service_and_node_gates() {
    use Expect::*;
    let rows: Vec<Row> = vec![
        (
            "base case announces a host route",
            |_| {},
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "a ClusterIP Service is never announced",
            |s| s.web().is_load_balancer = false,
            Skipped(SkipReason::NotLoadBalancer),
        ),
        (
            "a Service of another loadBalancerClass is not ours",
            |s| s.web().load_balancer_class = Some("other".into()),
            Skipped(SkipReason::LoadBalancerClassMismatch),
        ),
        (
            "a speaker with a class serves only that class",
            |s| {
                s.opts.load_balancer_class = Some("ferrolb".into());
                s.web().load_balancer_class = Some("ferrolb".into());
            },
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "a speaker with a class ignores class-less Services",
            |s| s.opts.load_balancer_class = Some("ferrolb".into()),
            Skipped(SkipReason::LoadBalancerClassMismatch),
        ),
        (
            "no IP in status yet",
            |s| s.web().ips.clear(),
            Skipped(SkipReason::NoIpAssigned),
        ),
        (
            "own Node unknown",
            |s| s.opts.node_name = "n9".into(),
            Skipped(SkipReason::NodeNotFound),
        ),
        (
            "NetworkUnavailable node announces nothing",
            |s| s.n1().network_unavailable = true,
            Skipped(SkipReason::NodeNetworkUnavailable),
        ),
        (
            "exclude-from-external-load-balancers label, any value",
            |s| {
                s.n1()
                    .labels
                    .insert(LABEL_EXCLUDE_FROM_LB.into(), String::new());
            },
            Skipped(SkipReason::NodeExcluded),
        ),
        (
            "--ignore-exclude-lb overrides the label",
            |s| {
                s.n1()
                    .labels
                    .insert(LABEL_EXCLUDE_FROM_LB.into(), "true".into());
                s.opts.ignore_exclude_lb = true;
            },
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "a not-Ready node still announces over BGP (MetalLB checks no Ready condition)",
            |s| s.n1().ready = Some(false),
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
    ];
    for (name, mutate, expect) in &rows {
        let mut s = base();
        mutate(&mut s);
        check(name, &s, expect);
    }
}

#[test]
fn endpoint_rules() {
    use Expect::*;
    let rows: Vec<Row> = vec![
        (
            "Local with a ready endpoint here",
            |s| s.web().traffic_policy = TrafficPolicy::Local,
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "Local with the only endpoint elsewhere",
            |s| {
                s.web().traffic_policy = TrafficPolicy::Local;
                s.set_endpoints(vec![ep("10.0.0.2", "n2")]);
            },
            Skipped(SkipReason::NoLocalEndpoints),
        ),
        (
            "Cluster with the only endpoint elsewhere",
            |s| s.set_endpoints(vec![ep("10.0.0.2", "n2")]),
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "Cluster with no endpoint at all",
            |s| s.cluster.endpoint_slices.clear(),
            Skipped(SkipReason::NoEndpoints),
        ),
        (
            "Cluster with an empty slice",
            |s| s.set_endpoints(vec![]),
            Skipped(SkipReason::NoEndpoints),
        ),
        (
            "Cluster with only unready, not serving endpoints",
            |s| {
                let mut e = ep("10.0.0.1", "n1");
                e.ready = Some(false);
                e.serving = Some(false);
                s.set_endpoints(vec![e]);
            },
            Skipped(SkipReason::NoEndpoints),
        ),
        (
            "unknown readiness counts as ready",
            |s| {
                s.web().traffic_policy = TrafficPolicy::Local;
                let mut e = ep("10.0.0.1", "n1");
                e.ready = None;
                e.serving = None;
                e.terminating = None;
                s.set_endpoints(vec![e]);
            },
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "terminating but serving withdraws the route (issue: not terminating)",
            |s| {
                s.web().traffic_policy = TrafficPolicy::Local;
                let mut e = ep("10.0.0.1", "n1");
                e.ready = Some(false);
                e.serving = Some(true);
                e.terminating = Some(true);
                s.set_endpoints(vec![e]);
            },
            Skipped(SkipReason::NoLocalEndpoints),
        ),
        (
            "serving and not terminating keeps the route",
            |s| {
                s.web().traffic_policy = TrafficPolicy::Local;
                let mut e = ep("10.0.0.1", "n1");
                e.ready = Some(false);
                e.serving = Some(true);
                e.terminating = Some(false);
                s.set_endpoints(vec![e]);
            },
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "an address unready in any slice is unready",
            |s| {
                s.web().traffic_policy = TrafficPolicy::Local;
                let mut unready = ep("10.0.0.1", "n1");
                unready.ready = Some(false);
                unready.serving = Some(false);
                s.cluster.endpoint_slices.clear();
                s.cluster
                    .upsert_endpoint_slice(slice("web", "a", vec![ep("10.0.0.1", "n1")]));
                s.cluster
                    .upsert_endpoint_slice(slice("web", "b", vec![unready]));
            },
            Skipped(SkipReason::NoLocalEndpoints),
        ),
        (
            "one ready address among unready ones suffices",
            |s| {
                s.web().traffic_policy = TrafficPolicy::Local;
                let mut unready = ep("10.0.0.1", "n1");
                unready.ready = Some(false);
                unready.serving = Some(false);
                s.set_endpoints(vec![unready, ep("10.0.0.9", "n1")]);
            },
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "an endpoint without nodeName counts for Cluster",
            |s| {
                let mut e = ep("10.0.0.1", "n1");
                e.node_name = None;
                s.set_endpoints(vec![e]);
            },
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "an endpoint without nodeName does not count for Local",
            |s| {
                s.web().traffic_policy = TrafficPolicy::Local;
                let mut e = ep("10.0.0.1", "n1");
                e.node_name = None;
                s.set_endpoints(vec![e]);
            },
            Skipped(SkipReason::NoLocalEndpoints),
        ),
        (
            "another Service's endpoints do not count",
            |s| {
                s.cluster.endpoint_slices.clear();
                s.cluster
                    .upsert_endpoint_slice(slice("db", "a", vec![ep("10.0.0.1", "n1")]));
            },
            Skipped(SkipReason::NoEndpoints),
        ),
    ];
    for (name, mutate, expect) in &rows {
        let mut s = base();
        mutate(&mut s);
        check(name, &s, expect);
    }
}

#[test]
fn pool_advertisement_and_peer_selection() {
    use Expect::*;
    let rows: Vec<Row> = vec![
        (
            "a VIP in no pool",
            |s| s.web().ips = vec![ip("203.0.113.5")],
            VipSkipped(SkipReason::NoPool),
        ),
        (
            "no advertisement for the pool",
            |s| s.adv().pools = BTreeSet::from(["v6".to_string()]),
            VipSkipped(SkipReason::NoAdvertisement),
        ),
        (
            "advertisement nodeSelectors exclude this node",
            |s| s.adv().node_selectors = vec![selector(&[("zone", "b")])],
            VipSkipped(SkipReason::AdvertisementNodeMismatch),
        ),
        (
            "advertisement nodeSelectors: any entry may match",
            |s| {
                s.adv().node_selectors =
                    vec![selector(&[("zone", "b")]), selector(&[("zone", "a")])]
            },
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "advertisement serviceSelectors exclude the Service",
            |s| s.adv().service_selectors = vec![selector(&[("app", "web")])],
            VipSkipped(SkipReason::ServiceSelectorMismatch),
        ),
        (
            "advertisement serviceSelectors match the Service",
            |s| {
                s.adv().service_selectors = vec![selector(&[("app", "web")])];
                s.web().labels = labels(&[("app", "web")]);
            },
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "advertisement peers names only r2",
            |s| {
                s.config
                    .bgp_peers
                    .insert("r2".into(), peer("r2", "198.51.100.2", 64502));
                s.adv().peers = BTreeSet::from(["r2".to_string()]);
            },
            Routes(&[("r2", "192.0.2.10/32")]),
        ),
        (
            "empty peers list means every peer",
            |s| {
                s.config
                    .bgp_peers
                    .insert("r2".into(), peer("r2", "198.51.100.2", 64502));
            },
            Routes(&[("r1", "192.0.2.10/32"), ("r2", "192.0.2.10/32")]),
        ),
        (
            "advertisement peers names an unknown peer",
            |s| s.adv().peers = BTreeSet::from(["rX".to_string()]),
            VipSkipped(SkipReason::NoPeer),
        ),
        (
            "BGPPeer nodeSelectors exclude this node",
            |s| {
                s.config.bgp_peers.get_mut("r1").expect("r1").node_selectors =
                    vec![selector(&[("zone", "b")])];
            },
            VipSkipped(SkipReason::NoPeer),
        ),
        (
            "BGPPeer nodeSelectors match this node",
            |s| {
                s.config.bgp_peers.get_mut("r1").expect("r1").node_selectors =
                    vec![selector(&[("zone", "a")])];
            },
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "no BGPPeer at all",
            |s| s.config.bgp_peers.clear(),
            VipSkipped(SkipReason::NoPeer),
        ),
        (
            "aggregationLength 24 announces the covering /24",
            |s| s.adv().aggregation_length = 24,
            Routes(&[("r1", "192.0.2.0/24")]),
        ),
        (
            "aggregationLength 32 is a host route",
            |s| s.adv().aggregation_length = 32,
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "an out-of-range aggregationLength never panics: host route",
            |s| s.adv().aggregation_length = 40,
            Routes(&[("r1", "192.0.2.10/32")]),
        ),
        (
            "IPv6 VIP to an IPv6 peer: /128",
            |s| {
                s.web().ips = vec![ip("2001:db8::10")];
                s.config.bgp_peers.clear();
                s.config
                    .bgp_peers
                    .insert("r6".into(), peer("r6", "2001:db8:ffff::1", 64501));
            },
            Routes(&[("r6", "2001:db8::10/128")]),
        ),
        (
            "IPv6 VIP to an IPv4 peer is not carried by default",
            |s| s.web().ips = vec![ip("2001:db8::10")],
            VipSkipped(SkipReason::NoPeer),
        ),
        (
            "IPv6 VIP to an IPv4 peer with dualStackAddressFamily: /128 over MP-BGP",
            |s| {
                s.web().ips = vec![ip("2001:db8::10")];
                s.config
                    .bgp_peers
                    .get_mut("r1")
                    .expect("r1")
                    .dual_stack_address_family = true;
            },
            Routes(&[("r1", "2001:db8::10/128")]),
        ),
        (
            "an unnumbered (interface) session carries both families",
            |s| {
                s.web().ips = vec![ip("2001:db8::10")];
                s.config.bgp_peers.get_mut("r1").expect("r1").interface = Some("eth1".into());
            },
            Routes(&[("r1", "2001:db8::10/128")]),
        ),
        (
            "disableMP is deprecated and has no effect",
            |s| {
                s.web().ips = vec![ip("2001:db8::10")];
                let r1 = s.config.bgp_peers.get_mut("r1").expect("r1");
                r1.disable_mp = true;
                r1.dual_stack_address_family = true;
            },
            Routes(&[("r1", "2001:db8::10/128")]),
        ),
        (
            "IPv6 aggregationLengthV6 64",
            |s| {
                s.web().ips = vec![ip("2001:db8::10")];
                s.adv().aggregation_length_v6 = 64;
                s.config
                    .bgp_peers
                    .get_mut("r1")
                    .expect("r1")
                    .dual_stack_address_family = true;
            },
            Routes(&[("r1", "2001:db8::/64")]),
        ),
        (
            "dual-stack Service: each VIP to the peers of its family",
            |s| {
                s.web().ips = vec![ip("192.0.2.10"), ip("2001:db8::10")];
                s.config
                    .bgp_peers
                    .insert("r6".into(), peer("r6", "2001:db8:ffff::1", 64501));
            },
            Routes(&[("r1", "192.0.2.10/32"), ("r6", "2001:db8::10/128")]),
        ),
        (
            "two advertisements with different lengths give both prefixes",
            |s| {
                let mut agg = bgp_adv("b", &["v4"]);
                agg.aggregation_length = 24;
                s.config.bgp_advertisements.insert("b".into(), agg);
            },
            Routes(&[("r1", "192.0.2.0/24"), ("r1", "192.0.2.10/32")]),
        ),
    ];
    for (name, mutate, expect) in &rows {
        let mut s = base();
        mutate(&mut s);
        check(name, &s, expect);
    }
}

#[test]
fn applying_peers_are_planned_even_without_routes() {
    let mut s = base();
    s.n1().network_unavailable = true;
    s.config.bgp_peers.insert("r2".into(), {
        let mut p = peer("r2", "198.51.100.2", 64502);
        p.node_selectors = vec![selector(&[("zone", "b")])];
        p
    });
    let plan = s.plan();
    assert_eq!(plan.desired.peers.keys().collect::<Vec<_>>(), vec!["r1"]);
    let r1 = &plan.desired.peers["r1"];
    assert!(r1.routes.is_empty());
    assert_eq!(
        r1.session, s.config.bgp_peers["r1"],
        "session settings come from the BGPPeer"
    );
}

#[test]
fn unknown_own_node_starts_no_session() {
    let mut s = base();
    s.opts.node_name = "n9".into();
    assert!(s.plan().desired.peers.is_empty());
}

#[test]
fn skipped_peers_say_why() {
    let mut s = base();
    s.web().ips = vec![ip("2001:db8::10")];
    s.config
        .bgp_peers
        .insert("r2".into(), peer("r2", "2001:db8:ffff::1", 64502));
    s.config
        .bgp_peers
        .insert("r3".into(), peer("r3", "2001:db8:ffff::3", 64503));
    s.adv().peers = BTreeSet::from(["r1".to_string(), "r2".to_string()]);
    let plan = s.plan();
    let Some(ServiceStatus::Vips(vips)) = plan.services.get(&key("web")) else {
        panic!("expected per-VIP status");
    };
    let Some(VipStatus::Announced {
        peers,
        skipped_peers,
        prefixes,
    }) = vips.get(&ip("2001:db8::10"))
    else {
        panic!("expected announced, got {vips:?}");
    };
    assert_eq!(names(peers), ["r2"]);
    assert_eq!(&prefixes[..], [net("2001:db8::10/128")]);
    assert_eq!(
        skips(skipped_peers),
        [
            ("r1", PeerSkip::FamilyNotCarried),
            ("r3", PeerSkip::NotInAdvertisementPeers),
        ]
    );
}

/// A large community `global:local1:local2` (RFC 8092).
fn lc(global_admin: u32, local_data_1: u32, local_data_2: u32) -> LargeCommunity {
    LargeCommunity {
        global_admin,
        local_data_1,
        local_data_2,
    }
}

fn attrs_of(plan: &BgpPlan, peer: &str, prefix: &str) -> Route {
    Route::clone(&plan.desired.peers[peer].routes[&net(prefix)])
}

#[test]
fn communities_and_large_communities_go_to_their_attributes() {
    let mut s = base();
    s.adv().communities = vec![
        BgpCommunity::Standard((65535 << 16) | 65282),
        BgpCommunity::Large(64500, 1, 2),
    ];
    let attrs = attrs_of(&s.plan(), "r1", "192.0.2.10/32");
    assert_eq!(
        attrs.communities,
        BTreeSet::from([Community((65535 << 16) | 65282)])
    );
    assert_eq!(attrs.large_communities, BTreeSet::from([lc(64500, 1, 2)]));
    assert_eq!(
        attrs.next_hop,
        NextHop::SessionLocal,
        "next hop defaults to the session's address"
    );
}

#[test]
fn local_pref_is_sent_to_ibgp_peers_only() {
    // RFC 4271 §5.1.5: LOCAL_PREF is not sent to external peers.
    let rows: &[(&str, PeerAsn, Option<u32>)] = &[
        (
            "fixed ASN equal to ours is iBGP",
            PeerAsn::Fixed(64500),
            Some(150),
        ),
        ("fixed different ASN is eBGP", PeerAsn::Fixed(64501), None),
        ("dynamicASN internal is iBGP", PeerAsn::Internal, Some(150)),
        ("dynamicASN external is eBGP", PeerAsn::External, None),
    ];
    for (name, asn, want) in rows {
        let mut s = base();
        s.config.bgp_peers.get_mut("r1").expect("r1").peer_asn = *asn;
        s.adv().local_pref = Some(150);
        assert_eq!(
            attrs_of(&s.plan(), "r1", "192.0.2.10/32").local_pref,
            *want,
            "{name}"
        );
    }
}

#[test]
fn advertisements_for_the_same_prefix_merge_like_metallb() {
    let mut s = base();
    s.config.bgp_peers.get_mut("r1").expect("r1").peer_asn = PeerAsn::Fixed(64500);
    s.adv().communities = vec![BgpCommunity::Standard(1)];
    s.adv().local_pref = Some(100);
    let mut b = bgp_adv("b", &["v4"]);
    b.communities = vec![BgpCommunity::Standard(2), BgpCommunity::Large(1, 2, 3)];
    b.local_pref = Some(200);
    s.config.bgp_advertisements.insert("b".into(), b);
    let plan = s.plan();
    let attrs = attrs_of(&plan, "r1", "192.0.2.10/32");
    assert_eq!(
        attrs.communities,
        BTreeSet::from([Community(1), Community(2)]),
        "communities are unioned"
    );
    assert_eq!(attrs.large_communities, BTreeSet::from([lc(1, 2, 3)]));
    assert_eq!(
        attrs.local_pref,
        Some(200),
        "the highest LOCAL_PREF is announced"
    );
    let conflict = plan
        .conflicts
        .iter()
        .next()
        .expect("the disagreement is reported");
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(conflict.peer, "r1");
    assert_eq!(conflict.prefix, net("192.0.2.10/32"));
    assert_eq!(conflict.local_prefs, BTreeSet::from([Some(100), Some(200)]));
    assert_eq!(conflict.chosen, Some(200));
}

#[test]
fn equal_local_prefs_are_no_conflict() {
    let mut s = base();
    s.config.bgp_peers.get_mut("r1").expect("r1").peer_asn = PeerAsn::Fixed(64500);
    s.adv().local_pref = Some(100);
    let mut b = bgp_adv("b", &["v4"]);
    b.local_pref = Some(100);
    s.config.bgp_advertisements.insert("b".into(), b);
    assert!(s.plan().conflicts.is_empty());
}

#[test]
fn an_aggregate_stays_while_any_service_in_it_is_announced() {
    let mut s = base();
    s.adv().aggregation_length = 24;
    s.cluster.upsert_service(svc("api", &["192.0.2.20"]));
    s.cluster
        .upsert_endpoint_slice(slice("api", "a", vec![ep("10.0.0.3", "n2")]));
    let both = s.plan();
    assert_eq!(
        both.desired.peers["r1"].routes.len(),
        1,
        "one aggregate for both"
    );
    assert_eq!(
        both.services[&key("api")].peers(),
        BTreeSet::from(["r1".to_string()])
    );

    s.cluster.remove_service(&key("web"));
    assert!(s.plan().desired.peers["r1"]
        .routes
        .contains_key(&net("192.0.2.0/24")));

    s.cluster.remove_service(&key("api"));
    assert!(
        s.plan().desired.peers["r1"].routes.is_empty(),
        "withdrawn with its last Service"
    );
}

#[test]
fn every_service_gets_a_status() {
    let mut s = base();
    s.cluster.upsert_service(svc("nolb", &[]));
    let plan = s.plan();
    assert_eq!(
        plan.services.keys().cloned().collect::<Vec<_>>(),
        vec![key("nolb"), key("web")]
    );
    assert_eq!(
        plan.services[&key("nolb")],
        ServiceStatus::Skipped(SkipReason::NoIpAssigned)
    );
}

#[test]
fn reason_labels_are_metallb_words_where_metallb_has_one() {
    assert_eq!(SkipReason::NoEndpoints.label(), "noEndpoints");
    assert_eq!(SkipReason::NoLocalEndpoints.label(), "noLocalEndpoints");
    assert_eq!(
        SkipReason::NodeExcluded.label(),
        "nodeLabeledExcludeBalancers"
    );
    assert_eq!(
        SkipReason::NotOwner {
            winner: "n2".into()
        }
        .to_string(),
        "notOwner (announced by n2)"
    );
}

/// What rule 8 decides for the Service's only VIP towards one peer.
#[derive(Debug)]
enum NextHopExpect {
    /// Announced to the peer with this next hop.
    Sent(NextHop),
    /// Not sent to the peer, for this reason (the VIP is then `NotAnnounced { NoPeer }`).
    Skipped(PeerSkip),
}

type NextHopRow = (
    &'static str,
    &'static str,            // VIP
    &'static str,            // peer address of r1
    bool,                    // dualStackAddressFamily
    &'static [&'static str], // n1's InternalIPs
    NextHopExpect,
);

/// Rule 8 (RFC 4760 §3, RFC 2545 §3): a route of the session's own family uses the session's
/// local address; one of the other family uses this node's InternalIP of the route's family, and
/// is not sent at all (with a truthful reason) when the node has none. Regression rows for the
/// bug found by e2e `dual_stack_peer_carries_an_ipv6_vip_over_the_ipv4_session`: the IPv6 VIP
/// went out with `SessionLocal`, crates/bgp dropped it for want of an IPv6 next hop, and the
/// report still said "announced".
#[test]
fn next_hop_follows_the_route_family() {
    use NextHopExpect::*;
    let rows: Vec<NextHopRow> = vec![
        (
            "IPv4 VIP to an IPv4 peer: the session's address",
            "192.0.2.10",
            "198.51.100.1",
            false,
            &["10.0.0.1", "fd00::1"],
            Sent(NextHop::SessionLocal),
        ),
        (
            "IPv6 VIP to an IPv6 peer: the session's address",
            "2001:db8::10",
            "2001:db8:ffff::1",
            false,
            &["10.0.0.1", "fd00::1"],
            Sent(NextHop::SessionLocal),
        ),
        (
            "IPv4 VIP to a dual-stack IPv4 peer: still the session's address",
            "192.0.2.10",
            "198.51.100.1",
            true,
            &[],
            Sent(NextHop::SessionLocal),
        ),
        (
            "IPv6 VIP over a dual-stack IPv4 session: the node's IPv6 InternalIP",
            "2001:db8::10",
            "198.51.100.1",
            true,
            &["10.0.0.1", "fd00::1"],
            Sent(NextHop::Explicit(ip("fd00::1"))),
        ),
        (
            "IPv4 VIP over a dual-stack IPv6 session: the node's IPv4 InternalIP",
            "192.0.2.10",
            "2001:db8:ffff::1",
            true,
            &["10.0.0.1", "fd00::1"],
            Sent(NextHop::Explicit(ip("10.0.0.1"))),
        ),
        (
            "several IPv6 InternalIPs: the lowest, skipping link-local (RFC 2545 §3: global)",
            "2001:db8::10",
            "198.51.100.1",
            true,
            &["10.0.0.1", "fe80::1", "fd00::9", "fd00::2"],
            Sent(NextHop::Explicit(ip("fd00::2"))),
        ),
        (
            "IPv6 VIP over a dual-stack IPv4 session, node without IPv6: not sent",
            "2001:db8::10",
            "198.51.100.1",
            true,
            &["10.0.0.1"],
            Skipped(PeerSkip::NoNextHopForFamily),
        ),
        (
            "IPv6 VIP over a dual-stack IPv4 session, only a link-local IPv6: not sent",
            "2001:db8::10",
            "198.51.100.1",
            true,
            &["10.0.0.1", "fe80::1"],
            Skipped(PeerSkip::NoNextHopForFamily),
        ),
        (
            "IPv4 VIP over a dual-stack IPv6 session, only a link-local IPv4: not sent",
            "192.0.2.10",
            "2001:db8:ffff::1",
            true,
            &["169.254.0.7", "fd00::1"],
            Skipped(PeerSkip::NoNextHopForFamily),
        ),
        (
            "a Node without status.addresses (synthesized standalone Node): not sent",
            "2001:db8::10",
            "198.51.100.1",
            true,
            &[],
            Skipped(PeerSkip::NoNextHopForFamily),
        ),
    ];
    for (name, vip, peer_address, dual_stack, addresses, expect) in &rows {
        let mut s = base();
        s.web().ips = vec![ip(vip)];
        let mut r1 = peer("r1", peer_address, 64501);
        r1.dual_stack_address_family = *dual_stack;
        s.config.bgp_peers.insert("r1".into(), r1);
        let mut internal: Vec<_> = addresses.iter().map(|a| ip(a)).collect();
        // input.rs: `internal_addresses` is sorted, as from_k8s builds it.
        internal.sort();
        s.n1().internal_addresses = internal;
        let plan = s.plan();
        let routes = &plan.desired.peers["r1"].routes;
        let Some(ServiceStatus::Vips(vips)) = plan.services.get(&key("web")) else {
            panic!("{name}: expected per-VIP status, got {:?}", plan.services);
        };
        let status = vips.get(&ip(vip));
        match expect {
            Sent(next_hop) => {
                let host = net(&format!(
                    "{vip}/{}",
                    if vip.contains(':') { 128 } else { 32 }
                ));
                assert_eq!(
                    routes.keys().collect::<Vec<_>>(),
                    vec![&host],
                    "{name}: routes"
                );
                assert_eq!(&routes[&host].next_hop, next_hop, "{name}: next hop");
                assert!(
                    matches!(status, Some(VipStatus::Announced { peers, .. })
                        if names(peers) == ["r1"]),
                    "{name}: {status:?}"
                );
            }
            Skipped(skip) => {
                assert!(routes.is_empty(), "{name}: routes {routes:?}");
                assert_eq!(
                    status,
                    Some(&VipStatus::NotAnnounced {
                        reason: SkipReason::NoPeer,
                        skipped_peers: Box::new([("r1".into(), *skip)]),
                    }),
                    "{name}"
                );
                assert_eq!(
                    plan.services[&key("web")].peers(),
                    BTreeSet::new(),
                    "{name}: the report must not claim the VIP is announced"
                );
            }
        }
    }
}

/// A node without an IPv6 InternalIP still announces the IPv6 VIP to its IPv6 peer; only the
/// dual-stack IPv4 peer is skipped, and the report names it with the reason.
#[test]
fn a_missing_next_hop_skips_only_the_cross_family_peer() {
    let mut s = base();
    s.web().ips = vec![ip("2001:db8::10")];
    s.config
        .bgp_peers
        .get_mut("r1")
        .expect("r1")
        .dual_stack_address_family = true;
    s.config
        .bgp_peers
        .insert("r6".into(), peer("r6", "2001:db8:ffff::1", 64502));
    s.n1().internal_addresses = vec![ip("10.0.0.1")];
    let plan = s.plan();
    assert_eq!(
        routes_of(&plan),
        BTreeSet::from([("r6".to_string(), "2001:db8::10/128".to_string())])
    );
    assert_eq!(
        attrs_of(&plan, "r6", "2001:db8::10/128").next_hop,
        NextHop::SessionLocal
    );
    let Some(ServiceStatus::Vips(vips)) = plan.services.get(&key("web")) else {
        panic!("expected per-VIP status, got {:?}", plan.services);
    };
    assert_eq!(
        vips.get(&ip("2001:db8::10")),
        Some(&VipStatus::Announced {
            prefixes: Box::new([net("2001:db8::10/128")]),
            peers: Box::new(["r6".into()]),
            skipped_peers: Box::new([("r1".into(), PeerSkip::NoNextHopForFamily)]),
        })
    );
}

/// Peer names of a report as plain strings.
fn names(peers: &[PeerName]) -> Vec<&str> {
    peers.iter().map(|p| &**p).collect()
}

/// Skipped peers of a report with plain-string names.
fn skips(skipped: &[(PeerName, PeerSkip)]) -> Vec<(&str, PeerSkip)> {
    skipped.iter().map(|(p, why)| (&**p, *why)).collect()
}

#[test]
fn routes_with_equal_attributes_share_one_allocation_in_the_plan() {
    let mut s = base();
    s.adv().communities = vec![BgpCommunity::Standard(7)];
    s.cluster.upsert_service(svc("api", &["192.0.2.20"]));
    s.cluster
        .upsert_endpoint_slice(slice("api", "a", vec![ep("10.0.0.3", "n2")]));
    let plan = s.plan();
    let routes = &plan.desired.peers["r1"].routes;
    let web = &routes[&net("192.0.2.10/32")];
    let api = &routes[&net("192.0.2.20/32")];
    assert_eq!(web.communities, BTreeSet::from([Community(7)]));
    assert!(
        std::sync::Arc::ptr_eq(web, api),
        "one attribute set, one allocation"
    );
}

/// The weight a route carries, in endpoints (rule 9), or `None` without a link bandwidth.
fn weight_of(plan: &BgpPlan, peer: &str, prefix: &str) -> Option<f64> {
    announced_weight(&attrs_of(plan, peer, prefix))
}

/// A Service `externalTrafficPolicy: Local` with the given endpoints on n1 (and one on n2).
fn weighted_local(mut s: Scenario, eps: Vec<Endpoint>) -> Scenario {
    s.adv().weighted_ecmp = Some(WeightedEcmp::Endpoints);
    s.web().traffic_policy = TrafficPolicy::Local;
    let mut all = eps;
    all.push(ep("10.1.0.9", "n2"));
    s.set_endpoints(all);
    s
}

fn terminating(address: &str, node: &str) -> Endpoint {
    Endpoint {
        ready: Some(false),
        serving: Some(true),
        terminating: Some(true),
        ..ep(address, node)
    }
}

#[test]
fn weighted_ecmp_link_bandwidth_follows_ready_local_endpoints() {
    let plain = base();
    assert_eq!(weight_of(&plain.plan(), "r1", "192.0.2.10/32"), None);
    let rows: &[(&str, Vec<Endpoint>, f64)] = &[
        (
            "three ready endpoints here",
            vec![
                ep("10.1.0.1", "n1"),
                ep("10.1.0.2", "n1"),
                ep("10.1.0.3", "n1"),
            ],
            3.0,
        ),
        (
            "a terminating endpoint does not count",
            vec![ep("10.1.0.1", "n1"), terminating("10.1.0.2", "n1")],
            1.0,
        ),
        ("one endpoint", vec![ep("10.1.0.1", "n1")], 1.0),
    ];
    for (name, eps, want) in rows {
        let s = weighted_local(base(), eps.clone());
        let plan = s.plan();
        assert_eq!(
            weight_of(&plan, "r1", "192.0.2.10/32"),
            Some(*want),
            "{name}"
        );
        let attrs = attrs_of(&plan, "r1", "192.0.2.10/32");
        // draft-ietf-idr-link-bandwidth: 1 Mbit/s (125000 bytes/s) per endpoint, from our AS.
        let lb = ExtendedCommunity::link_bandwidth(64500, (*want * 125_000.0) as f32);
        assert_eq!(attrs.extended_communities, BTreeSet::from([lb]), "{name}");
    }
}

#[test]
fn weighted_ecmp_cluster_policy_gives_every_node_the_same_value() {
    let mut s = base();
    s.adv().weighted_ecmp = Some(WeightedEcmp::Endpoints);
    s.set_endpoints(vec![ep("10.1.0.1", "n2"), ep("10.1.0.2", "n2")]);
    assert_eq!(weight_of(&s.plan(), "r1", "192.0.2.10/32"), Some(1.0));
    s.opts = SpeakerOptions::for_node("n2");
    // n2 has no InternalIP of its own here but the session's address serves IPv4.
    assert_eq!(weight_of(&s.plan(), "r1", "192.0.2.10/32"), Some(1.0));
}

#[test]
fn weighted_ecmp_services_sharing_an_ip_add_up_and_two_advertisements_count_once() {
    let mut s = weighted_local(
        base(),
        vec![
            ep("10.1.0.1", "n1"),
            ep("10.1.0.2", "n1"),
            ep("10.1.0.3", "n1"),
        ],
    );
    let mut dns = svc("dns", &["192.0.2.10"]);
    dns.traffic_policy = TrafficPolicy::Local;
    s.cluster.upsert_service(dns);
    s.cluster.upsert_endpoint_slice(slice(
        "dns",
        "a",
        vec![ep("10.1.1.1", "n1"), ep("10.1.1.2", "n1")],
    ));
    assert_eq!(weight_of(&s.plan(), "r1", "192.0.2.10/32"), Some(5.0));
    // A second weighted advertisement of the same prefix does not double the Services' values.
    let mut b = s.adv().clone();
    b.name = "b".into();
    b.communities = vec![BgpCommunity::Standard(7)];
    s.config.bgp_advertisements.insert("b".into(), b);
    let plan = s.plan();
    assert_eq!(weight_of(&plan, "r1", "192.0.2.10/32"), Some(5.0));
    assert_eq!(
        attrs_of(&plan, "r1", "192.0.2.10/32").communities,
        BTreeSet::from([Community(7)])
    );
}

#[test]
fn weighted_ecmp_follows_endpoint_changes_incrementally() {
    use ferrolb_speaker::announce::bgp::BgpAnnouncer;
    use ferrolb_speaker::announce::change::ChangeSet;
    let mut s = weighted_local(
        base(),
        vec![ep("10.1.0.1", "n1"), terminating("10.1.0.2", "n1")],
    );
    let mut announcer = BgpAnnouncer::new(s.opts.clone());
    announcer.update(&s.config, &s.cluster, &ChangeSet::all());
    let weight =
        |a: &BgpAnnouncer| announced_weight(&a.desired().peers["r1"].routes[&net("192.0.2.10/32")]);
    assert_eq!(weight(&announcer), Some(1.0));
    // Scaled up: the Service's slice changes, and only that Service is recomputed.
    s.set_endpoints(vec![
        ep("10.1.0.1", "n1"),
        ep("10.1.0.2", "n1"),
        ep("10.1.0.3", "n1"),
        ep("10.1.0.9", "n2"),
    ]);
    announcer.update(&s.config, &s.cluster, &ChangeSet::service(key("web")));
    assert_eq!(weight(&announcer), Some(3.0));
    assert_eq!(announcer.desired(), &s.plan().desired);
}

#[test]
fn weighted_ecmp_status_shows_the_weight_per_peer_and_prefix() {
    use ferrolb_speaker::protocol::bgp::{add_weights, service_json};
    let s = weighted_local(
        base(),
        vec![
            ep("10.1.0.1", "n1"),
            ep("10.1.0.2", "n1"),
            ep("10.1.0.3", "n1"),
        ],
    );
    let plan = s.plan();
    let status = &plan.services[&key("web")];
    let mut json = service_json(status);
    add_weights(&mut json, status, &plan.desired);
    assert_eq!(
        json["vips"]["192.0.2.10"]["weights"],
        serde_json::json!({"r1": {"192.0.2.10/32": 3.0}})
    );
    // Unweighted: no `weights` at all.
    let plain = base().plan();
    let status = &plain.services[&key("web")];
    let mut json = service_json(status);
    add_weights(&mut json, status, &plain.desired);
    assert!(
        json["vips"]["192.0.2.10"].get("weights").is_none(),
        "{json}"
    );
}
