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

// ---- BGPPeer ----

#[test]
fn peer_basic_is_valid_with_defaults() {
    let c = ok(&peer("p", BASIC_PEER));
    let p = &c.bgp_peers["p"];
    assert_eq!(p.my_asn, 64512);
    assert_eq!(p.peer_asn, PeerAsn::Fixed(64513));
    assert_eq!(p.peer_port, 179);
    assert_eq!(p.hold_time, None);
    assert!(!p.is_ibgp());
}

#[test]
fn peer_requires_my_asn() {
    one(
        &peer("p", "  myASN: 0\n  peerASN: 1\n  peerAddress: 10.1.0.1\n"),
        "spec.myASN",
        "required",
    );
}

#[test]
fn peer_asn_and_dynamic_asn_are_exclusive_and_one_is_required() {
    let c = ok(&peer(
        "p",
        "  myASN: 64512\n  dynamicASN: internal\n  peerAddress: 10.1.0.1\n",
    ));
    assert_eq!(c.bgp_peers["p"].peer_asn, PeerAsn::Internal);
    let c = ok(&peer(
        "p",
        "  myASN: 64512\n  dynamicASN: external\n  peerAddress: 10.1.0.1\n",
    ));
    assert_eq!(c.bgp_peers["p"].peer_asn, PeerAsn::External);
    one(
        &peer(
            "p",
            "  myASN: 64512\n  peerASN: 1\n  dynamicASN: external\n  peerAddress: 10.1.0.1\n",
        ),
        "spec.dynamicASN",
        "exclusive",
    );
    one(
        &peer("p", "  myASN: 64512\n  peerAddress: 10.1.0.1\n"),
        "spec.peerASN",
        "one_of_required",
    );
    one(
        &peer(
            "p",
            "  myASN: 64512\n  dynamicASN: sideways\n  peerAddress: 10.1.0.1\n",
        ),
        "spec.dynamicASN",
        "not_one_of",
    );
}

#[test]
fn peer_address_must_be_an_ip_and_interface_excludes_it() {
    one(
        &peer("p", "  myASN: 1\n  peerASN: 2\n  peerAddress: 10.1.0.300\n"),
        "spec.peerAddress",
        "bad_ip",
    );
    one(
        &peer("p", "  myASN: 1\n  peerASN: 2\n"),
        "spec.peerAddress",
        "one_of_required",
    );
    one(
        &peer(
            "p",
            "  myASN: 1\n  peerASN: 2\n  interface: eth0\n  peerAddress: 10.1.0.1\n",
        ),
        "spec.interface",
        "exclusive",
    );
    one(
        &peer("p", &format!("{BASIC_PEER}  sourceAddress: nope\n")),
        "spec.sourceAddress",
        "bad_ip",
    );
    one(
        &peer("p", &format!("{BASIC_PEER}  routerID: 'fc00::1'\n")),
        "spec.routerID",
        "bad_router_id",
    );
    let c = ok(&peer(
        "p",
        &format!("{BASIC_PEER}  routerID: 10.0.0.1\n  sourceAddress: 'fc00::2'\n"),
    ));
    assert_eq!(
        c.bgp_peers["p"].router_id,
        Some("10.0.0.1".parse().unwrap())
    );
}

#[test]
fn peer_port_range() {
    let c = ok(&peer("p", &format!("{BASIC_PEER}  peerPort: 1179\n")));
    assert_eq!(c.bgp_peers["p"].peer_port, 1179);
    one(
        &peer("p", &format!("{BASIC_PEER}  peerPort: 0\n")),
        "spec.peerPort",
        "out_of_range",
    );
    one(
        &peer("p", &format!("{BASIC_PEER}  peerPort: 20000\n")),
        "spec.peerPort",
        "out_of_range",
    );
}

#[test]
fn hold_time_is_zero_or_at_least_3s_rfc_4271_4_2() {
    use std::time::Duration;
    let t = |h: &str| peer("p", &format!("{BASIC_PEER}  holdTime: {h}\n"));
    for good in ["0s", "3s", "90s", "9m0s"] {
        ok(&t(good));
    }
    for bad in ["1s", "2s", "2900ms", "500ms"] {
        one(&t(bad), "spec.holdTime", "hold_time_too_short");
    }
    one(&t("70000s"), "spec.holdTime", "out_of_range");
    one(&t("ninety"), "spec.holdTime", "bad_duration");
    // One timer set derives the other (MetalLB parseTimers).
    let c = ok(&t("90s"));
    assert_eq!(
        c.bgp_peers["p"].keepalive_time,
        Some(Duration::from_secs(30))
    );
    let c = ok(&peer("p", &format!("{BASIC_PEER}  keepaliveTime: 10s\n")));
    assert_eq!(c.bgp_peers["p"].hold_time, Some(Duration::from_secs(30)));
}

