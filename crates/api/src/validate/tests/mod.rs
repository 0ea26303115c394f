//! One valid and one invalid case per rule, written as YAML like an operator would.

use std::path::Path;

use super::validate;
use crate::error::{ConfigError, Reason};
use crate::model::{BgpCommunity, PeerAsn};
use crate::source::files::load_str;

const NS: &str = "metallb-system";

fn load(yaml: &str) -> crate::Resources {
    load_str(yaml, Path::new("test.yaml")).expect("test YAML loads")
}

fn ok(yaml: &str) -> crate::model::Config {
    match validate(&load(yaml)) {
        Ok(c) => c,
        Err(errs) => panic!("expected valid, got:\n{}", lines(&errs)),
    }
}

fn errs(yaml: &str) -> Vec<ConfigError> {
    match validate(&load(yaml)) {
        Ok(c) => panic!("expected errors, got a config: {c:?}"),
        Err(e) => e,
    }
}

fn lines(errs: &[ConfigError]) -> String {
    errs.iter().map(|e| format!("{e}\n")).collect()
}

/// Asserts that exactly one error has `path` and a reason with `label`, and returns it.
fn one(yaml: &str, path: &str, label: &str) -> ConfigError {
    let all = errs(yaml);
    let hits: Vec<&ConfigError> = all
        .iter()
        .filter(|e| e.path == path && e.reason.metric_label() == label)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "want one {label} at {path}, got:\n{}",
        lines(&all)
    );
    hits[0].clone()
}

fn pool(name: &str, addrs: &[&str]) -> String {
    let list: String = addrs.iter().map(|a| format!("  - {a:?}\n")).collect();
    format!(
        "---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  addresses:\n{list}"
    )
}

fn peer(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n{spec}"
    )
}

fn bgp_adv(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n{spec}"
    )
}

fn l2_adv(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n{spec}"
    )
}

fn secret(name: &str, ty: &str, data: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {NS}\ntype: {ty}\n{data}"
    )
}

mod peers;

const BASIC_PEER: &str = "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.1.0.1\n";

// ---- IPAddressPool ----

#[test]
fn pool_accepts_cidrs_and_ranges_of_both_families() {
    let c = ok(&pool(
        "a",
        &["192.168.10.0/24", "192.168.9.1-192.168.9.5", "fc00::/124"],
    ));
    let p = &c.pools["a"];
    assert_eq!(p.ranges.len(), 3);
    assert!(p.auto_assign);
    assert!(!p.avoid_buggy_ips);
    assert!(p.contains(&"192.168.9.5".parse().unwrap()));
    assert!(!p.contains(&"192.168.9.6".parse().unwrap()));
}

#[test]
fn pool_rejects_bad_cidr_naming_the_entry() {
    let e = one(
        &pool("a", &["10.0.0.0/24", "10.1.0.0/33"]),
        "spec.addresses[1]",
        "bad_addresses",
    );
    assert_eq!(e.value, "10.1.0.0/33");
    assert_eq!(
        (e.kind.as_str(), e.namespace.as_str(), e.name.as_str()),
        ("IPAddressPool", NS, "a")
    );
}

#[test]
fn pool_rejects_reversed_and_mixed_family_ranges() {
    one(
        &pool("a", &["10.0.0.9-10.0.0.1"]),
        "spec.addresses[0]",
        "bad_addresses",
    );
    one(
        &pool("a", &["10.0.0.1-fc00::1"]),
        "spec.addresses[0]",
        "bad_addresses",
    );
}

#[test]
fn pool_requires_addresses() {
    one(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec: {addresses: []}\n",
        "spec.addresses",
        "required",
    );
}

#[test]
fn pools_must_not_overlap_within_or_across_pools() {
    one(
        &pool("a", &["10.0.0.0/24", "10.0.0.128-10.0.0.130"]),
        "spec.addresses[1]",
        "overlap",
    );
    let yaml = pool("a", &["10.0.0.0/24"]) + &pool("b", &["10.0.0.255-10.0.1.3"]);
    let e = one(&yaml, "spec.addresses[0]", "overlap");
    assert_eq!(e.name, "b");
    assert!(e.to_string().contains("IPAddressPool a"), "{e}");
    ok(&(pool("a", &["10.0.0.0/24"]) + &pool("b", &["10.0.1.0-10.0.1.3", "fc00::/64"])));
}

