//! Extended Next Hop Encoding (RFC 8950): IPv4 unicast prefixes announced with an IPv6 next
//! hop, as unnumbered BGP over a link's IPv6 link-local addresses needs.
//!
//! The capability (code 5, RFC 8950 §3) lists `NLRI AFI (2) | NLRI SAFI (2) | Nexthop AFI (2)`
//! triples; we send and look for IPv4 unicast with an IPv6 next hop only. It is carried as
//! [`Capability::Unknown`] (the codec keeps unknown capabilities byte for byte), so nothing in
//! the OPEN codec changes. When both sides sent it, IPv4 unicast prefixes whose next hop is
//! IPv6 go in MP_REACH_NLRI (AFI 1, SAFI 1) with a 16- or 32-octet next hop (RFC 8950 §4);
//! see [`crate::packer`].

use crate::wire::{Capability, CapabilityCode, Open};

/// Capability code 5 (RFC 8950 §3).
pub const CODE: CapabilityCode = CapabilityCode(5);

/// The one triple we use: NLRI AFI 1 (IPv4), NLRI SAFI 1 (unicast), Nexthop AFI 2 (IPv6).
const IPV4_UNICAST_OVER_IPV6: [u8; 6] = [0, 1, 0, 1, 0, 2];

/// Our capability: IPv4 unicast NLRI with IPv6 next hops.
pub fn capability() -> Capability {
    Capability::Unknown {
        code: CODE,
        value: IPV4_UNICAST_OVER_IPV6.to_vec(),
    }
}

/// Whether `open` advertises IPv4 unicast NLRI with IPv6 next hops (any of its code-5
/// capabilities lists that triple; RFC 8950 §3 allows several triples in one value, and a
/// value whose length is not a multiple of 6 is ignored as malformed).
pub fn ipv4_over_ipv6(open: &Open) -> bool {
    open.capabilities.iter().any(|c| match c {
        Capability::Unknown { code, value } if *code == CODE && value.len() % 6 == 0 => {
            value.chunks_exact(6).any(|t| t == IPV4_UNICAST_OVER_IPV6)
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::HoldTime;

    fn open(caps: Vec<Capability>) -> Open {
        Open::new(65001, HoldTime::DEFAULT, Ipv4Addr::new(10, 0, 0, 1), caps)
    }

    #[test]
    fn our_capability_is_recognised_and_others_are_not() {
        assert!(ipv4_over_ipv6(&open(vec![capability()])));
        assert!(!ipv4_over_ipv6(&open(vec![])));
        // IPv4 multicast (SAFI 2) over IPv6 only.
        let other = Capability::Unknown {
            code: CODE,
            value: vec![0, 1, 0, 2, 0, 2],
        };
        assert!(!ipv4_over_ipv6(&open(vec![other])));
        // Several triples in one value (FRR sends one; the RFC allows more).
        let several = Capability::Unknown {
            code: CODE,
            value: vec![0, 1, 0, 2, 0, 2, 0, 1, 0, 1, 0, 2],
        };
        assert!(ipv4_over_ipv6(&open(vec![several])));
        let truncated = Capability::Unknown {
            code: CODE,
            value: vec![0, 1, 0, 1, 0],
        };
        assert!(!ipv4_over_ipv6(&open(vec![truncated])));
    }

    #[test]
    fn the_capability_survives_the_open_codec() {
        let o = open(vec![capability()]);
        let mut buf = bytes::BytesMut::new();
        o.encode_body(&mut buf);
        let back = Open::decode(&buf).expect("decodes");
        assert!(ipv4_over_ipv6(&back));
    }
}
