//! `DecodeCtx::negotiate`: what two OPENs agree on (RFC 5492 §3, RFC 6793, RFC 8654, RFC 4760).

use std::net::Ipv4Addr;

use ferrolb_bgp::wire::*;

fn open(capabilities: Vec<Capability>) -> Open {
    Open {
        version: 4,
        my_as: 65001,
        hold_time: HoldTime::DEFAULT,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities,
    }
}

#[test]
fn features_are_on_only_when_both_sides_announce_them() {
    let full = open(vec![
        Capability::FourOctetAs(65001),
        Capability::ExtendedMessage,
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
    ]);
    let ctx = DecodeCtx::negotiate(&full, &full);
    assert!(ctx.four_octet_as && ctx.extended_message);
    assert_eq!(ctx.families, Families::IPV4_IPV6_UNICAST);
    assert_eq!(ctx.max_message_len(), 65535);

    let v6_only = open(vec![
        Capability::FourOctetAs(65002),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
    ]);
    let ctx = DecodeCtx::negotiate(&full, &v6_only);
    assert!(ctx.four_octet_as);
    assert!(!ctx.extended_message);
    assert_eq!(ctx.max_message_len(), 4096);
    assert!(ctx.families.contains(Family::IPV6_UNICAST));
    assert!(!ctx.families.contains(Family::IPV4_UNICAST));
}

#[test]
fn a_side_without_multiprotocol_capabilities_carries_ipv4_unicast() {
    let old = open(vec![]);
    let full = open(vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
    ]);
    let ctx = DecodeCtx::negotiate(&full, &old);
    assert_eq!(ctx.families, Families::IPV4_UNICAST);
    assert!(!ctx.four_octet_as);
    assert_eq!(DecodeCtx::negotiate(&old, &old), DecodeCtx::default());
}
