//! Golden vectors: (bytes ⇄ message) pairs built by hand from the RFC wire formats, checked in
//! both directions with a hex dump on failure. Each byte group is commented with its field.

use std::net::{Ipv4Addr, Ipv6Addr};

use ferrolb_bgp::wire::*;

/// Parses hex, one group per line; whitespace is ignored and `| comment` ends a line.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .lines()
        .flat_map(|line| line.split('|').next().unwrap_or("").bytes())
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| (b as char).to_digit(16).expect("hex digit") as u8)
        .collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Prepends the 19-octet header (all-ones marker, length, type) to a body.
fn with_header(message_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(message_type);
    m.extend_from_slice(body);
    m
}

/// Checks bytes -> message and message -> bytes.
fn check_both_ways(bytes: &[u8], expected: &Message, ctx: &DecodeCtx) {
    let decoded = decode_message(bytes, ctx)
        .unwrap_or_else(|e| panic!("decode failed: {e}\n{}", to_hex(bytes)));
    assert_eq!(&decoded, expected, "decoded message differs");
    let encoded = expected.to_bytes(ctx).expect("encode");
    assert_eq!(
        to_hex(&encoded),
        to_hex(bytes),
        "encoded bytes differ (left: ours, right: golden)"
    );
    assert_eq!(
        expected.encoded_len(ctx),
        bytes.len(),
        "encoded_len disagrees with the encoder"
    );
}

fn as4() -> DecodeCtx {
    DecodeCtx::modern()
}

fn net(s: &str) -> ipnet::IpNet {
    s.parse().expect("prefix")
}

fn v4(s: &str) -> ipnet::Ipv4Net {
    s.parse().expect("prefix")
}

#[test]
fn keepalive_is_a_bare_header() {
    // RFC 4271 §4.4: marker, length 19, type 4.
    let bytes = hex("ffffffffffffffffffffffffffffffff 0013 04");
    check_both_ways(&bytes, &Message::Keepalive, &DecodeCtx::default());
}

#[test]
fn open_with_every_supported_capability() {
    let body = hex(
        "04          | version 4
         fde9        | My AS 65001
         005a        | hold time 90
         c0000201    | BGP Identifier 192.0.2.1
         40          | Opt Parm Len 64
         02 06 01 04 0001 00 01      | Capabilities: MP IPv4 unicast (RFC 4760 §8)
         02 06 01 04 0002 00 01      | Capabilities: MP IPv6 unicast
         02 02 02 00                 | Capabilities: Route Refresh (RFC 2918)
         02 02 06 00                 | Capabilities: Extended Message (RFC 8654)
         02 0c 40 0a 8078 0001 01 80 0002 01 00 | Graceful Restart: R bit, 120 s, IPv4 uni F bit, IPv6 uni
         02 06 41 04 0000fde9        | 4-octet AS 65001 (RFC 6793)
         02 0a 49 08 05 6e6f646531 01 78 | FQDN: hostname 'node1', domain 'x'
         02 04 80 02 abcd            | unknown capability 128, value abcd",
    );
    let bytes = with_header(1, &body);
    let expected = Message::Open(Open {
        version: 4,
        my_as: 65001,
        hold_time: HoldTime::new(90).unwrap(),
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::ExtendedMessage,
            Capability::GracefulRestart(GracefulRestart {
                restart_flags: GracefulRestart::RESTART_STATE,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        flags: GracefulRestartFamily::FORWARDING_STATE,
                    },
                    GracefulRestartFamily {
                        family: Family::IPV6_UNICAST,
                        flags: 0,
                    },
                ],
            }),
            Capability::FourOctetAs(65001),
            Capability::Fqdn {
                hostname: "node1".into(),
                domain: "x".into(),
            },
            Capability::Unknown {
                code: CapabilityCode(128),
                value: vec![0xab, 0xcd],
            },
        ],
    });
    check_both_ways(&bytes, &expected, &DecodeCtx::default());
}