#[test]
fn pool_names_must_be_unique() {
    one(
        &(pool("a", &["10.0.0.0/24"]) + &pool("a", &["10.0.1.0/24"])),
        "metadata.name",
        "duplicate_name",
    );
}

#[test]
fn pool_may_contain_a_node_address_as_in_metallb() {
    // MetalLB added this rejection and reverted it: existing clusters relied on such pools.
    let node = "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\nstatus:\n  addresses:\n  - {type: InternalIP, address: 10.0.0.7}\n";
    let c = ok(&(pool("a", &["10.0.0.0/24"]) + node));
    assert!(c.pools.contains_key("a"));
}

#[test]
fn avoid_buggy_ips_and_auto_assign_are_carried() {
    let yaml = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec:\n  addresses: [10.0.0.0/24]\n  avoidBuggyIPs: true\n  autoAssign: false\n";
    let c = ok(yaml);
    assert!(c.pools["a"].avoid_buggy_ips);
    assert!(!c.pools["a"].auto_assign);
}

#[test]
fn service_allocation_is_validated_and_carried() {
    let good = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: a}\nspec:\n  addresses: [10.0.0.0/24]\n  serviceAllocation:\n    priority: 50\n    namespaces: [ns-a, ns-b]\n    namespaceSelectors:\n    - matchLabels: {foo: bar}\n    serviceSelectors:\n    - matchExpressions:\n      - {key: app, operator: In, values: [bar]}\n";
    let c = ok(good);
    let sa = c.pools["a"].service_allocation.as_ref().unwrap();
    assert_eq!(sa.priority, Some(50));
    assert_eq!(sa.namespaces.len(), 2);
    assert_eq!(sa.namespace_selectors.len(), 1);
    assert_eq!(sa.service_selectors.len(), 1);

    let dup_ns = good.replace("[ns-a, ns-b]", "[ns-a, ns-a]");
    one(
        &dup_ns,
        "spec.serviceAllocation.namespaces[1]",
        "duplicate_entry",
    );
    let bad_ns = good.replace("[ns-a, ns-b]", "[ns-a, NS_B]");
    one(
        &bad_ns,
        "spec.serviceAllocation.namespaces[1]",
        "bad_selector",
    );
    let bad_op = good.replace("operator: In", "operator: Like");
    one(
        &bad_op,
        "spec.serviceAllocation.serviceSelectors[0].matchExpressions[0].operator",
        "not_one_of",
    );
}

// ---- selectors ----

#[test]
fn selectors_must_be_well_formed() {
    let with = |sel: &str| l2_adv("l2", &format!("  nodeSelectors:\n  - {sel}\n"));
    ok(&with("matchExpressions: [{key: zone, operator: Exists}]"));
    ok(&with("matchLabels: {kubernetes.io/hostname: kind-worker}"));
    one(
        &with("matchExpressions: [{key: zone, operator: In}]"),
        "spec.nodeSelectors[0].matchExpressions[0].values",
        "bad_selector",
    );
    one(
        &with("matchExpressions: [{key: zone, operator: Exists, values: [a]}]"),
        "spec.nodeSelectors[0].matchExpressions[0].values",
        "bad_selector",
    );
    one(
        &with("matchExpressions: [{key: 'bad key', operator: Exists}]"),
        "spec.nodeSelectors[0].matchExpressions[0].key",
        "bad_selector",
    );
    one(
        &with("matchLabels: {zone: 'a b'}"),
        "spec.nodeSelectors[0].matchLabels[\"zone\"]",
        "bad_selector",
    );
    let dup = l2_adv(
        "l2",
        "  nodeSelectors:\n  - matchLabels: {a: b}\n  - matchLabels: {a: b}\n",
    );
    one(&dup, "spec.nodeSelectors[1]", "duplicate_entry");
}

// ---- Community / BGPAdvertisement ----

