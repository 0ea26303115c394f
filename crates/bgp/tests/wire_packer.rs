//! Packer tests: no UPDATE exceeds the limit, no prefix is lost or duplicated, attributes
//! travel with their prefixes, and host routes pack at the expected density.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use ferrolb_bgp::packer::{Packer, RouteAttributes};
use ferrolb_bgp::wire::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

fn route(asn: u32, community: Option<u32>) -> RouteAttributes {
    RouteAttributes {
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence([asn])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            communities: community.map(|c| vec![Community(c)]),
            ..PathAttributes::default()
        },
        mp_next_hop: Some(MpNextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: None,
        }),
    }
}

fn host_v4(i: u32) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap())
}

/// Every UPDATE is encoded and decoded again; returns (announced, withdrawn) with the
/// attributes each announced prefix arrived with.
/// An announced prefix as received: its path attributes and MP next hop (IPv6).
type Received = (IpNet, PathAttributes, Option<MpNextHop>);

fn deliver(updates: &[Update], ctx: &DecodeCtx, max: usize) -> (Vec<Received>, Vec<IpNet>) {
    let mut announced = Vec::new();
    let mut withdrawn = Vec::new();
    for u in updates {
        let bytes = Message::Update(u.clone())
            .to_bytes(ctx)
            .expect("packer output encodes");
        assert!(
            bytes.len() <= max,
            "UPDATE of {} octets over the limit {max}",
            bytes.len()
        );
        let Ok(Message::Update(back)) = decode_message(&bytes, ctx) else {
            panic!("packer output does not decode")
        };
        assert!(back.attribute_errors.is_empty());
        for p in &back.nlri {
            announced.push((IpNet::V4(*p), back.attrs.clone(), None));
        }
        if let Some(m) = &back.mp_reach {
            for p in &m.nlri {
                announced.push((*p, back.attrs.clone(), Some(m.next_hop)));
            }
        }
        withdrawn.extend(back.withdrawn_prefixes());
    }
    (announced, withdrawn)
}

#[test]
fn eight_hundred_host_routes_fit_one_4096_octet_update() {
    let attrs = route(65001, Some(0xfde9_0064));
    let announce: BTreeMap<IpNet, RouteAttributes> =
        (0..800).map(|i| (host_v4(i), attrs.clone())).collect();
    let packer = Packer::new(DecodeCtx::modern());
    let updates = packer.pack(&announce, &BTreeSet::new()).unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].nlri.len(), 800);
    // 1700 need three: the limit is what splits them (about 810 per UPDATE here).
    let announce: BTreeMap<IpNet, RouteAttributes> =
        (0..1700).map(|i| (host_v4(i), attrs.clone())).collect();
    let updates = packer.pack(&announce, &BTreeSet::new()).unwrap();
    assert_eq!(updates.len(), 3);
    assert!(updates[0].nlri.len() >= 800);
}

#[test]
fn withdrawals_use_spare_room_then_their_own_updates() {
    let attrs = route(65001, None);
    let announce: BTreeMap<IpNet, RouteAttributes> =
        (0..10).map(|i| (host_v4(i), attrs.clone())).collect();
    let withdraw: BTreeSet<IpNet> = (100..110)
        .map(host_v4)
        .chain(["2001:db8::/64".parse().unwrap()])
        .collect();
    let updates = Packer::new(DecodeCtx::modern())
        .pack(&announce, &withdraw)
        .unwrap();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].withdrawn.len(), 10);
    assert_eq!(updates[0].mp_unreach.as_ref().unwrap().withdrawn.len(), 1);
}

#[test]
fn ipv6_routes_go_in_mp_reach_without_next_hop_attribute() {
    let attrs = route(65001, None);
    let announce: BTreeMap<IpNet, RouteAttributes> = [
        ("2001:db8::10/128".parse().unwrap(), attrs.clone()),
        ("10.0.0.1/32".parse().unwrap(), attrs),
    ]
    .into();
    let updates = Packer::new(DecodeCtx::modern())
        .pack(&announce, &BTreeSet::new())
        .unwrap();
    // Same attributes: one UPDATE with NLRI and MP_REACH_NLRI (RFC 4760).
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].nlri.len(), 1);
    assert_eq!(updates[0].mp_reach.as_ref().unwrap().nlri.len(), 1);
    assert_eq!(updates[0].attrs.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1)));
    // IPv6 alone: MP_REACH_NLRI without the NEXT_HOP attribute.
    let v6_only: BTreeMap<IpNet, RouteAttributes> =
        [("2001:db8::10/128".parse().unwrap(), route(65001, None))].into();
    let updates = Packer::new(DecodeCtx::modern())
        .pack(&v6_only, &BTreeSet::new())
        .unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].attrs.next_hop, None);
    assert!(updates[0].nlri.is_empty());
}