#[test]
fn keepalive_must_not_exceed_hold_time() {
    ok(&peer(
        "p",
        &format!("{BASIC_PEER}  holdTime: 9m0s\n  keepaliveTime: 0s\n"),
    ));
    ok(&peer(
        "p",
        &format!("{BASIC_PEER}  holdTime: 30s\n  keepaliveTime: 30s\n"),
    ));
    one(
        &peer(
            "p",
            &format!("{BASIC_PEER}  holdTime: 30s\n  keepaliveTime: 31s\n"),
        ),
        "spec.keepaliveTime",
        "keepalive_above_hold",
    );
}

#[test]
fn connect_time_is_a_bounded_duration() {
    ok(&peer("p", &format!("{BASIC_PEER}  connectTime: 120s\n")));
    ok(&peer("p", &format!("{BASIC_PEER}  connectTime: 1s\n")));
    ok(&peer("p", &format!("{BASIC_PEER}  connectTime: 65535s\n")));
    one(
        &peer("p", &format!("{BASIC_PEER}  connectTime: 65536s\n")),
        "spec.connectTime",
        "out_of_range",
    );
    one(
        &peer("p", &format!("{BASIC_PEER}  connectTime: 10ms\n")),
        "spec.connectTime",
        "out_of_range",
    );
    one(
        &peer("p", &format!("{BASIC_PEER}  connectTime: x\n")),
        "spec.connectTime",
        "bad_duration",
    );
}

#[test]
fn ebgp_multihop_is_rejected_for_ibgp() {
    ok(&peer("p", &format!("{BASIC_PEER}  ebgpMultiHop: true\n")));
    one(
        &peer(
            "p",
            "  myASN: 64512\n  peerASN: 64512\n  peerAddress: 10.1.0.1\n  ebgpMultiHop: true\n",
        ),
        "spec.ebgpMultiHop",
        "multihop_on_ibgp",
    );
}

#[test]
fn password_and_password_secret_are_exclusive() {
    let c = ok(&peer("p", &format!("{BASIC_PEER}  password: s3cret\n")));
    assert_eq!(c.bgp_peers["p"].password.as_deref(), Some("s3cret"));
    let yaml = peer(
        "p",
        &format!("{BASIC_PEER}  password: a\n  passwordSecret: {{name: s}}\n"),
    ) + &secret(
        "s",
        "kubernetes.io/basic-auth",
        "stringData: {password: b}\n",
    );
    one(&yaml, "spec.passwordSecret", "exclusive");
}

#[test]
fn password_secret_must_exist_be_basic_auth_and_hold_a_password() {
    let p = peer("p", &format!("{BASIC_PEER}  passwordSecret: {{name: s}}\n"));
    // "czNjcmV0" is base64 for "s3cret".
    let c = ok(&(p.clone()
        + &secret(
            "s",
            "kubernetes.io/basic-auth",
            "data: {password: czNjcmV0}\n",
        )));
    assert_eq!(c.bgp_peers["p"].password.as_deref(), Some("s3cret"));
    let e = one(&p, "spec.passwordSecret.name", "missing_secret");
    assert!(e.is_transient());
    let e = one(
        &(p.clone() + &secret("s", "Opaque", "data: {password: czNjcmV0}\n")),
        "spec.passwordSecret.name",
        "secret_type",
    );
    assert!(!e.is_transient());
    one(
        &(p + &secret(
            "s",
            "kubernetes.io/basic-auth",
            "data: {username: czNjcmV0}\n",
        )),
        "spec.passwordSecret.name",
        "secret_no_password",
    );
}

#[test]
fn bfd_profile_must_exist_and_be_in_range() {
    let bfd = "---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast}\nspec: {receiveInterval: 380, transmitInterval: 270}\n";
    let p = peer("p", &format!("{BASIC_PEER}  bfdProfile: fast\n"));
    let c = ok(&(p.clone() + bfd));
    assert_eq!(c.bfd_profiles["fast"].receive_interval_ms, Some(380));
    one(&p, "spec.bfdProfile", "missing_reference");
    one(
        &bfd.replace("380", "5"),
        "spec.receiveInterval",
        "out_of_range",
    );
    one(
        &bfd.replace("270}", "270, detectMultiplier: 1}"),
        "spec.detectMultiplier",
        "out_of_range",
    );
    one(
        &bfd.replace("270}", "270, minimumTtl: 255}"),
        "spec.minimumTtl",
        "out_of_range",
    );
}

