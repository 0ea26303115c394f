//! A second, independent decoder as oracle: bgpkit-parser reads the UPDATEs our
//! encoder writes, for arbitrary valid UPDATEs, and must find the same prefixes and attributes.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgpkit_parser::models::{
    AsPathSegment, AsnLength, BgpMessage, Community as BkCommunity, MetaCommunity, NextHopAddress,
};
use bgpkit_parser::parser::bgp::parse_bgp_message;
use bytes::Bytes;
use ferrolb_bgp::wire::{
    AsPath, AsSegment, AsSegmentType, Community, DecodeCtx, Family, LargeCommunity, Message,
    MpNextHop, MpReach, MpUnreach, Origin, PathAttributes, Update,
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;

// Prefix lengths start at 1: bgpkit-parser guesses ADD-PATH (RFC 7911) when an NLRI field
// starts with a 0 octet, so a leading default route would be misread by the oracle, not by us.
fn v4_net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 1u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn v6_net() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 1u8..=128)
        .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}

fn as_path() -> impl Strategy<Value = AsPath> {
    prop::collection::vec(
        (
            prop_oneof![Just(AsSegmentType::AsSequence), Just(AsSegmentType::AsSet)],
            prop::collection::vec(1u32.., 1..8),
        ),
        0..3,
    )
    .prop_map(|segs| AsPath {
        segments: segs
            .into_iter()
            .map(|(kind, asns)| AsSegment { kind, asns })
            .collect(),
    })
}

fn attrs() -> impl Strategy<Value = PathAttributes> {
    (
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        as_path(),
        any::<[u8; 4]>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of(prop::collection::vec(any::<u32>(), 1..6)),
        proptest::option::of(prop::collection::vec(any::<[u32; 3]>(), 1..4)),
    )
        .prop_map(|(origin, path, nh, med, lp, comms, large)| PathAttributes {
            origin: Some(origin),
            as_path: Some(path),
            next_hop: Some(Ipv4Addr::from(nh)),
            med,
            local_pref: lp,
            communities: comms.map(|c| c.into_iter().map(Community).collect()),
            large_communities: large.map(|l| {
                l.into_iter()
                    .map(|[g, a, b]| LargeCommunity {
                        global_admin: g,
                        local_data_1: a,
                        local_data_2: b,
                    })
                    .collect()
            }),
            ..PathAttributes::default()
        })
}

fn update() -> impl Strategy<Value = Update> {
    (
        prop::collection::vec(v4_net(), 0..150),
        prop::collection::vec(v4_net(), 0..100),
        prop::collection::vec(v6_net(), 0..60),
        prop::collection::vec(v6_net(), 0..40),
        attrs(),
        any::<(u128, Option<u128>)>(),
    )
        .prop_map(
            |(nlri, withdrawn, v6, v6_withdrawn, attrs, (g, ll))| Update {
                withdrawn,
                mp_unreach: (!v6_withdrawn.is_empty()).then(|| MpUnreach {
                    family: Family::IPV6_UNICAST,
                    withdrawn: v6_withdrawn.into_iter().map(IpNet::V6).collect(),
                }),
                mp_reach: (!v6.is_empty()).then(|| MpReach {
                    family: Family::IPV6_UNICAST,
                    next_hop: MpNextHop::V6 {
                        global: Ipv6Addr::from(g),
                        link_local: ll.map(Ipv6Addr::from),
                    },
                    nlri: v6.into_iter().map(IpNet::V6).collect(),
                }),
                attrs,
                nlri,
                ..Update::default()
            },
        )
}

/// What both decoders must agree on.
#[derive(Debug, PartialEq)]
struct Seen {
    announced: BTreeSet<IpNet>,
    withdrawn: BTreeSet<IpNet>,
    next_hop: Option<IpAddr>,
    /// MP_REACH_NLRI next hop as text (global, then link-local).
    mp_next_hop: Option<String>,
    origin: u8,
    as_path: Vec<(bool, Vec<u32>)>,
    med: Option<u32>,
    local_pref: Option<u32>,
    communities: Vec<u32>,
    large: Vec<[u32; 3]>,
}

fn ours(u: &Update) -> Seen {
    Seen {
        announced: u.announced().collect(),
        withdrawn: u.withdrawn_prefixes().collect(),
        next_hop: u.attrs.next_hop.map(IpAddr::V4),
        mp_next_hop: u.mp_reach.as_ref().map(|m| match m.next_hop {
            MpNextHop::V6 {
                global,
                link_local: None,
            } => format!("{global}"),
            MpNextHop::V6 {
                global,
                link_local: Some(ll),
            } => format!("{global} {ll}"),
            MpNextHop::V4(a) => format!("{a}"),
        }),
        origin: u.attrs.origin.map_or(255, Origin::value),
        as_path: u
            .attrs
            .as_path
            .iter()
            .flat_map(|p| &p.segments)
            .map(|s| (s.kind == AsSegmentType::AsSequence, s.asns.clone()))
            .collect(),
        med: u.attrs.med,
        local_pref: u.attrs.local_pref,
        communities: u.attrs.communities.iter().flatten().map(|c| c.0).collect(),
        large: u
            .attrs
            .large_communities
            .iter()
            .flatten()
            .map(|l| [l.global_admin, l.local_data_1, l.local_data_2])
            .collect(),
    }
}