#[test]
fn open_with_four_octet_asn_uses_as_trans() {
    // RFC 6793 §4.1: My AS carries AS_TRANS (23456 = 0x5ba0) for ASN 4200000000 (0xfa56ea00).
    let body = hex("04 5ba0 00b4 0a000001 08
         02 06 41 04 fa56ea00 | 4-octet AS 4200000000");
    let bytes = with_header(1, &body);
    let open = Open::new(
        4_200_000_000,
        HoldTime::new(180).unwrap(),
        Ipv4Addr::new(10, 0, 0, 1),
        vec![],
    );
    assert_eq!(open.my_as, AS_TRANS);
    assert_eq!(open.asn(), 4_200_000_000);
    check_both_ways(&bytes, &Message::Open(open), &DecodeCtx::default());
}

#[test]
fn open_with_rfc9072_extended_optional_parameters() {
    // RFC 9072 §2: Non-Ext OP Len 255, Non-Ext OP Type 255, then a 2-octet length; each
    // parameter has a 2-octet length. One unknown capability of 255 octets forces it.
    let value = vec![0x5a; 255];
    let mut body = hex("04 fde9 005a c0000201
         ff ff       | RFC 9072 marker
         010d        | Extended Opt. Parm. Length 269
         02 0006     | Capabilities parameter, length 6
         41 04 0000fde9 | 4-octet AS 65001
         02 0101     | Capabilities parameter, length 257
         c8 ff       | capability 200, length 255");
    body.extend_from_slice(&value);
    let bytes = with_header(1, &body);
    let expected = Message::Open(Open {
        version: 4,
        my_as: 65001,
        hold_time: HoldTime::DEFAULT,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: vec![
            Capability::FourOctetAs(65001),
            Capability::Unknown {
                code: CapabilityCode(200),
                value,
            },
        ],
    });
    check_both_ways(&bytes, &expected, &DecodeCtx::default());
}

fn full_ipv4_attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence([65001, 65002])),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(100),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 65001,
            address: Ipv4Addr::new(192, 0, 2, 1),
        }),
        communities: Some(vec![Community::NO_EXPORT, Community::new(65001, 100)]),
        extended_communities: Some(vec![ExtendedCommunity::route_target(65001, 100)]),
        as4_path: None,
        as4_aggregator: None,
        large_communities: Some(vec![LargeCommunity {
            global_admin: 65001,
            local_data_1: 1,
            local_data_2: 2,
        }]),
        unknown: vec![RawAttribute {
            flags: 0xc0,
            type_code: AttrType(150),
            value: vec![0xab, 0xcd],
        }],
    }
}

#[test]
fn ipv4_update_with_every_attribute() {
    let body = hex("0002 08 0a       | withdrawn routes length 2: 10.0.0.0/8
         005e             | total path attribute length 94
         40 01 01 00      | ORIGIN IGP
         40 02 0a 02 02 0000fde9 0000fdea | AS_PATH AS_SEQUENCE 65001 65002 (4-octet)
         40 03 04 c0000201 | NEXT_HOP 192.0.2.1
         80 04 04 00000064 | MULTI_EXIT_DISC 100
         40 05 04 000000c8 | LOCAL_PREF 200
         40 06 00          | ATOMIC_AGGREGATE
         c0 07 08 0000fde9 c0000201 | AGGREGATOR 65001 192.0.2.1
         c0 08 08 ffffff01 fde90064 | COMMUNITIES NO_EXPORT 65001:100
         c0 10 08 0002fde900000064  | EXTENDED COMMUNITIES rt 65001:100
         c0 20 0c 0000fde9 00000001 00000002 | LARGE_COMMUNITY 65001:1:2
         c0 96 02 abcd     | unknown optional transitive attribute 150 (unassigned)
         20 cb007107       | NLRI 203.0.113.7/32
         18 c63364         | NLRI 198.51.100.0/24");
    let bytes = with_header(2, &body);
    let expected = Message::Update(Update {
        withdrawn: vec![v4("10.0.0.0/8")],
        attrs: full_ipv4_attrs(),
        nlri: vec![v4("203.0.113.7/32"), v4("198.51.100.0/24")],
        ..Update::default()
    });
    check_both_ways(&bytes, &expected, &as4());
}

#[test]
fn ipv6_update_with_mp_reach_and_mp_unreach() {
    let body = hex("0000             | no withdrawn routes
         005c             | total path attribute length 92
         80 0e 3d         | MP_REACH_NLRI, length 61
            0002 01       | AFI IPv6, SAFI unicast
            20            | next hop length 32: global + link-local (RFC 2545 §3)
            20010db8000000000000000000000001 | 2001:db8::1
            fe800000000000000000000000000001 | fe80::1
            00            | reserved
            80 20010db8000000000000000000000a01 | 2001:db8::a01/128
            30 20010db80001                   | 2001:db8:1::/48
         80 0f 0c         | MP_UNREACH_NLRI, length 12
            0002 01       | AFI IPv6, SAFI unicast
            40 20010db800020000               | 2001:db8:2::/64
         40 01 01 00      | ORIGIN IGP
         40 02 06 02 01 0000fde9 | AS_PATH AS_SEQUENCE 65001");
    let bytes = with_header(2, &body);
    let expected = Message::Update(Update {
        mp_reach: Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
            },
            nlri: vec![net("2001:db8::a01/128"), net("2001:db8:1::/48")],
        }),
        mp_unreach: Some(MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: vec![net("2001:db8:2::/64")],
        }),
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([65001])),
            ..PathAttributes::default()
        },
        ..Update::default()
    });
    check_both_ways(&bytes, &expected, &as4());
}

