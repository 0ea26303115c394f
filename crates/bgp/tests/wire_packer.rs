//! Packer tests: no UPDATE exceeds the limit, no prefix is lost or duplicated, attributes
//! travel with their prefixes, and host routes pack at the expected density.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ferrolb_bgp::packer::Packer;
use ferrolb_bgp::rib::{NextHop, Route, Routes, SessionView};
use ferrolb_bgp::wire::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

/// Our end of an eBGP session over IPv4 from 192.0.2.1 in `local_as`, both families.
fn session(local_as: u32) -> SessionView {
    SessionView {
        local_as,
        ibgp: false,
        local_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        families: Families::IPV4_IPV6_UNICAST,
        ipv4_via_ipv6: false,
    }
}

/// The IPv6 next hop our IPv6 routes name (the session runs over IPv4).
fn v6_next_hop() -> Ipv6Addr {
    "2001:db8::1".parse().unwrap()
}

/// A route for an IPv4 prefix (the session's own address as next hop) with `med` and
/// maybe one community.
fn route(med: u32, community: Option<u32>) -> Arc<Route> {
    Arc::new(Route {
        med: Some(med),
        communities: community.map(Community).into_iter().collect(),
        ..Route::default()
    })
}

/// The same for an IPv6 prefix: an explicit IPv6 next hop.
fn route_v6(med: u32, community: Option<u32>) -> Arc<Route> {
    Arc::new(Route {
        next_hop: NextHop::Explicit(IpAddr::V6(v6_next_hop())),
        ..Route::clone(&route(med, community))
    })
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
    let attrs = route(0, Some(0xfde9_0064));
    let announce: Routes = (0..800).map(|i| (host_v4(i), attrs.clone())).collect();
    let mut packer = Packer::new(DecodeCtx::modern(), session(65001));
    let updates = packer.pack(&announce, &BTreeSet::new()).unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].nlri.len(), 800);
    // 1700 need three: the limit is what splits them (about 810 per UPDATE here).
    let announce: Routes = (0..1700).map(|i| (host_v4(i), attrs.clone())).collect();
    let updates = packer.pack(&announce, &BTreeSet::new()).unwrap();
    assert_eq!(updates.len(), 3);
    assert!(updates[0].nlri.len() >= 800);
}

#[test]
fn withdrawals_use_spare_room_then_their_own_updates() {
    let attrs = route(0, None);
    let announce: Routes = (0..10).map(|i| (host_v4(i), attrs.clone())).collect();
    let withdraw: BTreeSet<IpNet> = (100..110)
        .map(host_v4)
        .chain(["2001:db8::/64".parse().unwrap()])
        .collect();
    let updates = Packer::new(DecodeCtx::modern(), session(65001))
        .pack(&announce, &withdraw)
        .unwrap();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].withdrawn.len(), 10);
    assert_eq!(updates[0].mp_unreach.as_ref().unwrap().withdrawn.len(), 1);
}

#[test]
fn ipv6_routes_go_in_mp_reach_without_next_hop_attribute() {
    let announce: Routes = [
        ("2001:db8::10/128".parse().unwrap(), route_v6(0, None)),
        ("10.0.0.1/32".parse().unwrap(), route(0, None)),
    ]
    .into();
    let updates = Packer::new(DecodeCtx::modern(), session(65001))
        .pack(&announce, &BTreeSet::new())
        .unwrap();
    // A route has one next hop, so the families differ in it: IPv4 in NLRI with NEXT_HOP,
    // IPv6 in MP_REACH_NLRI (RFC 4760 §3) without the NEXT_HOP attribute.
    assert_eq!(updates.len(), 2, "{updates:?}");
    let v4 = updates.iter().find(|u| !u.nlri.is_empty()).unwrap();
    assert_eq!(v4.nlri.len(), 1);
    assert!(v4.mp_reach.is_none());
    assert_eq!(v4.attrs.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1)));
    let v6 = updates.iter().find(|u| u.mp_reach.is_some()).unwrap();
    assert_eq!(v6.mp_reach.as_ref().unwrap().nlri.len(), 1);
    assert_eq!(
        v6.mp_reach.as_ref().unwrap().next_hop,
        MpNextHop::V6 {
            global: v6_next_hop(),
            link_local: None
        }
    );
    assert_eq!(v6.attrs.next_hop, None);
    assert!(v6.nlri.is_empty());
}

