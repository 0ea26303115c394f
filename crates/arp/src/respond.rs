//! The pure reply decision: given one received frame, the VIPs this node announces on the
//! interface and the interface's MAC, which frame (if any) goes back out.
//!
//! No I/O and no clock: the responder's socket loop calls [`decide`] per frame and sends what
//! it returns. The same module builds the unsolicited announcements sent on gaining a VIP.
//!
//! | received                                   | answered with                                  |
//! |--------------------------------------------|------------------------------------------------|
//! | ARP request for an owned VIP               | ARP reply to ar$sha, our MAC (RFC 826)          |
//! | ARP probe (sender 0.0.0.0) for an owned VIP| the same reply: defends the VIP (RFC 5227 §2.1.1)|
//! | ARP announcement (spa == tpa) of our VIP   | nothing: not a question                        |
//! | NS for an owned VIP, source specified      | solicited NA, S+O, unicast to the source (RFC 4861 §7.2.4) |
//! | NS without SLLA (unicast NUD probe)        | the same NA, to the frame's Ethernet source     |
//! | NS from :: (DAD probe) for an owned VIP    | NA with S=0, O=1 to ff02::1 (RFC 4861 §7.2.4)   |
//! | invalid NS (RFC 4861 §7.1.1)               | nothing                                        |

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};

use crate::wire::{
    solicited_node_address, ArpOp, ArpPacket, EtherType, EthernetHeader, Frame, Ipv6Header,
    MacAddr, NdpMessage, NdpOption, NeighborAdvertisement, NeighborSolicitation, ALL_NODES,
};

/// Hop limit of every NDP message sent and required of every one received (RFC 4861 §7.1.1,
/// §7.1.2): proves the sender is on-link.
pub const NDP_HOP_LIMIT: u8 = 255;

/// Why a received frame got no reply; a label per variant for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IgnoreReason {
    /// We sent it (looped back to the socket).
    OwnFrame,
    /// An ARP reply or other non-request operation.
    NotArpRequest,
    /// An NA or other non-NS message.
    NotNeighborSolicitation,
    /// The target is not a VIP this node announces on this interface.
    NotOwnedVip,
    /// A gratuitous ARP announcement (sender IP == target IP): nothing to answer.
    ArpAnnouncement,
    /// An NS failing RFC 4861 §7.1.1 validation (hop limit, code, target, DAD form).
    InvalidNeighborSolicitation,
}

impl IgnoreReason {
    /// A short, stable label for a counter.
    pub fn metric_label(self) -> &'static str {
        match self {
            IgnoreReason::OwnFrame => "own_frame",
            IgnoreReason::NotArpRequest => "not_arp_request",
            IgnoreReason::NotNeighborSolicitation => "not_neighbor_solicitation",
            IgnoreReason::NotOwnedVip => "not_owned_vip",
            IgnoreReason::ArpAnnouncement => "arp_announcement",
            IgnoreReason::InvalidNeighborSolicitation => "invalid_neighbor_solicitation",
        }
    }
}

/// The reply to `frame`, if this node must answer it; see the module table.
pub fn respond(frame: &Frame, owned_vips: &BTreeSet<IpAddr>, iface_mac: MacAddr) -> Option<Frame> {
    decide(frame, owned_vips, iface_mac).ok()
}

/// Like [`respond`], but says why nothing is sent.
pub fn decide(
    frame: &Frame,
    owned_vips: &BTreeSet<IpAddr>,
    iface_mac: MacAddr,
) -> Result<Frame, IgnoreReason> {
    if frame.eth().src == iface_mac {
        return Err(IgnoreReason::OwnFrame);
    }
    match frame {
        Frame::Arp { arp, .. } => answer_arp(arp, owned_vips, iface_mac),
        Frame::Ndp { eth, ip, msg } => match msg {
            NdpMessage::NeighborSolicitation(ns) => answer_ns(eth, ip, ns, owned_vips, iface_mac),
            NdpMessage::NeighborAdvertisement(_) => Err(IgnoreReason::NotNeighborSolicitation),
        },
    }
}

fn answer_arp(
    req: &ArpPacket,
    owned_vips: &BTreeSet<IpAddr>,
    mac: MacAddr,
) -> Result<Frame, IgnoreReason> {
    if req.op != ArpOp::REQUEST {
        return Err(IgnoreReason::NotArpRequest);
    }
    if !owned_vips.contains(&IpAddr::V4(req.target_ip)) {
        return Err(IgnoreReason::NotOwnedVip);
    }
    if req.sender_ip == req.target_ip {
        // RFC 5227 §3: an ARP Announcement asks nothing. (Another host announcing our VIP is a
        // conflict the operator must resolve; answering would only flap neighbours' caches.)
        return Err(IgnoreReason::ArpAnnouncement);
    }
    // RFC 826 "Packet Reception": swap sender and target, fill in our hardware address, and
    // send the reply to ar$sha. An ARP Probe (sender 0.0.0.0, RFC 5227 §2.1.1) is answered the
    // same way, which tells the probing host the address is in use: it gets tpa 0.0.0.0 back.
    Ok(Frame::Arp {
        eth: EthernetHeader {
            dst: req.sender_mac,
            src: mac,
            ethertype: EtherType::ARP,
        },
        arp: ArpPacket {
            op: ArpOp::REPLY,
            sender_mac: mac,
            sender_ip: req.target_ip,
            target_mac: req.sender_mac,
            target_ip: req.sender_ip,
        },
    })
}

