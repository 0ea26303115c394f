//! Property tests: every frame the encoder can produce parses back to itself, and the parser
//! returns (never panics) on arbitrary octets.

use std::net::{Ipv4Addr, Ipv6Addr};

use ferrolb_arp::wire::{
    encode_frame, parse_frame, ArpOp, ArpPacket, EtherType, EthernetHeader, Frame, Ipv6Header,
    MacAddr, NdpMessage, NdpOption, NeighborAdvertisement, NeighborSolicitation,
};
use proptest::prelude::*;

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn option() -> impl Strategy<Value = NdpOption> {
    prop_oneof![
        mac().prop_map(NdpOption::SourceLinkLayer),
        mac().prop_map(NdpOption::TargetLinkLayer),
        // Unknown options round-trip when their data fills whole 8-octet units.
        (3u8..=255, 1usize..4, any::<u8>()).prop_map(|(kind, units, fill)| NdpOption::Unknown {
            kind,
            data: vec![fill; units * 8 - 2],
        }),
    ]
}

fn eth(ethertype: EtherType) -> impl Strategy<Value = EthernetHeader> {
    (mac(), mac()).prop_map(move |(dst, src)| EthernetHeader {
        dst,
        src,
        ethertype,
    })
}

fn frame() -> impl Strategy<Value = Frame> {
    let arp = (
        eth(EtherType::ARP),
        any::<u16>(),
        mac(),
        any::<[u8; 4]>(),
        mac(),
        any::<[u8; 4]>(),
    )
        .prop_map(|(eth, op, sha, spa, tha, tpa)| Frame::Arp {
            eth,
            arp: ArpPacket {
                op: ArpOp(op),
                sender_mac: sha,
                sender_ip: Ipv4Addr::from(spa),
                target_mac: tha,
                target_ip: Ipv4Addr::from(tpa),
            },
        });
    let ip = (
        any::<u8>(),
        0u32..(1 << 20),
        any::<u8>(),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
    )
        .prop_map(|(traffic_class, flow_label, hop_limit, s, d)| Ipv6Header {
            traffic_class,
            flow_label,
            hop_limit,
            src: Ipv6Addr::from(s),
            dst: Ipv6Addr::from(d),
        });
    let msg = (
        any::<bool>(),
        any::<u8>(),
        any::<[bool; 3]>(),
        any::<[u8; 16]>(),
        proptest::collection::vec(option(), 0..4),
    )
        .prop_map(|(is_ns, code, [r, s, o], target, options)| {
            let target = Ipv6Addr::from(target);
            if is_ns {
                NdpMessage::NeighborSolicitation(NeighborSolicitation {
                    code,
                    target,
                    options,
                })
            } else {
                NdpMessage::NeighborAdvertisement(NeighborAdvertisement {
                    code,
                    router: r,
                    solicited: s,
                    override_flag: o,
                    target,
                    options,
                })
            }
        });
    let ndp =
        (eth(EtherType::IPV6), ip, msg).prop_map(|(eth, ip, msg)| Frame::Ndp { eth, ip, msg });
    prop_oneof![arp, ndp]
}

proptest! {
    #[test]
    fn parse_inverts_encode(f in frame()) {
        prop_assert_eq!(parse_frame(&encode_frame(&f)), Ok(f));
    }

    #[test]
    fn arbitrary_octets_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_frame(&bytes);
    }

    #[test]
    fn every_prefix_of_a_valid_frame_is_rejected_or_padding(f in frame(), cut in 0usize..100) {
        // Cutting inside the frame must yield an error; cutting only ARP padding may not.
        let bytes = encode_frame(&f);
        let cut = cut.min(bytes.len());
        if let Some(prefix) = bytes.get(..bytes.len() - cut) {
            if cut > 0 && matches!(f, Frame::Ndp { .. }) {
                prop_assert!(parse_frame(prefix).is_err());
            }
        }
    }
}