#[test]
fn attributes_follow_the_session_ebgp_gets_our_as_ibgp_local_pref() {
    let announce: Routes = [(
        host_v4(1),
        Arc::new(Route {
            local_pref: Some(200),
            ..Route::default()
        }),
    )]
    .into();
    let no_withdraw = BTreeSet::new();
    let ebgp = Packer::new(DecodeCtx::modern(), session(65001))
        .pack(&announce, &no_withdraw)
        .unwrap();
    // RFC 4271 §5.1.2: our AS prepended towards eBGP; §5.1.5: no LOCAL_PREF there.
    assert_eq!(ebgp[0].attrs.as_path, Some(AsPath::sequence([65001])));
    assert_eq!(ebgp[0].attrs.local_pref, None);
    assert_eq!(ebgp[0].attrs.origin, Some(Origin::Igp));
    let ibgp = SessionView {
        ibgp: true,
        ..session(65001)
    };
    let ibgp = Packer::new(DecodeCtx::modern(), ibgp)
        .pack(&announce, &no_withdraw)
        .unwrap();
    assert_eq!(ibgp[0].attrs.as_path, Some(AsPath::default()));
    assert_eq!(ibgp[0].attrs.local_pref, Some(200));
}

#[test]
fn equal_routes_in_separate_allocations_share_one_update() {
    let announce: Routes = (0..4).map(|i| (host_v4(i), route(7, Some(1)))).collect();
    let updates = Packer::new(DecodeCtx::modern(), session(65001))
        .pack(&announce, &BTreeSet::new())
        .unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].nlri.len(), 4);
}

#[test]
fn two_octet_peer_gets_as4_path() {
    let announce: Routes = [(host_v4(1), route(0, None))].into();
    let updates = Packer::new(DecodeCtx::default(), session(4_200_000_000))
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
    // An IPv4 prefix with an IPv6 next hop, and an IPv6 prefix with the session's IPv4
    // address: neither has a next hop of its family (RFC 4760 §3).
    let v4: Routes = [(host_v4(1), route_v6(0, None))].into();
    assert!(Packer::new(DecodeCtx::modern(), session(65001))
        .pack(&v4, &BTreeSet::new())
        .is_err());
    let v6: Routes = [("2001:db8::1/128".parse().unwrap(), route(0, None))].into();
    assert!(Packer::new(DecodeCtx::modern(), session(65001))
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
        local_as in any::<u32>(),
        sets in vec((any::<u32>(), proptest::option::of(any::<u32>())), 4),
    ) {
        let ctx = DecodeCtx { four_octet_as: four_octet, ..DecodeCtx::modern() };
        let announce: Routes = announce
            .into_iter()
            .map(|(p, i)| {
                let (med, c) = sets[i];
                (p, if p.addr().is_ipv4() { route(med, c) } else { route_v6(med, c) })
            })
            .collect();
        let mut packer = Packer::with_max_len(ctx, session(local_as), max);
        let updates = packer.pack(&announce, &withdraw).unwrap();
        let (announced, withdrawn) = deliver(&updates, &ctx, packer.max_len());

        let got: BTreeSet<IpNet> = announced.iter().map(|(p, _, _)| *p).collect();
        prop_assert_eq!(got.len(), announced.len(), "an announced prefix was duplicated");
        prop_assert_eq!(&got, &announce.keys().copied().collect::<BTreeSet<_>>());
        for (p, attrs, mp_next_hop) in &announced {
            let want = &announce[p];
            prop_assert_eq!(attrs.origin, Some(Origin::Igp));
            prop_assert_eq!(attrs.med, want.med);
            let communities: Option<Vec<Community>> = (!want.communities.is_empty())
                .then(|| want.communities.iter().copied().collect());
            prop_assert_eq!(&attrs.communities, &communities);
            match p {
                IpNet::V4(_) => prop_assert_eq!(attrs.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1))),
                IpNet::V6(_) => prop_assert_eq!(
                    *mp_next_hop,
                    Some(MpNextHop::V6 { global: v6_next_hop(), link_local: None })
                ),
            }
        }
        let want_withdrawn: BTreeSet<IpNet> =
            withdraw.iter().filter(|p| !announce.contains_key(p)).copied().collect();
        let got_withdrawn: BTreeSet<IpNet> = withdrawn.iter().copied().collect();
        prop_assert_eq!(got_withdrawn.len(), withdrawn.len(), "a withdrawn prefix was duplicated");
        prop_assert_eq!(got_withdrawn, want_withdrawn);
    }
}