#[test]
fn ipv6_pools_must_not_be_advertised_to_peers_with_bfd_echo() {
    let bfd = "---\napiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: echo}\nspec: {echoMode: true}\n";
    let p = peer("p", &format!("{BASIC_PEER}  bfdProfile: echo\n"));
    let v4 = pool("v4", &["10.0.0.0/24"]);
    let v6 = pool("v6", &["fc00::/120"]);
    ok(&(bfd.to_string() + &p + &v4 + &bgp_adv("a", "  ipAddressPools: [v4]\n")));
    let e = one(
        &(bfd.to_string() + &p + &v6 + &bgp_adv("a", "  ipAddressPools: [v6]\n")),
        "spec.peers",
        "bfd_echo_with_ipv6",
    );
    assert_eq!(e.kind, "BGPAdvertisement");
    ok(&(bfd.replace("echoMode: true", "echoMode: false") + &p + &v6 + &bgp_adv("a", "  {}\n")));
}

#[test]
fn connect_time_must_be_whole_seconds() {
    // MetalLB's CRD: "connect time should contain a whole number of seconds".
    let e = one(
        &peer("p", &format!("{BASIC_PEER}  connectTime: 1500ms\n")),
        "spec.connectTime",
        "not_whole_seconds",
    );
    assert!(e.to_string().contains("1500ms"), "{e}");
    ok(&peer("p", &format!("{BASIC_PEER}  connectTime: 2000ms\n")));
}

#[test]
fn frr_mode_peer_fields_are_accepted_and_open_no_session_yet() {
    // Valid in MetalLB's FRR mode: the configuration is accepted (never rejected whole), the
    // peer opens no session, and `ignored_fields` warns.
    for (spec, path) in [
        (format!("{BASIC_PEER}  localASN: 65000\n"), "spec.localASN"),
        (
            "  myASN: 1\n  peerASN: 2\n  interface: eth0\n".to_string(),
            "spec.interface",
        ),
        (
            "  myASN: 1\n  dynamicASN: external\n  interface: eth0\n".to_string(),
            "spec.interface",
        ),
    ] {
        let yaml = peer("p", &spec)
            + &peer(
                "other",
                "  myASN: 1\n  peerASN: 3\n  peerAddress: 10.9.0.1\n",
            );
        let c = ok(&yaml);
        assert!(!c.bgp_peers.contains_key("p"), "{spec}");
        assert!(
            c.bgp_peers.contains_key("other"),
            "other peers are unaffected"
        );
        let warned: Vec<&str> = super::ignored_fields(&load(&yaml))
            .into_iter()
            .filter(|f| f.name == "p")
            .map(|f| f.path)
            .collect();
        assert_eq!(warned, [path], "{spec}");
    }
}

#[test]
fn two_peers_with_same_address_and_vrf_on_the_same_nodes_clash() {
    let a = peer("a", BASIC_PEER);
    let b = peer("b", BASIC_PEER);
    one(&(a.clone() + &b), "spec.peerAddress", "duplicate_peer");
    ok(&(a.clone() + &peer("b", &format!("{BASIC_PEER}  vrf: red\n"))));
    // Disjoint node selectors: fine without Node objects and with them.
    let za = peer(
        "a",
        &format!("{BASIC_PEER}  nodeSelectors: [{{matchLabels: {{zone: a}}}}]\n"),
    );
    let zb = peer(
        "b",
        &format!("{BASIC_PEER}  nodeSelectors: [{{matchLabels: {{zone: b}}}}]\n"),
    );
    ok(&(za.clone() + &zb));
    let nodes = "---\napiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {zone: a}}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {zone: b}}\n";
    ok(&(za.clone() + &zb + nodes));
    // An unrestricted peer overlaps with both.
    one(&(za + &b + nodes), "spec.peerAddress", "duplicate_peer");
}

#[test]
fn v1beta1_peer_is_converted() {
    let yaml = "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: old, namespace: x}\nspec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 10.1.0.1\n  peerPort: 0\n  holdTime: 90s\n  nodeSelectors:\n  - matchExpressions: [{key: zone, operator: In, values: [a]}]\n";
    let c = ok(yaml);
    let p = &c.bgp_peers["old"];
    assert_eq!(p.peer_port, 179);
    assert_eq!(p.node_selectors.len(), 1);
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