#[test]
fn communities_standard_large_and_alias() {
    let comm = "---\napiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: c}\nspec:\n  communities:\n  - {name: NO_ADVERTISE, value: '65535:65282'}\n";
    let adv = bgp_adv(
        "a",
        "  communities: ['NO_ADVERTISE', '1:2', 'large:1:2:3']\n",
    );
    let c = ok(&(adv.clone() + comm));
    assert_eq!(
        c.bgp_advertisements["a"].communities,
        vec![
            BgpCommunity::Standard(0x0001_0002),
            BgpCommunity::Standard(0xffff_ff02),
            BgpCommunity::Large(1, 2, 3)
        ]
    );
    one(&adv, "spec.communities[0]", "missing_reference");
    one(
        &bgp_adv("a", "  communities: ['70000:1']\n"),
        "spec.communities[0]",
        "bad_community",
    );
    one(
        &bgp_adv("a", "  communities: ['1:1', '1:1']\n"),
        "spec.communities[1]",
        "duplicate_entry",
    );
    one(
        &comm.replace("65535:65282", "655350:1"),
        "spec.communities[0].value",
        "bad_community",
    );
    let twice = comm.to_string() + &comm.replace("name: c}", "name: d}");
    one(&twice, "spec.communities[0].name", "duplicate_name");
}

#[test]
fn aggregation_length_must_not_be_shorter_than_pool_prefixes() {
    let p = pool("p", &["10.0.0.0/24", "fc00::/64"]);
    ok(&(p.clone() + &bgp_adv("a", "  aggregationLength: 24\n  aggregationLengthV6: 64\n")));
    let e = one(
        &(p.clone() + &bgp_adv("a", "  aggregationLength: 16\n")),
        "spec.aggregationLength",
        "aggregation_too_short",
    );
    assert!(e.to_string().contains("10.0.0.0/24"), "{e}");
    one(
        &(p.clone() + &bgp_adv("a", "  aggregationLength: 24\n  aggregationLengthV6: 48\n")),
        "spec.aggregationLengthV6",
        "aggregation_too_short",
    );
    // The range 10.0.1.1-10.0.1.2 summarizes to two /32s: /31 aggregation would leak .0 or .3.
    let r = pool("r", &["10.0.1.1-10.0.1.2"]);
    one(
        &(r.clone() + &bgp_adv("a", "  aggregationLength: 31\n")),
        "spec.aggregationLength",
        "aggregation_too_short",
    );
    // Only pools the advertisement selects are checked.
    ok(&(p + &r + &bgp_adv("a", "  aggregationLength: 24\n  ipAddressPools: [p2]\n")));
    one(
        &bgp_adv("a", "  aggregationLength: 33\n"),
        "spec.aggregationLength",
        "out_of_range",
    );
    one(
        &bgp_adv("a", "  aggregationLength: 0\n"),
        "spec.aggregationLength",
        "out_of_range",
    );
    one(
        &bgp_adv("a", "  aggregationLengthV6: 129\n"),
        "spec.aggregationLengthV6",
        "out_of_range",
    );
}

#[test]
fn advertisement_pools_resolve_by_name_and_label_and_default_to_all() {
    let labelled = "---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: l, labels: {tier: gold}}\nspec: {addresses: [10.9.0.0/24]}\n";
    let base = pool("p", &["10.0.0.0/24"]) + labelled;
    let c = ok(&(base.clone() + &bgp_adv("all", "  {}\n")));
    assert_eq!(c.bgp_advertisements["all"].pools.len(), 2);
    let c = ok(&(base.clone() + &bgp_adv("named", "  ipAddressPools: [p, missing]\n")));
    assert_eq!(
        c.bgp_advertisements["named"]
            .pools
            .iter()
            .collect::<Vec<_>>(),
        ["p"]
    );
    let c = ok(&(base
        + &l2_adv(
            "sel",
            "  ipAddressPoolSelectors: [{matchLabels: {tier: gold}}]\n",
        )));
    assert_eq!(
        c.l2_advertisements["sel"].pools.iter().collect::<Vec<_>>(),
        ["l"]
    );
}