/// RFC 8950 §4: on an unnumbered session (link-local local address) with Extended Next Hop
/// Encoding, IPv4 prefixes go in MP_REACH_NLRI (AFI 1, SAFI 1) with the IPv6 next hop, apart
/// from IPv6 prefixes of the same route, and survive the codec; without ENH they cannot be
/// sent at all.
#[test]
fn extended_next_hop_puts_ipv4_prefixes_in_mp_reach_with_the_ipv6_next_hop() {
    let ll: Ipv6Addr = "fe80::1".parse().expect("addr");
    let view = SessionView {
        local_addr: IpAddr::V6(ll),
        ipv4_via_ipv6: true,
        ..session(65001)
    };
    let route = Arc::new(Route::default());
    let mut announce = Routes::new();
    for p in ["198.51.100.1/32", "198.51.100.2/32", "2001:db8::1/128"] {
        announce.insert(p.parse().expect("net"), Arc::clone(&route));
    }
    let withdraw: BTreeSet<IpNet> = ["198.51.100.9/32".parse().expect("net")].into();
    let ctx = DecodeCtx::modern();
    let updates = Packer::new(ctx, view)
        .pack(&announce, &withdraw)
        .expect("packs");
    let mut v4_reach = Vec::new();
    let mut v6_reach = Vec::new();
    let mut withdrawn = Vec::new();
    for u in &updates {
        assert!(u.nlri.is_empty(), "no classic NLRI: {u:?}");
        withdrawn.extend(u.withdrawn_prefixes());
        let Some(reach) = &u.mp_reach else { continue };
        assert_eq!(
            reach.next_hop,
            MpNextHop::V6 {
                global: ll,
                link_local: None
            }
        );
        assert_eq!(u.attrs.next_hop, None, "MP_REACH_NLRI only: no NEXT_HOP");
        // One family per MP_REACH_NLRI.
        if reach.family == Family::IPV4_UNICAST {
            v4_reach.extend(reach.nlri.iter().copied());
        } else {
            assert_eq!(reach.family, Family::IPV6_UNICAST);
            v6_reach.extend(reach.nlri.iter().copied());
        }
        // The codec carries it: encoded and decoded back the same.
        let mut buf = bytes::BytesMut::new();
        Message::Update(u.clone())
            .encode(&ctx, &mut buf)
            .expect("encodes");
        let back = ferrolb_bgp::decode_message(&buf, &ctx).expect("decodes");
        assert_eq!(back, Message::Update(u.clone()));
    }
    let net = |s: &str| -> IpNet { s.parse().expect("net") };
    assert_eq!(v4_reach, [net("198.51.100.1/32"), net("198.51.100.2/32")]);
    assert_eq!(v6_reach, [net("2001:db8::1/128")]);
    assert_eq!(withdrawn, [net("198.51.100.9/32")]);

    // Without ENH negotiated an IPv4 prefix has no next hop of its family on this session.
    let plain = SessionView {
        ipv4_via_ipv6: false,
        ..view
    };
    let v4_only: Routes = [(net("198.51.100.1/32"), route)].into();
    assert!(Packer::new(ctx, plain)
        .pack(&v4_only, &BTreeSet::new())
        .is_err());
}

/// A route's extended communities go out as EXTENDED COMMUNITIES (RFC 4360), and a route
/// without any sends none; a change of link bandwidth alone is a change on the wire.
#[test]
fn extended_communities_are_sent_and_compared() {
    let lb = |bw: f32| {
        Arc::new(Route {
            extended_communities: [ExtendedCommunity::link_bandwidth(65001, bw)].into(),
            ..Route::default()
        })
    };
    let announce: Routes = [
        (host_v4(1), lb(375_000.0)),
        (host_v4(2), Arc::new(Route::default())),
    ]
    .into();
    let packed = Packer::new(DecodeCtx::modern(), session(65001))
        .pack(&announce, &BTreeSet::new())
        .unwrap();
    let with_lb: Vec<_> = packed
        .iter()
        .filter(|u| u.attrs.extended_communities.is_some())
        .collect();
    assert_eq!(with_lb.len(), 1);
    assert_eq!(
        with_lb[0].nlri,
        vec![Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 1), 32).unwrap()]
    );
    assert_eq!(
        with_lb[0].attrs.extended_communities,
        Some(vec![ExtendedCommunity::link_bandwidth(65001, 375_000.0)])
    );
    let s = session(65001);
    assert!(lb(1.0).same_on_wire(&lb(1.0), &host_v4(1), &s));
    assert!(!lb(1.0).same_on_wire(&lb(2.0), &host_v4(1), &s));
}
