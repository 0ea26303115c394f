//! Cross-implementation check: the frames we send, written to a pcap and decoded by tshark
//! (Wireshark's dissectors), must carry the fields the RFCs require and a checksum tshark calls
//! good. Skips loudly when tshark is missing.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrolb_arp::respond::{announcements, respond};
use ferrolb_arp::wire::{
    encode_frame, solicited_node_address, ArpOp, ArpPacket, EtherType, EthernetHeader, Frame,
    Ipv6Header, MacAddr, NdpMessage, NdpOption, NeighborSolicitation,
};
use ferrolb_e2e::pcap;

const OUR_MAC: MacAddr = MacAddr([0x02, 0xfe, 0, 0, 0, 0x01]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xc1, 0, 0, 0, 0x02]);

/// The values of `fields` tshark decodes from `frames`; `None` without tshark.
fn tshark_fields(frames: &[Frame], fields: &[&str]) -> Option<Vec<Vec<String>>> {
    let bytes: Vec<Vec<u8>> = frames.iter().map(encode_frame).collect();
    pcap::tshark_fields(pcap::LINKTYPE_ETHERNET, &bytes, fields)
}

#[test]
fn tshark_decodes_our_arp_replies_and_gratuitous_arps_as_intended() {
    let vip = Ipv4Addr::new(192, 0, 2, 100);
    let request = Frame::Arp {
        eth: EthernetHeader {
            dst: MacAddr::BROADCAST,
            src: CLIENT_MAC,
            ethertype: EtherType::ARP,
        },
        arp: ArpPacket {
            op: ArpOp::REQUEST,
            sender_mac: CLIENT_MAC,
            sender_ip: Ipv4Addr::new(192, 0, 2, 7),
            target_mac: MacAddr::ZERO,
            target_ip: vip,
        },
    };
    let vips: BTreeSet<IpAddr> = [IpAddr::V4(vip)].into();
    let mut frames = vec![respond(&request, &vips, OUR_MAC).expect("answered")];
    frames.extend(announcements(IpAddr::V4(vip), OUR_MAC));
    let fields = [
        "arp.opcode",
        "arp.src.hw_mac",
        "arp.src.proto_ipv4",
        "arp.dst.hw_mac",
        "arp.dst.proto_ipv4",
    ];
    let Some(rows) = tshark_fields(&frames, &fields) else {
        eprintln!(
            "SKIPPED tshark_decodes_our_arp_replies_and_gratuitous_arps_as_intended: no tshark"
        );
        return;
    };
    let want = [
        [
            "2",
            "02:fe:00:00:00:01",
            "192.0.2.100",
            "02:c1:00:00:00:02",
            "192.0.2.7",
        ],
        [
            "1",
            "02:fe:00:00:00:01",
            "192.0.2.100",
            "00:00:00:00:00:00",
            "192.0.2.100",
        ],
        [
            "2",
            "02:fe:00:00:00:01",
            "192.0.2.100",
            "02:fe:00:00:00:01",
            "192.0.2.100",
        ],
    ];
    assert_eq!(rows, want.map(|r| r.map(String::from).to_vec()));
}

#[test]
fn tshark_finds_our_neighbor_advertisements_valid_with_good_checksums() {
    let vip: Ipv6Addr = "2001:db8::100".parse().expect("addr");
    let client: Ipv6Addr = "2001:db8::7".parse().expect("addr");
    let ns = Frame::Ndp {
        eth: EthernetHeader {
            dst: MacAddr::ipv6_multicast(solicited_node_address(vip)),
            src: CLIENT_MAC,
            ethertype: EtherType::IPV6,
        },
        ip: Ipv6Header {
            traffic_class: 0,
            flow_label: 0,
            hop_limit: 255,
            src: client,
            dst: solicited_node_address(vip),
        },
        msg: NdpMessage::NeighborSolicitation(NeighborSolicitation {
            code: 0,
            target: vip,
            options: vec![NdpOption::SourceLinkLayer(CLIENT_MAC)],
        }),
    };
    let vips: BTreeSet<IpAddr> = [IpAddr::V6(vip)].into();
    let mut frames = vec![ns.clone(), respond(&ns, &vips, OUR_MAC).expect("answered")];
    frames.extend(announcements(IpAddr::V6(vip), OUR_MAC));
    let fields = [
        "icmpv6.type",
        "icmpv6.checksum.status",
        "ipv6.dst",
        "icmpv6.nd.na.flag.s",
        "icmpv6.nd.na.flag.o",
        "icmpv6.opt.linkaddr",
    ];
    let Some(rows) = tshark_fields(&frames, &fields) else {
        eprintln!(
            "SKIPPED tshark_finds_our_neighbor_advertisements_valid_with_good_checksums: no tshark"
        );
        return;
    };
    // Checksum status 1 = good (Wireshark's PROTO_CHECKSUM_E_GOOD). Flags print as True/False
    // or 1/0 depending on the tshark version, so they are normalised.
    let norm = |s: &str| match s {
        "True" | "1" => "1".to_string(),
        "False" | "0" => "0".to_string(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|f| norm(f)).collect())
        .collect();
    let want = [
        ["135", "1", "ff02::1:ff00:100", "", "", "02:c1:00:00:00:02"],
        ["136", "1", "2001:db8::7", "1", "1", "02:fe:00:00:00:01"],
        ["136", "1", "ff02::1", "0", "1", "02:fe:00:00:00:01"],
    ];
    assert_eq!(rows, want.map(|r| r.map(String::from).to_vec()));
}