#[test]
fn local_pref_towards_ebgp_only_is_accepted_and_warned() {
    // Valid in MetalLB: LOCAL_PREF is simply not sent to eBGP peers (RFC 4271 §5.1.5).
    let ebgp = peer("e", BASIC_PEER);
    let ibgp = peer(
        "i",
        "  myASN: 64512\n  peerASN: 64512\n  peerAddress: 10.1.0.2\n",
    );
    let warned = |yaml: &str| -> Vec<String> {
        super::ignored_fields(&load(yaml))
            .iter()
            .filter(|f| f.kind == "BGPAdvertisement")
            .map(|f| format!("{} {}", f.name, f.path))
            .collect()
    };
    let mixed = ebgp.clone() + &ibgp + &bgp_adv("a", "  localPref: 150\n  peers: [e, i]\n");
    ok(&mixed);
    assert!(warned(&mixed).is_empty(), "an iBGP peer gets the value");
    let only_ebgp = ebgp.clone() + &bgp_adv("a", "  localPref: 150\n  peers: [e]\n");
    let c = ok(&only_ebgp);
    assert_eq!(c.bgp_advertisements["a"].local_pref, Some(150));
    assert_eq!(warned(&only_ebgp), ["a spec.localPref"]);
    let all_peers_ebgp = ebgp + &bgp_adv("a", "  localPref: 150\n");
    ok(&all_peers_ebgp);
    assert_eq!(warned(&all_peers_ebgp), ["a spec.localPref"]);
}

#[test]
fn service_selectors_need_the_default_aggregation_lengths() {
    // MetalLB's CRD rule: "serviceSelectors and aggregationLength are mutually exclusive, can
    // only be used together with default aggregationLength (32) and aggregationLengthV6 (128)".
    let base = pool("p", &["10.0.0.0/24", "2001:db8::/64"]);
    let sel = "  serviceSelectors:\n  - matchLabels: {app: web}\n";
    ok(&(base.clone() + &bgp_adv("a", sel)));
    ok(&(base.clone()
        + &bgp_adv(
            "a",
            &format!("{sel}  aggregationLength: 32\n  aggregationLengthV6: 128\n"),
        )));
    ok(&(base.clone() + &bgp_adv("a", "  aggregationLength: 24\n")));
    let e = one(
        &(base.clone() + &bgp_adv("a", &format!("{sel}  aggregationLength: 24\n"))),
        "spec.aggregationLength",
        "service_selectors_with_aggregation",
    );
    assert!(e.to_string().contains("24"), "{e}");
    one(
        &(base + &bgp_adv("a", &format!("{sel}  aggregationLengthV6: 64\n"))),
        "spec.aggregationLengthV6",
        "service_selectors_with_aggregation",
    );
}

#[test]
fn a_type_error_names_the_field() {
    let yaml = peer("p", &format!("{BASIC_PEER}  holdTime: 90\n"));
    let err =
        load_str(&yaml, Path::new("test.yaml")).expect_err("an integer is not a duration string");
    let text = err.to_string();
    assert!(text.contains("spec.holdTime"), "{text}");
    assert!(text.contains("BGPPeer"), "{text}");
}

#[test]
fn conflicting_local_prefs_for_the_same_update_are_rejected() {
    let node = "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1}\n";
    let p = pool("p", &["10.0.0.0/24"]);
    let a = bgp_adv("a", "  localPref: 100\n");
    let b = bgp_adv("b", "  localPref: 200\n");
    one(
        &(p.clone() + node + &a + &b),
        "spec.localPref",
        "local_pref_conflict",
    );
    // Different aggregation lengths for both families make different UPDATEs.
    let b2 = bgp_adv(
        "b",
        "  localPref: 200\n  aggregationLength: 25\n  aggregationLengthV6: 120\n",
    );
    ok(&(p.clone() + node + &a + &b2));
    let b3 = bgp_adv("b", "  localPref: 100\n  peers: [x]\n");
    ok(&(p + node + &a + &b3));
}

#[test]
fn identical_advertisements_under_different_names_are_accepted_as_in_metallb() {
    // MetalLB's duplicate check compares whole objects, names included, so it never fires
    // for two named objects; two identical advertisements simply advertise the same thing.
    ok(&(bgp_adv("a", "  peers: [x]\n") + &bgp_adv("b", "  peers: [x]\n")));
}

// ---- L2Advertisement ----

