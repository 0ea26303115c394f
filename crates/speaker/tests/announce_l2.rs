//! Table tests for the Layer 2 election (`l2::election` module doc, rules 1-5).

mod announce_fixtures;

use std::collections::BTreeSet;

use announce_fixtures::*;
use ferrolb_api::model::Config;
use ferrolb_speaker::advertiser::Interfaces;
use ferrolb_speaker::announce::input::{Cluster, TrafficPolicy, LABEL_EXCLUDE_FROM_LB};
use ferrolb_speaker::announce::reason::SkipReason;
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::l2::election::{
    compute_l2, election_key, rank_nodes, L2Plan, L2ServiceStatus, L2VipStatus,
};

const NODES: [&str; 3] = ["n1", "n2", "n3"];

/// Golden ranking for VIP 192.0.2.10, from `printf 'nX#192.0.2.10' | sha256sum` (GNU coreutils):
/// n2 = 6c55bbd1..., n3 = 83d302ab..., n1 = 9870ca2e...
const RANKING_192_0_2_10: [&str; 3] = ["n2", "n3", "n1"];

#[derive(Clone)]
struct Scenario {
    config: Config,
    cluster: Cluster,
    live: Option<BTreeSet<String>>,
}

impl Scenario {
    fn plan_on(&self, node: &str) -> L2Plan {
        compute_l2(
            &self.config,
            &self.cluster,
            &SpeakerOptions::for_node(node),
            self.live.as_ref(),
        )
    }
    /// The node every speaker agrees owns `vip` of ns/web, checking that they do agree.
    fn owner(&self, vip: &str) -> Option<String> {
        let owners: Vec<String> = NODES
            .iter()
            .filter(|n| self.plan_on(n).desired.vips.contains_key(&ip(vip)))
            .map(|n| n.to_string())
            .collect();
        assert!(owners.len() <= 1, "two owners for {vip}: {owners:?}");
        owners.into_iter().next()
    }
    fn web(&mut self) -> &mut ferrolb_speaker::announce::input::Service {
        self.cluster
            .services
            .get_mut(&key("web"))
            .expect("base has web")
    }
    fn node(&mut self, name: &str) -> &mut ferrolb_speaker::announce::input::Node {
        self.cluster.nodes.get_mut(name).expect("known node")
    }
}

/// Three nodes (zone a, b, c); pool 192.0.2.0/24 + 2001:db8::/64 in L2 mode via advertisement
/// "l2"; Service ns/web at 192.0.2.10 with a ready endpoint on every node.
fn base() -> Scenario {
    Scenario {
        config: config(
            vec![pool("v4", "192.0.2.0/24"), pool("v6", "2001:db8::/64")],
            vec![],
            vec![],
            vec![l2_adv("l2", &["v4", "v6"])],
        ),
        cluster: cluster(
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
            vec![
                node("n1", &[("zone", "a")]),
                node("n2", &[("zone", "b")]),
                node("n3", &[("zone", "c")]),
            ],
        ),
        live: None,
    }
}

#[test]
fn election_key_is_metallbs_sha256_of_node_hash_ip() {
    let key = election_key("n1", ip("192.0.2.10"));
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "9870ca2e99562e2044624725b11711d848b35680626dc334849a3dcce8e4fb1d"
    );
}

#[test]
fn ranking_matches_the_golden_order_whatever_the_input_order() {
    for order in [["n1", "n2", "n3"], ["n3", "n1", "n2"], ["n2", "n3", "n1"]] {
        let ranked = rank_nodes(order.iter().map(|n| n.to_string()), ip("192.0.2.10"));
        assert_eq!(ranked, RANKING_192_0_2_10, "input order {order:?}");
    }
}

