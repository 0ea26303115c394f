//! Table tests for the reply decision, one row per rule, each citing its RFC section.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrolb_arp::respond::{announcements, decide, respond, IgnoreReason};
use ferrolb_arp::wire::{
    encode_frame, parse_frame, solicited_node_address, ArpOp, ArpPacket, EtherType, EthernetHeader,
    Frame, Ipv6Header, MacAddr, NdpMessage, NdpOption, NeighborAdvertisement, NeighborSolicitation,
    ALL_NODES,
};

const OUR_MAC: MacAddr = MacAddr([0x02, 0xfe, 0, 0, 0, 0x01]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xc1, 0, 0, 0, 0x02]);
const OTHER_MAC: MacAddr = MacAddr([0x02, 0xc1, 0, 0, 0, 0x03]);
const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const CLIENT4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);
const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100);
const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7);

fn vips() -> BTreeSet<IpAddr> {
    [IpAddr::V4(VIP4), IpAddr::V6(VIP6)].into()
}

fn arp(op: ArpOp, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Frame {
    Frame::Arp {
        eth: EthernetHeader {
            dst: MacAddr::BROADCAST,
            src: CLIENT_MAC,
            ethertype: EtherType::ARP,
        },
        arp: ArpPacket {
            op,
            sender_mac: CLIENT_MAC,
            sender_ip,
            target_mac: MacAddr::ZERO,
            target_ip,
        },
    }
}

struct Ns {
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    slla: Option<MacAddr>,
    hop_limit: u8,
    code: u8,
}

impl Ns {
    /// Address resolution: multicast to the target's solicited-node group with SLLA (RFC 4861
    /// §7.2.2).
    fn resolution(target: Ipv6Addr) -> Self {
        Ns {
            src: CLIENT6,
            dst: solicited_node_address(target),
            target,
            slla: Some(CLIENT_MAC),
            hop_limit: 255,
            code: 0,
        }
    }

    fn frame(self) -> Frame {
        let dst_mac = if self.dst.is_multicast() {
            MacAddr::ipv6_multicast(self.dst)
        } else {
            OUR_MAC
        };
        Frame::Ndp {
            eth: EthernetHeader {
                dst: dst_mac,
                src: CLIENT_MAC,
                ethertype: EtherType::IPV6,
            },
            ip: Ipv6Header {
                traffic_class: 0,
                flow_label: 0,
                hop_limit: self.hop_limit,
                src: self.src,
                dst: self.dst,
            },
            msg: NdpMessage::NeighborSolicitation(NeighborSolicitation {
                code: self.code,
                target: self.target,
                options: self
                    .slla
                    .map(NdpOption::SourceLinkLayer)
                    .into_iter()
                    .collect(),
            }),
        }
    }
}

fn solicited_na(eth_dst: MacAddr, ip_dst: Ipv6Addr, solicited: bool) -> Frame {
    Frame::Ndp {
        eth: EthernetHeader {
            dst: eth_dst,
            src: OUR_MAC,
            ethertype: EtherType::IPV6,
        },
        ip: Ipv6Header {
            traffic_class: 0,
            flow_label: 0,
            hop_limit: 255,
            src: VIP6,
            dst: ip_dst,
        },
        msg: NdpMessage::NeighborAdvertisement(NeighborAdvertisement {
            code: 0,
            router: false,
            solicited,
            override_flag: true,
            target: VIP6,
            options: vec![NdpOption::TargetLinkLayer(OUR_MAC)],
        }),
    }
}

fn arp_reply(to_mac: MacAddr, to_ip: Ipv4Addr) -> Frame {
    Frame::Arp {
        eth: EthernetHeader {
            dst: to_mac,
            src: OUR_MAC,
            ethertype: EtherType::ARP,
        },
        arp: ArpPacket {
            op: ArpOp::REPLY,
            sender_mac: OUR_MAC,
            sender_ip: VIP4,
            target_mac: to_mac,
            target_ip: to_ip,
        },
    }
}

#[test]
fn every_rule_of_the_reply_table() {
    let other4 = Ipv4Addr::new(192, 0, 2, 101);
    let other6: Ipv6Addr = "2001:db8::101".parse().expect("addr");
    let nud_probe_without_slla = Ns {
        dst: VIP6,
        slla: None,
        ..Ns::resolution(VIP6)
    };
    let mut from_ourselves = arp(ArpOp::REQUEST, CLIENT4, VIP4);
    if let Frame::Arp { eth, .. } = &mut from_ourselves {
        eth.src = OUR_MAC;
    }
    let slla_differs = Ns {
        slla: Some(OTHER_MAC),
        ..Ns::resolution(VIP6)
    };

    let rows: Vec<(&str, Frame, Result<Frame, IgnoreReason>)> = vec![
        (
            "RFC 826: request for an owned VIP gets a reply to ar$sha",
            arp(ArpOp::REQUEST, CLIENT4, VIP4),
            Ok(arp_reply(CLIENT_MAC, CLIENT4)),
        ),
        (
            "RFC 826: request for another address is not ours to answer",
            arp(ArpOp::REQUEST, CLIENT4, other4),
            Err(IgnoreReason::NotOwnedVip),
        ),
        (
            "RFC 826: replies are not answered",
            arp(ArpOp::REPLY, CLIENT4, VIP4),
            Err(IgnoreReason::NotArpRequest),
        ),
        (
            "RFC 5227 §2.1.1: an ARP probe for our VIP is answered, defending it",
            arp(ArpOp::REQUEST, Ipv4Addr::UNSPECIFIED, VIP4),
            Ok(arp_reply(CLIENT_MAC, Ipv4Addr::UNSPECIFIED)),
        ),
        (
            "RFC 5227 §3: an ARP announcement of our VIP asks nothing",
            arp(ArpOp::REQUEST, VIP4, VIP4),
            Err(IgnoreReason::ArpAnnouncement),
        ),
        (
            "our own frames looped back are ignored",
            from_ourselves,
            Err(IgnoreReason::OwnFrame),
        ),
        (
            "RFC 4861 §7.2.4: NS for an owned VIP gets a solicited NA, S and O set",
            Ns::resolution(VIP6).frame(),
            Ok(solicited_na(CLIENT_MAC, CLIENT6, true)),
        ),
        (
            "RFC 4861 §7.2.4: the link-layer destination is the SLLA",
            slla_differs.frame(),
            Ok(solicited_na(OTHER_MAC, CLIENT6, true)),
        ),
        (
            "RFC 4861 §7.3.1: unicast NUD probe without SLLA is answered (MetalLB #2920)",
            nud_probe_without_slla.frame(),
            Ok(solicited_na(CLIENT_MAC, CLIENT6, true)),
        ),
        (
            "RFC 4861 §7.2.4: DAD probe from :: gets S=0 NA to all-nodes",
            Ns {
                src: Ipv6Addr::UNSPECIFIED,
                slla: None,
                ..Ns::resolution(VIP6)
            }
            .frame(),
            Ok(solicited_na(
                MacAddr::ipv6_multicast(ALL_NODES),
                ALL_NODES,
                false,
            )),
        ),
        (
            "RFC 4861 §7.1.1: DAD probe with SLLA is invalid",
            Ns {
                src: Ipv6Addr::UNSPECIFIED,
                ..Ns::resolution(VIP6)
            }
            .frame(),
            Err(IgnoreReason::InvalidNeighborSolicitation),
        ),
        (
            "RFC 4861 §7.1.1: DAD probe not sent to the solicited-node group is invalid",
            Ns {
                src: Ipv6Addr::UNSPECIFIED,
                dst: ALL_NODES,
                slla: None,
                ..Ns::resolution(VIP6)
            }
            .frame(),
            Err(IgnoreReason::InvalidNeighborSolicitation),
        ),
        (
            "RFC 4861 §7.1.1: hop limit below 255 is invalid",
            Ns {
                hop_limit: 254,
                ..Ns::resolution(VIP6)
            }
            .frame(),
            Err(IgnoreReason::InvalidNeighborSolicitation),
        ),
        (
            "RFC 4861 §7.1.1: ICMP code other than 0 is invalid",
            Ns {
                code: 1,
                ..Ns::resolution(VIP6)
            }
            .frame(),
            Err(IgnoreReason::InvalidNeighborSolicitation),
        ),
        (
            "RFC 4861 §7.1.1: a multicast target is invalid",
            Ns {
                target: ALL_NODES,
                ..Ns::resolution(VIP6)
            }
            .frame(),
            Err(IgnoreReason::InvalidNeighborSolicitation),
        ),
        (
            "NS for another address is not ours to answer",
            Ns::resolution(other6).frame(),
            Err(IgnoreReason::NotOwnedVip),
        ),
    ];

    for (rule, input, expected) in rows {
        let got = decide(&input, &vips(), OUR_MAC);
        assert_eq!(got, expected, "{rule}");
        assert_eq!(respond(&input, &vips(), OUR_MAC), expected.ok(), "{rule}");
    }
}

#[test]
fn a_neighbour_advertisement_from_someone_else_is_not_answered() {
    let mut na = solicited_na(CLIENT_MAC, CLIENT6, true);
    if let Frame::Ndp { eth, .. } = &mut na {
        eth.src = CLIENT_MAC;
    }
    assert_eq!(
        decide(&na, &vips(), OUR_MAC),
        Err(IgnoreReason::NotNeighborSolicitation)
    );
}

#[test]
fn no_vips_means_no_replies() {
    let none = BTreeSet::new();
    assert_eq!(
        respond(&arp(ArpOp::REQUEST, CLIENT4, VIP4), &none, OUR_MAC),
        None
    );
    assert_eq!(respond(&Ns::resolution(VIP6).frame(), &none, OUR_MAC), None);
}

#[test]
fn replies_survive_the_wire_unchanged() {
    // What decide() returns must be what a neighbour parses: encode, then parse back.
    for input in [
        arp(ArpOp::REQUEST, CLIENT4, VIP4),
        Ns::resolution(VIP6).frame(),
    ] {
        let reply = respond(&input, &vips(), OUR_MAC).expect("answered");
        assert_eq!(parse_frame(&encode_frame(&reply)), Ok(reply));
    }
}

#[test]
fn gaining_a_vip_announces_both_arp_forms_or_an_unsolicited_na() {
    let v4 = announcements(IpAddr::V4(VIP4), OUR_MAC);
    let ops: Vec<_> = v4
        .iter()
        .map(|f| match f {
            Frame::Arp { eth, arp } => {
                assert_eq!(eth.dst, MacAddr::BROADCAST);
                assert_eq!((arp.sender_ip, arp.target_ip), (VIP4, VIP4));
                assert_eq!(arp.sender_mac, OUR_MAC);
                arp.op
            }
            other => panic!("not ARP: {other:?}"),
        })
        .collect();
    assert_eq!(ops, [ArpOp::REQUEST, ArpOp::REPLY]);

    let v6 = announcements(IpAddr::V6(VIP6), OUR_MAC);
    // RFC 4861 §7.2.6: to all-nodes, Solicited 0, Override 1, TLLA present.
    assert_eq!(
        v6,
        [solicited_na(
            MacAddr::ipv6_multicast(ALL_NODES),
            ALL_NODES,
            false
        )]
    );
}