#[test]
fn two_octet_peer_gets_as_trans_with_as4_path_and_as4_aggregator() {
    // RFC 6793 §4.2.2: AS_PATH with AS_TRANS in place of 4200000000, the real path in AS4_PATH.
    let body = hex(
        "0000 0035          | no withdrawn routes, attributes 53 octets
         40 01 01 02                 | ORIGIN INCOMPLETE
         40 02 06 02 02 5ba0 fde9    | AS_PATH AS_SEQUENCE 23456 65001 (2-octet)
         40 03 04 0a000001           | NEXT_HOP 10.0.0.1
         c0 07 06 5ba0 0a000001      | AGGREGATOR AS_TRANS 10.0.0.1 (2-octet)
         c0 11 0a 02 02 fa56ea00 0000fde9 | AS4_PATH 4200000000 65001
         c0 12 08 fa56ea00 0a000001  | AS4_AGGREGATOR 4200000000 10.0.0.1
         18 0a0101                   | NLRI 10.1.1.0/24",
    );
    let bytes = with_header(2, &body);
    let original = PathAttributes {
        origin: Some(Origin::Incomplete),
        as_path: Some(AsPath::sequence([4_200_000_000, 65001])),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
        aggregator: Some(Aggregator {
            asn: 4_200_000_000,
            address: Ipv4Addr::new(10, 0, 0, 1),
        }),
        ..PathAttributes::default()
    };
    let expected = Message::Update(Update {
        attrs: original.for_two_octet_peer(),
        nlri: vec![v4("10.1.1.0/24")],
        ..Update::default()
    });
    check_both_ways(&bytes, &expected, &DecodeCtx::default());
    // Sending the 4-octet ASN to a 2-octet peer without the conversion is refused.
    let raw = Message::Update(Update {
        attrs: original,
        nlri: vec![v4("10.1.1.0/24")],
        ..Update::default()
    });
    assert!(matches!(
        raw.to_bytes(&DecodeCtx::default()),
        Err(EncodingError::Invalid {
            field: "as_path",
            ..
        })
    ));
}

#[test]
fn extended_length_flag_is_used_above_255_octets() {
    // 70 communities = 280 octets: flags 0xd0 (Optional, Transitive, Extended Length).
    let mut body = hex("0000 011c d0 08 0118");
    let communities: Vec<Community> = (0..70).map(|i| Community::new(65000, i)).collect();
    for c in &communities {
        body.extend_from_slice(&c.0.to_be_bytes());
    }
    let bytes = with_header(2, &body);
    let expected = Message::Update(Update {
        attrs: PathAttributes {
            communities: Some(communities),
            ..PathAttributes::default()
        },
        ..Update::default()
    });
    check_both_ways(&bytes, &expected, &as4());
}