#[test]
fn l2_interfaces_must_be_interface_names() {
    let c = ok(&l2_adv("l2", "  interfaces: [eth0, bond0.100]\n"));
    assert_eq!(c.l2_advertisements["l2"].interfaces, ["eth0", "bond0.100"]);
    one(
        &l2_adv("l2", "  interfaces: ['eth/0']\n"),
        "spec.interfaces[0]",
        "bad_interface",
    );
    one(
        &l2_adv("l2", "  interfaces: ['averyveryverylongname']\n"),
        "spec.interfaces[0]",
        "bad_interface",
    );
    one(
        &l2_adv("l2", "  interfaces: ['']\n"),
        "spec.interfaces[0]",
        "bad_interface",
    );
    one(
        &l2_adv("l2", "  interfaces: [eth0, eth0]\n"),
        "spec.interfaces[1]",
        "duplicate_entry",
    );
}

#[test]
fn l2_preferred_node_weights_are_1_to_100() {
    ok(&l2_adv(
        "l2",
        "  preferredNodeSelectors: [{weight: 50, preference: {matchLabels: {a: b}}}]\n",
    ));
    one(
        &l2_adv(
            "l2",
            "  preferredNodeSelectors: [{weight: 0, preference: {matchLabels: {a: b}}}]\n",
        ),
        "spec.preferredNodeSelectors[0].weight",
        "out_of_range",
    );
}

// ---- all-or-nothing and reporting ----

#[test]
fn every_error_is_reported_not_only_the_first() {
    let yaml = pool("a", &["bad", "10.0.0.0/33"])
        + &peer("p", "  myASN: 0\n  peerASN: 1\n  peerAddress: x\n");
    let all = errs(&yaml);
    assert!(all.len() >= 4, "{}", lines(&all));
    for e in &all {
        let line = e.to_string();
        assert!(!line.contains('\n'));
        assert!(line.contains(&e.path), "{line}");
    }
}

#[test]
fn missing_name_is_an_error() {
    one(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {}\nspec: {addresses: [10.0.0.0/24]}\n",
        "metadata.name",
        "missing_name",
    );
}

#[test]
fn empty_configuration_is_valid_and_empty() {
    assert_eq!(ok(""), crate::model::Config::default());
    let _ = Reason::Required;
}

// ---- property: overlap detection over whole configurations ----

mod props {
    use proptest::prelude::*;

    use super::validate;
    use crate::crd::{IPAddressPool, IPAddressPoolSpec};
    use crate::source::Resources;

    /// Ranges inside 10.0.0.0/25 so that clashes are common; written as CIDR or `a-b`.
    fn entry() -> impl Strategy<Value = (u32, u32, String)> {
        prop_oneof![
            (0u32..128, 0u32..128).prop_map(|(a, b)| {
                let (a, b) = (a.min(b), a.max(b));
                (a, b, format!("10.0.0.{a}-10.0.0.{b}"))
            }),
            (0u32..128, 27u32..=32).prop_map(|(a, len)| {
                let size = 1u32 << (32 - len);
                let start = a / size * size;
                (start, start + size - 1, format!("10.0.0.{a}/{len}"))
            }),
        ]
    }

    proptest! {
        #[test]
        fn config_is_rejected_exactly_when_some_entries_overlap(
            pools in prop::collection::vec(prop::collection::vec(entry(), 1..4), 1..4)
        ) {
            let mut res = Resources::default();
            let mut all = Vec::new();
            for (i, entries) in pools.iter().enumerate() {
                let mut p = IPAddressPool::new(
                    &format!("p{i}"),
                    IPAddressPoolSpec {
                        addresses: entries.iter().map(|(_, _, s)| s.clone()).collect(),
                        ..Default::default()
                    },
                );
                p.metadata.namespace = Some("ns".into());
                res.ip_address_pools.push(p);
                all.extend(entries.iter().map(|(a, b, _)| (*a, *b)));
            }
            let overlapping = all.iter().enumerate().any(|(i, x)| {
                all.iter().skip(i + 1).any(|y| x.0 <= y.1 && y.0 <= x.1)
            });
            match validate(&res) {
                Ok(config) => {
                    prop_assert!(!overlapping);
                    let n: usize = config.pools.values().map(|p| p.ranges.len()).sum();
                    prop_assert_eq!(n, all.len());
                }
                Err(errs) => {
                    prop_assert!(overlapping, "{:?}", errs);
                    prop_assert!(errs.iter().all(|e| e.reason.metric_label() == "overlap"));
                }
            }
        }
    }
}