fn theirs(bytes: &[u8]) -> Seen {
    let mut data = Bytes::copy_from_slice(bytes);
    let msg = parse_bgp_message(&mut data, false, &AsnLength::Bits32)
        .unwrap_or_else(|e| panic!("bgpkit-parser rejects our UPDATE: {e}"));
    let BgpMessage::Update(u) = msg else {
        panic!("bgpkit-parser sees another message type: {msg:?}");
    };
    let a = &u.attributes;
    let mut announced: BTreeSet<IpNet> = u.announced_prefixes.iter().map(|p| p.prefix).collect();
    announced.extend(
        a.get_reachable_nlri()
            .iter()
            .flat_map(|n| &n.prefixes)
            .map(|p| p.prefix),
    );
    let mut withdrawn: BTreeSet<IpNet> = u.withdrawn_prefixes.iter().map(|p| p.prefix).collect();
    withdrawn.extend(
        a.get_unreachable_nlri()
            .iter()
            .flat_map(|n| &n.prefixes)
            .map(|p| p.prefix),
    );
    let mut communities = Vec::new();
    let mut large = Vec::new();
    for c in a.iter_communities() {
        match c {
            MetaCommunity::Plain(BkCommunity::NoExport) => communities.push(0xFFFF_FF01),
            MetaCommunity::Plain(BkCommunity::NoAdvertise) => communities.push(0xFFFF_FF02),
            MetaCommunity::Plain(BkCommunity::NoExportSubConfed) => communities.push(0xFFFF_FF03),
            MetaCommunity::Plain(BkCommunity::Custom(asn, v)) => {
                communities.push((u32::from(asn) << 16) | u32::from(v))
            }
            MetaCommunity::Large(l) => {
                large.push([l.global_admin, l.local_data[0], l.local_data[1]])
            }
            other => panic!("unexpected community {other:?}"),
        }
    }
    Seen {
        announced,
        withdrawn,
        // bgpkit reports the NEXT_HOP attribute (IPv4); the MP next hop is compared separately.
        next_hop: a.next_hop(),
        mp_next_hop: a
            .get_reachable_nlri()
            .and_then(|n| n.next_hop)
            .map(|nh| match nh {
                NextHopAddress::Ipv6(g) => format!("{g}"),
                NextHopAddress::Ipv6LinkLocal(g, ll) => format!("{g} {ll}"),
                NextHopAddress::Ipv4(a) => format!("{a}"),
                other => panic!("unexpected next hop {other:?}"),
            }),
        origin: a.origin() as u8,
        as_path: a
            .as_path()
            .iter()
            .flat_map(|p| &p.segments)
            .map(|s| match s {
                AsPathSegment::AsSequence(v) => (true, v.iter().map(u32::from).collect()),
                AsPathSegment::AsSet(v) => (false, v.iter().map(u32::from).collect()),
                other => panic!("unexpected segment {other:?}"),
            })
            .collect(),
        med: a.multi_exit_discriminator(),
        local_pref: a.local_preference(),
        communities,
        large,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bgpkit_reads_our_updates_to_the_same_prefixes_and_attributes(u in update()) {
        let ctx = DecodeCtx::modern();
        let bytes = Message::Update(u.clone()).to_bytes(&ctx).expect("encodes");
        let expected = ours(&u);
        let seen = theirs(&bytes);
        // Duplicates collapse in both sets; the order of communities is kept by both.
        prop_assert_eq!(seen, expected);
    }
}

#[test]
fn bgpkit_reads_the_mp_reach_next_hop_with_link_local() {
    let u = Update {
        mp_reach: Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
            },
            nlri: vec!["2001:db8:100::10/128".parse().unwrap()],
        }),
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([4_200_000_001])),
            ..PathAttributes::default()
        },
        ..Update::default()
    };
    let bytes = Message::Update(u).to_bytes(&DecodeCtx::modern()).unwrap();
    let mut data = Bytes::copy_from_slice(&bytes);
    let BgpMessage::Update(parsed) =
        parse_bgp_message(&mut data, false, &AsnLength::Bits32).unwrap()
    else {
        panic!("not an UPDATE");
    };
    let nlri = parsed
        .attributes
        .get_reachable_nlri()
        .expect("MP_REACH_NLRI");
    assert_eq!(
        format!("{:?}", nlri.next_hop),
        "Some(Ipv6LinkLocal(2001:db8::1, fe80::1))"
    );
    let asns: Vec<u32> = match &parsed.attributes.as_path().unwrap().segments[0] {
        AsPathSegment::AsSequence(v) => v.iter().map(u32::from).collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(asns, [4_200_000_001]);
}