fn answer_ns(
    eth: &EthernetHeader,
    ip: &Ipv6Header,
    ns: &NeighborSolicitation,
    owned_vips: &BTreeSet<IpAddr>,
    mac: MacAddr,
) -> Result<Frame, IgnoreReason> {
    validate_ns(ip, ns)?;
    if !owned_vips.contains(&IpAddr::V6(ns.target)) {
        return Err(IgnoreReason::NotOwnedVip);
    }
    let (dst_ip, dst_mac, solicited) = if ip.src.is_unspecified() {
        // RFC 4861 §7.2.4: "If the source of the solicitation is the unspecified address, the
        // node MUST set the Solicited flag to zero and multicast the advertisement to the
        // all-nodes address." This defends the VIP against a host running DAD for it.
        (ALL_NODES, MacAddr::ipv6_multicast(ALL_NODES), false)
    } else {
        // RFC 4861 §7.2.4: "Otherwise, the node MUST set the Solicited flag to one and unicast
        // the advertisement to the Source Address of the solicitation." The link-layer
        // destination is the SLLA when present; a unicast NUD probe (RFC 4861 §7.3.1) may omit
        // it (§4.3), and then the frame's own Ethernet source is the solicitor's MAC. Ignoring
        // such probes is MetalLB bug #2920: clients then mark the VIP unreachable.
        let dst_mac = ns.source_link_layer().unwrap_or(eth.src);
        (ip.src, dst_mac, true)
    };
    Ok(Frame::Ndp {
        eth: EthernetHeader {
            dst: dst_mac,
            src: mac,
            ethertype: EtherType::IPV6,
        },
        ip: Ipv6Header {
            traffic_class: 0,
            flow_label: 0,
            hop_limit: NDP_HOP_LIMIT,
            src: ns.target,
            dst: dst_ip,
        },
        msg: NdpMessage::NeighborAdvertisement(NeighborAdvertisement {
            code: 0,
            router: false,
            solicited,
            // RFC 4861 §7.2.4: Override set unless the target is anycast or a proxied address;
            // a VIP is this node's own address while it announces it, and on failover the new
            // node's NA must replace the old MAC in every cache.
            override_flag: true,
            target: ns.target,
            // RFC 4861 §7.2.4: the TLLA "MUST be included" when responding to multicast
            // solicitations; we always include it so caches in INCOMPLETE state can complete.
            options: vec![NdpOption::TargetLinkLayer(mac)],
        }),
    })
}

/// RFC 4861 §7.1.1 receiver checks not already done by the parser (checksum, ICMP length,
/// option lengths are).
fn validate_ns(ip: &Ipv6Header, ns: &NeighborSolicitation) -> Result<(), IgnoreReason> {
    let invalid = Err(IgnoreReason::InvalidNeighborSolicitation);
    // "The IP Hop Limit field has a value of 255" and "ICMP Code is 0".
    if ip.hop_limit != NDP_HOP_LIMIT || ns.code != 0 {
        return invalid;
    }
    // "Target Address is not a multicast address."
    if ns.target.is_multicast() {
        return invalid;
    }
    if ip.src.is_unspecified() {
        // "If the IP source address is the unspecified address, the IP destination address is
        // a solicited-node multicast address" and "there is no source link-layer address
        // option in the message."
        if ip.dst != solicited_node_address(ns.target) || ns.source_link_layer().is_some() {
            return invalid;
        }
    }
    Ok(())
}

/// Frames sent a few times on gaining `vip`, so neighbours update their caches at once instead
/// of waiting for their entries to expire: for IPv4 a gratuitous ARP request (RFC 5227 §3) and
/// reply (RFC 5944 §4.6), both broadcast; for IPv6 an unsolicited NA to all-nodes with the
/// Override flag (RFC 4861 §7.2.6).
pub fn announcements(vip: IpAddr, mac: MacAddr) -> Vec<Frame> {
    match vip {
        IpAddr::V4(v4) => vec![
            gratuitous_arp(ArpPacket::gratuitous_request(mac, v4), mac),
            gratuitous_arp(ArpPacket::gratuitous_reply(mac, v4), mac),
        ],
        IpAddr::V6(v6) => vec![unsolicited_na(v6, mac)],
    }
}

fn gratuitous_arp(arp: ArpPacket, mac: MacAddr) -> Frame {
    Frame::Arp {
        eth: EthernetHeader {
            dst: MacAddr::BROADCAST,
            src: mac,
            ethertype: EtherType::ARP,
        },
        arp,
    }
}

/// RFC 4861 §7.2.6: destination all-nodes, Solicited 0, Override 1, TLLA included.
fn unsolicited_na(vip: Ipv6Addr, mac: MacAddr) -> Frame {
    Frame::Ndp {
        eth: EthernetHeader {
            dst: MacAddr::ipv6_multicast(ALL_NODES),
            src: mac,
            ethertype: EtherType::IPV6,
        },
        ip: Ipv6Header {
            traffic_class: 0,
            flow_label: 0,
            hop_limit: NDP_HOP_LIMIT,
            src: vip,
            dst: ALL_NODES,
        },
        msg: NdpMessage::NeighborAdvertisement(NeighborAdvertisement {
            code: 0,
            router: false,
            solicited: false,
            override_flag: true,
            target: vip,
            options: vec![NdpOption::TargetLinkLayer(mac)],
        }),
    }
}