/// MetalLB's CRD schema bounds (`minimum`/`maximum` in shared/metallb/crd), one row each: the
/// value at each edge is accepted and the value just past it rejected with the field's path.
#[test]
fn crd_numeric_bounds_accept_the_edges_and_reject_one_past() {
    let bfd = |field: &str, v: i64| {
        format!("---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {{name: b}}\nspec: {{{field}: {v}}}\n")
    };
    let adv = |field: &str, v: i64| {
        pool("p", &["0.0.0.0/1", "::/0"]) + &bgp_adv("a", &format!("  {field}: {v}\n"))
    };
    let weight = |v: i64| {
        pool("p", &["10.0.0.0/24"])
            + &l2_adv(
                "l",
                &format!("  preferredNodeSelectors:\n  - weight: {v}\n    preference: {{matchLabels: {{a: b}}}}\n"),
            )
    };
    let peer_port = |v: i64| peer("p", &format!("{BASIC_PEER}  peerPort: {v}\n"));
    type Build = Box<dyn Fn(i64) -> String>;
    let rows: Vec<(&str, Build, i64, i64)> = vec![
        (
            "spec.detectMultiplier",
            Box::new(move |v| bfd("detectMultiplier", v)),
            2,
            255,
        ),
        (
            "spec.receiveInterval",
            Box::new(move |v| bfd("receiveInterval", v)),
            10,
            60000,
        ),
        (
            "spec.transmitInterval",
            Box::new(move |v| bfd("transmitInterval", v)),
            10,
            60000,
        ),
        (
            "spec.echoInterval",
            Box::new(move |v| bfd("echoInterval", v)),
            10,
            60000,
        ),
        (
            "spec.minimumTtl",
            Box::new(move |v| bfd("minimumTtl", v)),
            1,
            254,
        ),
        (
            "spec.aggregationLength",
            Box::new(move |v| adv("aggregationLength", v)),
            1,
            32,
        ),
        (
            "spec.aggregationLengthV6",
            Box::new(move |v| adv("aggregationLengthV6", v)),
            0,
            128,
        ),
        (
            "spec.preferredNodeSelectors[0].weight",
            Box::new(weight),
            1,
            100,
        ),
        ("spec.peerPort", Box::new(peer_port), 1, 16384),
    ];
    for (path, build, min, max) in &rows {
        ok(&build(*min));
        ok(&build(*max));
        let below = errs(&build(min - 1));
        let above = errs(&build(max + 1));
        for (v, all) in [(min - 1, below), (max + 1, above)] {
            assert!(
                all.iter()
                    .any(|e| e.path == *path && e.value == v.to_string()),
                "{path} = {v}: want an error at the path, got:\n{}",
                lines(&all)
            );
        }
    }
}

#[test]
fn weighted_ecmp_annotation_is_opt_in_and_only_endpoints() {
    use crate::model::WeightedEcmp;
    let p = pool("p", &["10.0.0.0/24"]);
    let annotated = |value: &str| {
        bgp_adv("a", "  ipAddressPools: [p]\n").replace(
            "  name: a\n",
            &format!("  name: a\n  annotations:\n    ferrolb.io/weighted-ecmp: {value}\n"),
        )
    };
    let plain = ok(&(p.clone() + &bgp_adv("a", "  ipAddressPools: [p]\n")));
    assert_eq!(plain.bgp_advertisements["a"].weighted_ecmp, None);
    let on = ok(&(p.clone() + &annotated("endpoints")));
    assert_eq!(
        on.bgp_advertisements["a"].weighted_ecmp,
        Some(WeightedEcmp::Endpoints)
    );
    let e = one(
        &(p + &annotated("pods")),
        "metadata.annotations[ferrolb.io/weighted-ecmp]",
        "not_one_of",
    );
    assert_eq!(e.value, "pods");
    let msg = e.to_string();
    assert!(msg.contains("endpoints") && msg.contains("pods"), "{msg}");
}
