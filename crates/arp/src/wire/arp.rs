//! ARP for IPv4 over Ethernet (RFC 826), including the gratuitous forms of RFC 5227 §3 and
//! RFC 5944 §4.6.
//!
//! ```text
//!  0       2       4   5   6       8
//! +-------+-------+---+---+-------+
//! | htype | ptype |hln|pln| oper  |   htype 1 (Ethernet), ptype 0x0800, hln 6, pln 4
//! +-------+-------+---+---+-------+-----------------------+
//! | sender hardware address (6)   | sender protocol (4)   |
//! +-------------------------------+-----------------------+
//! | target hardware address (6)   | target protocol (4)   |
//! +-------------------------------+-----------------------+
//! ```

use std::net::Ipv4Addr;

use super::{FrameError, MacAddr, Reader};

/// ARP operation code (IANA "ARP Parameters", Operation Codes; open so unknown values parse).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ArpOp(pub u16);

impl ArpOp {
    /// REQUEST (RFC 826).
    pub const REQUEST: ArpOp = ArpOp(1);
    /// REPLY (RFC 826).
    pub const REPLY: ArpOp = ArpOp(2);
}

/// Hardware type Ethernet (RFC 826 ar$hrd, IANA hardware type 1).
const HTYPE_ETHERNET: u16 = 1;
/// Protocol type IPv4 (ar$pro uses EtherType values).
const PTYPE_IPV4: u16 = 0x0800;

/// An Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpPacket {
    /// Operation.
    pub op: ArpOp,
    /// Sender hardware address (ar$sha).
    pub sender_mac: MacAddr,
    /// Sender protocol address (ar$spa); 0.0.0.0 in an ARP Probe (RFC 5227 §2.1.1).
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (ar$tha).
    pub target_mac: MacAddr,
    /// Target protocol address (ar$tpa).
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// The gratuitous ARP request of RFC 5227 §3 ("ARP Announcement"): sender and target
    /// protocol address both `ip`, target hardware address zero.
    pub fn gratuitous_request(mac: MacAddr, ip: Ipv4Addr) -> Self {
        ArpPacket {
            op: ArpOp::REQUEST,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    /// The gratuitous ARP reply of RFC 5944 §4.6: "When using an ARP REPLY packet, the Target
    /// Hardware Address is also set to the link-layer address to which this cache entry should
    /// be updated". Some hosts only update their caches from replies, hence both forms.
    pub fn gratuitous_reply(mac: MacAddr, ip: Ipv4Addr) -> Self {
        ArpPacket {
            op: ArpOp::REPLY,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: mac,
            target_ip: ip,
        }
    }
}

/// Parses an ARP packet; octets after its 28 are ignored (Ethernet padding).
pub fn parse_arp(r: &mut Reader<'_>) -> Result<ArpPacket, FrameError> {
    let htype = r.u16("arp hardware type")?;
    let ptype = r.u16("arp protocol type")?;
    let hlen = r.u8("arp hardware length")?;
    let plen = r.u8("arp protocol length")?;
    // RFC 826 lets ARP carry any hardware/protocol pair; we only resolve IPv4 over Ethernet.
    for (field, value, want) in [
        ("hardware type", htype, HTYPE_ETHERNET),
        ("protocol type", ptype, PTYPE_IPV4),
        ("hardware length", u16::from(hlen), 6),
        ("protocol length", u16::from(plen), 4),
    ] {
        if value != want {
            return Err(FrameError::UnsupportedArp { field, value });
        }
    }
    Ok(ArpPacket {
        op: ArpOp(r.u16("arp operation")?),
        sender_mac: r.mac("arp sender hardware address")?,
        sender_ip: Ipv4Addr::from(r.array::<4>("arp sender protocol address")?),
        target_mac: r.mac("arp target hardware address")?,
        target_ip: Ipv4Addr::from(r.array::<4>("arp target protocol address")?),
    })
}

/// Appends the 28-octet ARP packet.
pub fn encode_arp(p: &ArpPacket, out: &mut Vec<u8>) {
    out.extend_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    out.extend_from_slice(&PTYPE_IPV4.to_be_bytes());
    out.extend_from_slice(&[6, 4]);
    out.extend_from_slice(&p.op.0.to_be_bytes());
    out.extend_from_slice(&p.sender_mac.0);
    out.extend_from_slice(&p.sender_ip.octets());
    out.extend_from_slice(&p.target_mac.0);
    out.extend_from_slice(&p.target_ip.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who has 192.0.2.10? Tell 192.0.2.1 (from 02:00:00:00:00:01).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype, ptype, hlen, plen, oper
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 192, 0, 2, 1, // sha, spa
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 192, 0, 2, 10, // tha, tpa
    ];

    #[test]
    fn request_parses_field_by_field() {
        let p = parse_arp(&mut Reader::new(&REQUEST)).expect("valid request");
        assert_eq!(
            p,
            ArpPacket {
                op: ArpOp::REQUEST,
                sender_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                sender_ip: Ipv4Addr::new(192, 0, 2, 1),
                target_mac: MacAddr::ZERO,
                target_ip: Ipv4Addr::new(192, 0, 2, 10),
            }
        );
        let mut out = Vec::new();
        encode_arp(&p, &mut out);
        assert_eq!(out, REQUEST);
    }

    #[test]
    fn gratuitous_forms_match_rfc_5227_and_5944() {
        let mac = MacAddr([2, 0, 0, 0, 0, 9]);
        let ip = Ipv4Addr::new(192, 0, 2, 10);
        let mut req = Vec::new();
        encode_arp(&ArpPacket::gratuitous_request(mac, ip), &mut req);
        assert_eq!(
            req,
            [
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 9, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 192, 0,
                2, 10
            ]
        );
        let mut rep = Vec::new();
        encode_arp(&ArpPacket::gratuitous_reply(mac, ip), &mut rep);
        assert_eq!(
            rep,
            [
                0, 1, 8, 0, 6, 4, 0, 2, 2, 0, 0, 0, 0, 9, 192, 0, 2, 10, 2, 0, 0, 0, 0, 9, 192, 0,
                2, 10
            ]
        );
    }

    #[test]
    fn other_hardware_or_protocol_types_are_unsupported() {
        let cases: [(usize, u8, &str); 4] = [
            (1, 6, "hardware type"),    // IEEE 802 (6)
            (3, 0xdd, "protocol type"), // 0x08dd
            (4, 8, "hardware length"),  // EUI-64
            (5, 16, "protocol length"),
        ];
        for (offset, value, field) in cases {
            let mut bytes = REQUEST;
            if let Some(b) = bytes.get_mut(offset) {
                *b = value;
            }
            let err = parse_arp(&mut Reader::new(&bytes)).expect_err("unsupported");
            assert!(
                matches!(err, FrameError::UnsupportedArp { field: f, .. } if f == field),
                "{err:?}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..REQUEST.len() {
            let err = parse_arp(&mut Reader::new(REQUEST.get(..len).unwrap_or_default()))
                .expect_err("truncated");
            assert!(
                matches!(err, FrameError::Truncated { .. }),
                "{len}: {err:?}"
            );
        }
    }
}
