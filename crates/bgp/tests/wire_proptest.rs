//! Property tests: `decode(encode(m)) == m` for arbitrary valid messages under both a 2-octet
//! and a 4-octet AS context, `encoded_len` matches the encoder, and no input makes the
//! decoder panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use ferrolb_bgp::wire::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

fn ipv4_net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn ipv6_net() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}

fn asn(four_octet: bool) -> BoxedStrategy<u32> {
    if four_octet {
        any::<u32>().boxed()
    } else {
        (0u32..=65535).boxed()
    }
}

fn as_path(four_octet: bool) -> impl Strategy<Value = AsPath> {
    let kind = prop_oneof![
        Just(AsSegmentType::AsSet),
        Just(AsSegmentType::AsSequence),
        Just(AsSegmentType::AsConfedSequence),
        Just(AsSegmentType::AsConfedSet),
    ];
    vec(
        (kind, vec(asn(four_octet), 1..8)).prop_map(|(kind, asns)| AsSegment { kind, asns }),
        0..4,
    )
    .prop_map(|segments| AsPath { segments })
}

fn aggregator(four_octet: bool) -> impl Strategy<Value = Aggregator> {
    (asn(four_octet), any::<u32>()).prop_map(|(asn, a)| Aggregator {
        asn,
        address: Ipv4Addr::from(a),
    })
}

fn raw_attributes() -> impl Strategy<Value = Vec<RawAttribute>> {
    // Type codes this crate does not decode; optional (well-known unknowns reset the session).
    let code = (40u8..=250).prop_filter("not decoded", |c| *c != 32);
    btree_map(
        code,
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            vec(any::<u8>(), 0..300),
        ),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(code, (transitive, partial, ext, value))| {
                let mut flags = 0x80;
                if transitive {
                    flags |= 0x40;
                }
                if partial {
                    flags |= 0x20;
                }
                if ext || value.len() > 255 {
                    flags |= 0x10;
                }
                RawAttribute {
                    flags,
                    type_code: AttrType(code),
                    value,
                }
            })
            .collect()
    })
}

fn path_attributes(four_octet: bool) -> impl Strategy<Value = PathAttributes> {
    let origin = prop_oneof![
        Just(Origin::Igp),
        Just(Origin::Egp),
        Just(Origin::Incomplete)
    ];
    let as4 = if four_octet {
        Just((None, None)).boxed()
    } else {
        (
            proptest::option::of(as_path(true)),
            proptest::option::of(aggregator(true)),
        )
            .boxed()
    };
    (
        (
            proptest::option::of(origin),
            proptest::option::of(as_path(four_octet)),
            proptest::option::of(any::<u32>().prop_map(Ipv4Addr::from)),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            any::<bool>(),
            proptest::option::of(aggregator(four_octet)),
        ),
        (
            proptest::option::of(vec(any::<u32>().prop_map(Community), 1..10)),
            proptest::option::of(vec(any::<[u8; 8]>().prop_map(ExtendedCommunity), 1..5)),
            proptest::option::of(vec(
                any::<(u32, u32, u32)>().prop_map(|(g, a, b)| LargeCommunity {
                    global_admin: g,
                    local_data_1: a,
                    local_data_2: b,
                }),
                1..5,
            )),
            as4,
            raw_attributes(),
        ),
    )
        .prop_map(
            |(
                (origin, as_path, next_hop, med, local_pref, atomic_aggregate, aggregator),
                (
                    communities,
                    extended_communities,
                    large_communities,
                    (as4_path, as4_aggregator),
                    unknown,
                ),
            )| PathAttributes {
                origin,
                as_path,
                next_hop,
                med,
                local_pref,
                atomic_aggregate,
                aggregator,
                communities,
                extended_communities,
                as4_path,
                as4_aggregator,
                large_communities,
                unknown,
            },
        )
}

fn mp_next_hop(v6: bool) -> BoxedStrategy<MpNextHop> {
    let v6_hop =
        (any::<u128>(), proptest::option::of(any::<u128>())).prop_map(|(g, ll)| MpNextHop::V6 {
            global: Ipv6Addr::from(g),
            link_local: ll.map(Ipv6Addr::from),
        });
    if v6 {
        v6_hop.boxed()
    } else {
        prop_oneof![
            any::<u32>().prop_map(|a| MpNextHop::V4(Ipv4Addr::from(a))),
            v6_hop
        ]
        .boxed()
    }
}

fn family_nets(v6: bool, n: std::ops::Range<usize>) -> BoxedStrategy<Vec<IpNet>> {
    if v6 {
        vec(ipv6_net().prop_map(IpNet::V6), n).boxed()
    } else {
        vec(ipv4_net().prop_map(IpNet::V4), n).boxed()
    }
}

fn family(v6: bool) -> Family {
    Family {
        afi: if v6 { Afi::IPV6 } else { Afi::IPV4 },
        safi: Safi::UNICAST,
    }
}

fn mp_reach() -> impl Strategy<Value = MpReach> {
    any::<bool>().prop_flat_map(|v6| {
        (mp_next_hop(v6), family_nets(v6, 0..20)).prop_map(move |(next_hop, nlri)| MpReach {
            family: family(v6),
            next_hop,
            nlri,
        })
    })
}

