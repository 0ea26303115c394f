//! Ethernet II header (IEEE 802.3 §3.1.1 with an EtherType, RFC 894).
//!
//! ```text
//!  0                   6                  12       14
//! +-------------------+-------------------+--------+
//! | destination MAC   | source MAC        | type   |
//! +-------------------+-------------------+--------+
//! ```

use super::{FrameError, MacAddr, Reader};

/// An EtherType value (IEEE Registration Authority; open so unknown values round-trip).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EtherType(pub u16);

impl EtherType {
    /// IPv4 (RFC 894).
    pub const IPV4: EtherType = EtherType(0x0800);
    /// ARP (RFC 826).
    pub const ARP: EtherType = EtherType(0x0806);
    /// IPv6 (RFC 2464 §3).
    pub const IPV6: EtherType = EtherType(0x86dd);
}

/// An Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// Type of the payload.
    pub ethertype: EtherType,
}

/// Parses the 14-octet header. 802.1Q tags are not expected: Linux strips them (or delivers the
/// frame on the VLAN interface) before AF_PACKET sees it on the interfaces we bind to.
pub fn parse_ethernet(r: &mut Reader<'_>) -> Result<EthernetHeader, FrameError> {
    Ok(EthernetHeader {
        dst: r.mac("ethernet destination")?,
        src: r.mac("ethernet source")?,
        ethertype: EtherType(r.u16("ethertype")?),
    })
}

/// Appends the 14-octet header.
pub fn encode_ethernet(h: &EthernetHeader, out: &mut Vec<u8>) {
    out.extend_from_slice(&h.dst.0);
    out.extend_from_slice(&h.src.0);
    out.extend_from_slice(&h.ethertype.0.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parses_and_encodes_back() {
        let bytes = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
        ];
        let h = parse_ethernet(&mut Reader::new(&bytes)).expect("valid header");
        assert_eq!(h.dst, MacAddr::BROADCAST);
        assert_eq!(h.src, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(h.ethertype, EtherType::ARP);
        let mut out = Vec::new();
        encode_ethernet(&h, &mut out);
        assert_eq!(out, bytes);
    }

    #[test]
    fn short_header_is_truncated_not_a_panic() {
        for len in 0..14 {
            let bytes = vec![0u8; len];
            let err = parse_ethernet(&mut Reader::new(&bytes)).expect_err("too short");
            assert!(
                matches!(err, FrameError::Truncated { .. }),
                "{len}: {err:?}"
            );
        }
    }
}