#[test]
fn two_octet_peer_gets_as4_path() {
    let attrs = route(4_200_000_000, None);
    let announce: BTreeMap<IpNet, RouteAttributes> = [(host_v4(1), attrs)].into();
    let updates = Packer::new(DecodeCtx::default())
        .pack(&announce, &BTreeSet::new())
        .unwrap();
    assert_eq!(
        updates[0].attrs.as_path,
        Some(AsPath::sequence([u32::from(AS_TRANS)]))
    );
    assert_eq!(
        updates[0].attrs.as4_path,
        Some(AsPath::sequence([4_200_000_000]))
    );
}

#[test]
fn missing_next_hops_are_refused() {
    let mut attrs = route(65001, None);
    attrs.attrs.next_hop = None;
    let v4: BTreeMap<IpNet, RouteAttributes> = [(host_v4(1), attrs)].into();
    assert!(Packer::new(DecodeCtx::modern())
        .pack(&v4, &BTreeSet::new())
        .is_err());
    let mut attrs = route(65001, None);
    attrs.mp_next_hop = None;
    let v6: BTreeMap<IpNet, RouteAttributes> = [("2001:db8::1/128".parse().unwrap(), attrs)].into();
    assert!(Packer::new(DecodeCtx::modern())
        .pack(&v6, &BTreeSet::new())
        .is_err());
}

#[test]
fn end_of_rib_for_both_families() {
    let eor = Packer::end_of_rib(Families::IPV4_IPV6_UNICAST);
    assert_eq!(eor.len(), 2);
    assert_eq!(eor[0].end_of_rib_family(), Some(Family::IPV4_UNICAST));
    assert_eq!(eor[1].end_of_rib_family(), Some(Family::IPV6_UNICAST));
    let ctx = DecodeCtx::modern();
    for u in eor {
        let bytes = Message::Update(u.clone()).to_bytes(&ctx).unwrap();
        assert_eq!(decode_message(&bytes, &ctx).unwrap(), Message::Update(u));
    }
}

fn prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        3 => (any::<u32>(), 8u8..=32).prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())),
        1 => (any::<u128>(), 16u8..=128).prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn packer_never_exceeds_the_limit_nor_loses_or_duplicates_a_prefix(
        announce in btree_map(prefix(), 0usize..4, 0..1500),
        withdraw in btree_set(prefix(), 0..1500),
        max in prop_oneof![Just(4096usize), 128usize..4096],
        four_octet in any::<bool>(),
        sets in vec((any::<u32>(), proptest::option::of(any::<u32>())), 4),
    ) {
        let ctx = DecodeCtx { four_octet_as: four_octet, ..DecodeCtx::modern() };
        let sets: Vec<RouteAttributes> = sets.into_iter().map(|(asn, c)| route(asn, c)).collect();
        let announce: BTreeMap<IpNet, RouteAttributes> =
            announce.into_iter().map(|(p, i)| (p, sets[i].clone())).collect();
        let packer = Packer::with_max_len(ctx, max);
        let updates = packer.pack(&announce, &withdraw).unwrap();
        let (announced, withdrawn) = deliver(&updates, &ctx, packer.max_len());

        let got: BTreeSet<IpNet> = announced.iter().map(|(p, _, _)| *p).collect();
        prop_assert_eq!(got.len(), announced.len(), "an announced prefix was duplicated");
        prop_assert_eq!(&got, &announce.keys().copied().collect::<BTreeSet<_>>());
        for (p, attrs, mp_next_hop) in &announced {
            let want = &announce[p];
            prop_assert_eq!(attrs.origin, want.attrs.origin);
            prop_assert_eq!(&attrs.communities, &want.attrs.communities);
            match p {
                IpNet::V4(_) => prop_assert_eq!(attrs.next_hop, want.attrs.next_hop),
                IpNet::V6(_) => prop_assert_eq!(*mp_next_hop, want.mp_next_hop),
            }
        }
        let want_withdrawn: BTreeSet<IpNet> =
            withdraw.iter().filter(|p| !announce.contains_key(p)).copied().collect();
        let got_withdrawn: BTreeSet<IpNet> = withdrawn.iter().copied().collect();
        prop_assert_eq!(got_withdrawn.len(), withdrawn.len(), "a withdrawn prefix was duplicated");
        prop_assert_eq!(got_withdrawn, want_withdrawn);
    }
}