fn mp_unreach() -> impl Strategy<Value = MpUnreach> {
    any::<bool>().prop_flat_map(|v6| {
        family_nets(v6, 0..20).prop_map(move |withdrawn| MpUnreach {
            family: family(v6),
            withdrawn,
        })
    })
}

fn update(four_octet: bool) -> impl Strategy<Value = Update> {
    (
        vec(ipv4_net(), 0..40),
        proptest::option::of(mp_unreach()),
        proptest::option::of(mp_reach()),
        path_attributes(four_octet),
        vec(ipv4_net(), 0..40),
    )
        .prop_map(|(withdrawn, mp_unreach, mp_reach, attrs, nlri)| Update {
            withdrawn,
            mp_unreach,
            mp_reach,
            attrs,
            nlri,
            ..Update::default()
        })
}

fn capability() -> impl Strategy<Value = Capability> {
    let fam = (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family {
        afi: Afi(a),
        safi: Safi(s),
    });
    prop_oneof![
        fam.clone().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::ExtendedMessage),
        (0u8..16, 0u16..4096, vec((fam, any::<u8>()), 0..4)).prop_map(|(f, t, fams)| {
            Capability::GracefulRestart(GracefulRestart {
                restart_flags: f,
                restart_time: t,
                families: fams
                    .into_iter()
                    .map(|(family, flags)| GracefulRestartFamily { family, flags })
                    .collect(),
            })
        }),
        any::<u32>().prop_map(Capability::FourOctetAs),
        ("[a-z0-9-]{0,20}", "[a-z0-9.]{0,20}")
            .prop_map(|(hostname, domain)| Capability::Fqdn { hostname, domain }),
        (
            any::<u8>().prop_filter("not a decoded code", |c| ![1, 2, 6, 64, 65, 73].contains(c)),
            vec(any::<u8>(), 0..40)
        )
            .prop_map(|(code, value)| Capability::Unknown {
                code: CapabilityCode(code),
                value,
            }),
    ]
}

fn open() -> impl Strategy<Value = Open> {
    (
        1u16..=65535,
        prop_oneof![Just(0u16), 3u16..=65535],
        1u32..,
        vec(capability(), 0..12),
    )
        .prop_map(|(my_as, hold, id, capabilities)| Open {
            version: 4,
            my_as,
            hold_time: HoldTime::new(hold).unwrap(),
            bgp_id: Ipv4Addr::from(id),
            capabilities,
        })
}

fn message(four_octet: bool) -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update(four_octet).prop_map(Message::Update),
        (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..64)).prop_map(|(c, s, data)| {
            Message::Notification(Notification {
                code: ErrorCode(c),
                subcode: s,
                data,
            })
        }),
        Just(Message::Keepalive),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(a, st, s)| Message::RouteRefresh(
            RouteRefresh {
                afi: Afi(a),
                subtype: st,
                safi: Safi(s),
            }
        )),
    ]
}

fn roundtrip(m: &Message, ctx: &DecodeCtx) -> Result<(), TestCaseError> {
    let len = m.encoded_len(ctx);
    match m.to_bytes(ctx) {
        Ok(bytes) => {
            prop_assert_eq!(bytes.len(), len, "encoded_len");
            let back =
                decode_message(&bytes, ctx).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(&back, m);
        }
        Err(EncodingError::TooLong {
            field: "message", ..
        }) => {
            // Generated too big for the limit: that refusal is correct.
            prop_assert!(len > 4096);
        }
        Err(e) => return Err(TestCaseError::fail(format!("valid message refused: {e}"))),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_of_encode_is_identity_with_four_octet_as(m in message(true)) {
        roundtrip(&m, &DecodeCtx::modern())?;
    }

    #[test]
    fn decode_of_encode_is_identity_with_two_octet_as(m in message(false)) {
        roundtrip(&m, &DecodeCtx::default())?;
    }

    #[test]
    fn decode_of_encode_is_identity_with_extended_messages(m in message(true)) {
        let ctx = DecodeCtx { extended_message: true, ..DecodeCtx::modern() };
        let bytes = m.to_bytes(&ctx);
        if let Ok(bytes) = bytes {
            prop_assert_eq!(decode_message(&bytes, &ctx).ok(), Some(m));
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(ty in 1u8..=5, body in vec(any::<u8>(), 0..600), as4 in any::<bool>()) {
        let ctx = if as4 { DecodeCtx::modern() } else { DecodeCtx::default() };
        let _ = decode_body(MessageType(ty), &body, &ctx);
    }

    #[test]
    fn mutated_valid_messages_never_panic(m in message(true), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let ctx = DecodeCtx::modern();
        if let Ok(bytes) = m.to_bytes(&ctx) {
            let mut bytes = bytes.to_vec();
            for (i, v) in flips {
                let i = i.index(bytes.len());
                bytes[i] = v;
            }
            if let Ok(decoded) = decode_message(&bytes, &ctx) {
                // Whatever decodes must re-encode without panicking.
                let _ = decoded.to_bytes(&ctx);
            }
        }
    }
}