type Row = (&'static str, fn(&mut Scenario), Option<&'static str>);
type StatusRow = (&'static str, fn(&mut Scenario), L2ServiceStatus);

#[test]
fn who_owns_the_vip() {
    let rows: Vec<Row> = vec![
        (
            "all eligible: the first of the golden ranking",
            |_| {},
            Some("n2"),
        ),
        (
            "Ready condition absent counts as alive",
            |s| s.node("n2").ready = None,
            Some("n2"),
        ),
        (
            "speaker liveness tracked: only live speakers",
            |s| s.live = Some(BTreeSet::from(["n1".to_string(), "n3".to_string()])),
            Some("n3"),
        ),
        (
            "the winner's network unavailable",
            |s| s.node("n2").network_unavailable = true,
            Some("n3"),
        ),
        (
            "the winner excluded from load balancers",
            |s| {
                s.node("n2")
                    .labels
                    .insert(LABEL_EXCLUDE_FROM_LB.into(), "true".into());
            },
            Some("n3"),
        ),
        (
            "nodeSelectors restrict the candidates",
            |s| {
                s.config
                    .l2_advertisements
                    .get_mut("l2")
                    .expect("l2")
                    .node_selectors = vec![selector(&[("zone", "a")])];
            },
            Some("n1"),
        ),
        (
            "Cluster policy: a node without endpoint may win",
            |s| {
                s.cluster.endpoint_slices.clear();
                s.cluster
                    .upsert_endpoint_slice(slice("web", "a", vec![ep("10.0.0.1", "n1")]));
            },
            Some("n2"),
        ),
        (
            "Local policy: only nodes with a serving endpoint",
            |s| {
                s.web().traffic_policy = TrafficPolicy::Local;
                s.cluster.endpoint_slices.clear();
                s.cluster
                    .upsert_endpoint_slice(slice("web", "a", vec![ep("10.0.0.1", "n1")]));
            },
            Some("n1"),
        ),
        (
            "no endpoint anywhere: nobody",
            |s| s.cluster.endpoint_slices.clear(),
            None,
        ),
        (
            "no L2Advertisement for the pool: nobody",
            |s| s.config.l2_advertisements.clear(),
            None,
        ),
        (
            "serviceSelectors exclude the Service: nobody",
            |s| {
                s.config
                    .l2_advertisements
                    .get_mut("l2")
                    .expect("l2")
                    .service_selectors = vec![selector(&[("app", "x")])];
            },
            None,
        ),
        (
            "every node excluded: nobody",
            |s| {
                for n in NODES {
                    s.node(n).network_unavailable = true;
                }
            },
            None,
        ),
    ];
    for (name, mutate, want) in &rows {
        let mut s = base();
        mutate(&mut s);
        assert_eq!(s.owner("192.0.2.10").as_deref(), *want, "{name}");
    }
}

#[test]
fn losers_report_the_winner_and_the_ranking() {
    let s = base();
    let plan = s.plan_on("n1");
    let Some(L2ServiceStatus::Vips(vips)) = plan.services.get(&key("web")) else {
        panic!("expected per-VIP status");
    };
    let (election, status) = &vips[&ip("192.0.2.10")];
    assert_eq!(election.ranking, RANKING_192_0_2_10);
    assert_eq!(
        status,
        &L2VipStatus::NotOwner(SkipReason::NotOwner {
            winner: "n2".into()
        })
    );
    assert!(plan.desired.vips.is_empty());
}

#[test]
fn skip_reasons() {
    let cases: Vec<StatusRow> = vec![
        (
            "no endpoints",
            |s| s.cluster.endpoint_slices.clear(),
            L2ServiceStatus::Skipped(SkipReason::NoEndpoints),
        ),
        (
            "not a LoadBalancer",
            |s| s.web().is_load_balancer = false,
            L2ServiceStatus::Skipped(SkipReason::NotLoadBalancer),
        ),
        (
            "no IP",
            |s| s.web().ips.clear(),
            L2ServiceStatus::Skipped(SkipReason::NoIpAssigned),
        ),
    ];
    for (name, mutate, want) in cases {
        let mut s = base();
        mutate(&mut s);
        assert_eq!(
            s.plan_on("n2").services.get(&key("web")),
            Some(&want),
            "{name}"
        );
    }
    let mut s = base();
    s.web().ips = vec![ip("203.0.113.1")];
    let plan = s.plan_on("n2");
    let Some(L2ServiceStatus::Vips(vips)) = plan.services.get(&key("web")) else {
        panic!("expected per-VIP status");
    };
    assert_eq!(
        vips[&ip("203.0.113.1")].1,
        L2VipStatus::NotOwner(SkipReason::NoPool)
    );
}

#[test]
fn each_vip_of_a_dual_stack_service_is_elected_on_its_own() {
    // Golden: `printf 'nX#2001:db8::10' | sha256sum` ranks n1 (4cf83e1a...) first.
    let mut s = base();
    s.web().ips = vec![ip("192.0.2.10"), ip("2001:db8::10")];
    assert_eq!(s.owner("192.0.2.10").as_deref(), Some("n2"));
    assert_eq!(s.owner("2001:db8::10").as_deref(), Some("n1"));
}

#[test]
fn services_sharing_a_vip_elect_one_owner_whatever_their_other_ips() {
    // Regression for the first-IP key (MetalLB's): web2 lists 192.0.2.10 second, so hashing each
    // Service's first IP would elect a different owner for the shared VIP.
    let mut s = base();
    s.cluster
        .upsert_service(svc("web2", &["192.0.2.99", "192.0.2.10"]));
    s.cluster
        .upsert_endpoint_slice(slice("web2", "a", vec![ep("10.0.1.1", "n1")]));
    assert_eq!(s.owner("192.0.2.10").as_deref(), Some("n2"));
}

#[test]
fn interfaces_are_the_union_of_the_applying_advertisements() {
    let mut s = base();
    let mut a = l2_adv("l2", &["v4"]);
    a.interfaces = vec!["eth0".into()];
    let mut b = l2_adv("l2b", &["v4"]);
    b.interfaces = vec!["eth1".into(), "eth0".into()];
    // An advertisement whose nodeSelectors exclude the owner does not contribute.
    let mut c = l2_adv("l2c", &["v4"]);
    c.interfaces = vec!["eth9".into()];
    c.node_selectors = vec![selector(&[("zone", "a")])];
    s.config.l2_advertisements.clear();
    for ad in [a, b, c] {
        s.config.l2_advertisements.insert(ad.name.clone(), ad);
    }
    let plan = s.plan_on("n2");
    let vip = &plan.desired.vips[&ip("192.0.2.10")];
    assert_eq!(
        vip.interfaces,
        Interfaces::Only(BTreeSet::from(["eth0".to_string(), "eth1".to_string()]))
    );
    assert_eq!(vip.services, BTreeSet::from([key("web")]));

    // One applying advertisement without interfaces means every interface.
    s.config
        .l2_advertisements
        .insert("all".into(), l2_adv("all", &["v4"]));
    assert_eq!(
        s.plan_on("n2").desired.vips[&ip("192.0.2.10")].interfaces,
        Interfaces::All
    );
}

#[test]
fn a_shared_vip_lists_every_service() {
    let mut s = base();
    let mut other = svc("web2", &["192.0.2.10"]);
    other.labels = labels(&[("app", "web2")]);
    s.cluster.upsert_service(other);
    s.cluster
        .upsert_endpoint_slice(slice("web2", "a", vec![ep("10.0.1.1", "n1")]));
    let plan = s.plan_on("n2");
    assert_eq!(
        plan.desired.vips[&ip("192.0.2.10")].services,
        BTreeSet::from([key("web"), key("web2")])
    );
}