#[test]
fn end_of_rib_markers_for_ipv4_and_ipv6() {
    // RFC 4724 §2: IPv4 unicast End-of-RIB is an UPDATE with nothing in it.
    let v4_eor = hex("ffffffffffffffffffffffffffffffff 0017 02 0000 0000");
    check_both_ways(
        &v4_eor,
        &Message::Update(Update::end_of_rib(Family::IPV4_UNICAST)),
        &as4(),
    );
    // Other families: only an empty MP_UNREACH_NLRI.
    let v6_eor = with_header(2, &hex("0000 0006 80 0f 03 0002 01"));
    let update = Update::end_of_rib(Family::IPV6_UNICAST);
    assert_eq!(update.end_of_rib_family(), Some(Family::IPV6_UNICAST));
    check_both_ways(&v6_eor, &Message::Update(update), &as4());
}

#[test]
fn notification_cease_with_shutdown_communication() {
    // RFC 9003 §2: 6/2, data = length 11 + "maintenance".
    let bytes = with_header(3, &hex("06 02 0b 6d61696e74656e616e6365"));
    let n = Notification::cease_with_communication(2, "maintenance").unwrap();
    assert_eq!(n.shutdown_communication(), Some(Ok("maintenance")));
    assert_eq!(n.name(), "Cease / Administrative Shutdown");
    check_both_ways(&bytes, &Message::Notification(n), &as4());
}

#[test]
fn notification_hold_timer_expired() {
    let bytes = with_header(3, &hex("04 00"));
    check_both_ways(
        &bytes,
        &Message::Notification(Notification::hold_timer_expired()),
        &as4(),
    );
}

#[test]
fn route_refresh_for_ipv6_unicast() {
    // RFC 2918 §3: AFI 2, reserved 0, SAFI 1.
    let bytes = with_header(5, &hex("0002 00 01"));
    check_both_ways(
        &bytes,
        &Message::RouteRefresh(RouteRefresh::request(Afi::IPV6, Safi::UNICAST)),
        &as4(),
    );
}

#[test]
fn ipv4_update_two_octet_as_path_with_as_set() {
    // RFC 4271 §4.3: AS_SET (1) of 2 ASNs then AS_SEQUENCE (2) of 1, 2-octet encoding.
    let body = hex(
        "0000 0011          | no withdrawn routes, attributes 17 octets
         40 01 01 01                 | ORIGIN EGP
         40 02 0a 01 02 0064 00c8 02 01 012c | AS_SET {100 200} AS_SEQUENCE 300
         18 c00002                   | NLRI 192.0.2.0/24",
    );
    let bytes = with_header(2, &body);
    let expected = Message::Update(Update {
        attrs: PathAttributes {
            origin: Some(Origin::Egp),
            as_path: Some(AsPath {
                segments: vec![
                    AsSegment {
                        kind: AsSegmentType::AsSet,
                        asns: vec![100, 200],
                    },
                    AsSegment {
                        kind: AsSegmentType::AsSequence,
                        asns: vec![300],
                    },
                ],
            }),
            ..PathAttributes::default()
        },
        nlri: vec![v4("192.0.2.0/24")],
        ..Update::default()
    });
    check_both_ways(&bytes, &expected, &DecodeCtx::default());
}

#[test]
fn several_capabilities_in_one_parameter_decode_in_order() {
    // RFC 5492 §4: one Capabilities parameter may carry several capabilities. We re-encode one
    // per parameter, so only the decoded message is compared.
    let body = hex("04 fde9 005a c0000201 0c
         02 0a                       | one Capabilities parameter, length 10
         01 04 0001 00 01            | MP IPv4 unicast
         02 00                       | Route Refresh
         06 00                       | Extended Message");
    let m = decode_message(&with_header(1, &body), &DecodeCtx::default()).unwrap();
    let Message::Open(open) = m else {
        panic!("not an OPEN")
    };
    assert_eq!(
        open.capabilities,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::ExtendedMessage
        ]
    );
}

