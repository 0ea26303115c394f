//! BGPPeer and BFDProfile rules, one valid and one invalid case each.

use super::*;

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
    // The peer carries the resolved profile, so the speaker sees a profile edit as a change.
    let carried = c.bgp_peers["p"].bfd.as_ref().expect("profile carried");
    assert_eq!(carried, &c.bfd_profiles["fast"]);
    assert_eq!(carried.transmit_interval_ms, Some(270));
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
fn unnumbered_peers_are_accepted_with_their_interface() {
    // Valid in MetalLB's FRR mode: interface without peerAddress, with peerASN or dynamicASN.
    for spec in [
        "  myASN: 1\n  peerASN: 2\n  interface: eth0\n",
        "  myASN: 1\n  dynamicASN: external\n  interface: eth0\n",
    ] {
        let c = ok(&peer("p", spec));
        let p = &c.bgp_peers["p"];
        assert_eq!(p.interface.as_deref(), Some("eth0"), "{spec}");
        assert!(p.peer_address.is_unspecified(), "{spec}");
        assert!(crate::validate::ignored_fields(&load(&peer("p", spec))).is_empty());
    }
    // Two unnumbered peers on different interfaces are different sessions; on the same one
    // they clash.
    let a = peer("a", "  myASN: 1\n  peerASN: 2\n  interface: eth0\n");
    ok(&(a.clone() + &peer("b", "  myASN: 1\n  peerASN: 2\n  interface: eth1\n")));
    one(
        &(a + &peer("b", "  myASN: 1\n  peerASN: 2\n  interface: eth0\n")),
        "spec.peerAddress",
        "duplicate_peer",
    );
}

#[test]
fn local_asn_is_the_session_asn_and_decides_ibgp() {
    let c = ok(&peer("p", &format!("{BASIC_PEER}  localASN: 65100\n")));
    let p = &c.bgp_peers["p"];
    assert_eq!(p.local_asn, Some(65100));
    assert_eq!(p.session_asn(), 65100);
    assert!(!p.is_ibgp());
    let c = ok(&peer(
        "p",
        "  myASN: 1\n  peerASN: 65100\n  localASN: 65100\n  peerAddress: 10.1.0.1\n",
    ));
    assert!(c.bgp_peers["p"].is_ibgp(), "the peer is in the local AS");
    one(
        &peer(
            "p",
            "  myASN: 1\n  peerASN: 65100\n  localASN: 65100\n  peerAddress: 10.1.0.1\n  \
             ebgpMultiHop: true\n",
        ),
        "spec.ebgpMultiHop",
        "multihop_on_ibgp",
    );
}

#[test]
fn vrf_and_connect_time_reach_the_model() {
    let c = ok(&peer(
        "p",
        &format!("{BASIC_PEER}  vrf: red\n  connectTime: 5s\n"),
    ));
    let p = &c.bgp_peers["p"];
    assert_eq!(p.vrf.as_deref(), Some("red"));
    assert_eq!(p.connect_time, Some(std::time::Duration::from_secs(5)));
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