#[test]
fn rfc9072_form_is_recognised_by_the_type_octet_whatever_the_non_ext_length() {
    // RFC 9072 §2: a non-zero Non-Ext OP Len followed by type 255 is the extended form, even
    // for parameters that would fit the classic one (here Non-Ext OP Len 1, 9 octets).
    let body = hex("04 fde9 005a c0000201
         01 ff 0009     | Non-Ext OP Len 1 (ignored), type 255, Extended Opt. Parm. Length 9
         02 0006 41 04 fa56ea01 | Capabilities, 2-octet length 6: 4-octet AS 4200000001");
    let Message::Open(open) =
        decode_message(&with_header(1, &body), &DecodeCtx::default()).unwrap()
    else {
        panic!("not an OPEN")
    };
    assert_eq!(
        open.capabilities,
        vec![Capability::FourOctetAs(4_200_000_001)]
    );
}

/// The link bandwidth extended community exactly as FRR 8.4.4 sends it for
/// `set extcommunity bandwidth 3` (3 Mbit/s) from AS 65001, captured with tshark on an eBGP
/// session: transitive two-octet-AS type 0x00, sub-type 0x04 (draft-ietf-idr-link-bandwidth
/// §3), the AS, then 375000 bytes/s as an IEEE 754 float (0x48b71b00).
#[test]
fn link_bandwidth_matches_what_frr_sends() {
    let frr = hex("00 04 | transitive 2-octet AS, link bandwidth
                   fde9 | AS 65001
                   48b71b00 | 375000.0f32 bytes/s");
    let ours = ExtendedCommunity::link_bandwidth(65001, 375_000.0);
    assert_eq!(to_hex(&ours.0), to_hex(&frr));
    assert_eq!(ours.as_link_bandwidth(), Some((65001, 375_000.0)));
    // A four-octet AS does not fit: AS_TRANS (RFC 6793 §9) stands in, as FRR does.
    let as4 = ExtendedCommunity::link_bandwidth(4_200_000_000, 1.0);
    assert_eq!(as4.as_link_bandwidth(), Some((AS_TRANS, 1.0)));
    // The non-transitive variant (type 0x40) reads the same; anything else is not one.
    let mut non_transitive = ours;
    non_transitive.0[0] = 0x40;
    assert_eq!(non_transitive.as_link_bandwidth(), Some((65001, 375_000.0)));
    assert_eq!(
        ExtendedCommunity::route_target(65001, 3).as_link_bandwidth(),
        None
    );
    // Nonsense bandwidths go out as 0 rather than as a NaN a receiver might trip over.
    for bad in [f32::NAN, -1.0, f32::INFINITY] {
        assert_eq!(
            ExtendedCommunity::link_bandwidth(65001, bad).as_link_bandwidth(),
            Some((65001, 0.0))
        );
    }
}

/// An UPDATE carrying the link bandwidth in EXTENDED COMMUNITIES (type 16, RFC 4360 §2)
/// decodes and encodes byte for byte.
#[test]
fn update_with_link_bandwidth_extended_community() {
    let body = hex("0000 | withdrawn routes length
                    0019 | total path attribute length 25
                    40 01 01 00 | ORIGIN IGP
                    40 02 00 | AS_PATH empty
                    40 03 04 c0000201 | NEXT_HOP 192.0.2.1
                    c0 10 08 0004fde948b71b00 | EXTENDED COMMUNITIES: link bandwidth
                    20 c6336401 | NLRI 198.51.100.1/32");
    let expected = Message::Update(Update {
        withdrawn: vec![],
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            extended_communities: Some(vec![ExtendedCommunity::link_bandwidth(65001, 375_000.0)]),
            ..PathAttributes::default()
        },
        nlri: vec![v4("198.51.100.1/32")],
        ..Update::default()
    });
    check_both_ways(&with_header(2, &body), &expected, &as4());
}
