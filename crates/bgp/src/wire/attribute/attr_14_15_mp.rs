//! MP_REACH_NLRI (type 14) and MP_UNREACH_NLRI (type 15), RFC 4760 §3-4.
//!
//! ```text
//! MP_REACH_NLRI:                          MP_UNREACH_NLRI:
//! +---------------------------------+     +---------------------------------+
//! | AFI (2) | SAFI (1)              |     | AFI (2) | SAFI (1)              |
//! | Length of Next Hop (1)          |     | Withdrawn Routes (variable)     |
//! | Next Hop (variable)             |     +---------------------------------+
//! | Reserved (1)                    |
//! | NLRI (variable)                 |
//! +---------------------------------+
//! ```
//! Next hop: 4 octets (IPv4), 16 (IPv6 global) or 32 (global + link-local, RFC 2545 §3);
//! an IPv6 next hop for IPv4 NLRI is RFC 8950.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::IpNet;

use crate::wire::nlri::{
    decode_ipv4_prefixes, decode_ipv6_prefixes, encode_prefix, net_encoded_len,
};
use crate::wire::{Afi, EncodingError, Family, Safi};

/// The next hop of MP_REACH_NLRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum MpNextHop {
    /// An IPv4 next hop (4 octets).
    V4(Ipv4Addr),
    /// An IPv6 global next hop, optionally followed by a link-local one (16 or 32 octets,
    /// RFC 2545 §3).
    V6 {
        /// Global address.
        global: Ipv6Addr,
        /// Link-local address, when the peer is on a shared link.
        link_local: Option<Ipv6Addr>,
    },
}

impl MpNextHop {
    /// Length of the next hop field.
    pub fn len(&self) -> usize {
        match self {
            MpNextHop::V4(_) => 4,
            MpNextHop::V6 {
                link_local: None, ..
            } => 16,
            MpNextHop::V6 { .. } => 32,
        }
    }

    /// Never empty; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn parse(bytes: &[u8]) -> Option<MpNextHop> {
        if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
            return Some(MpNextHop::V4(Ipv4Addr::from(v4)));
        }
        if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
            return Some(MpNextHop::V6 {
                global: Ipv6Addr::from(v6),
                link_local: None,
            });
        }
        let (global, ll) = bytes.split_first_chunk::<16>()?;
        let ll = <[u8; 16]>::try_from(ll).ok()?;
        Some(MpNextHop::V6 {
            global: Ipv6Addr::from(*global),
            link_local: Some(Ipv6Addr::from(ll)),
        })
    }

    fn encode(&self, buf: &mut BytesMut) {
        match self {
            MpNextHop::V4(a) => buf.put_slice(&a.octets()),
            MpNextHop::V6 { global, link_local } => {
                buf.put_slice(&global.octets());
                if let Some(ll) = link_local {
                    buf.put_slice(&ll.octets());
                }
            }
        }
    }
}

/// MP_REACH_NLRI: reachable prefixes of one family and their next hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MpReach {
    /// The family of `nlri`; only IPv4/IPv6 unicast and multicast are decoded.
    pub family: Family,
    /// Next hop for all of `nlri`.
    pub next_hop: MpNextHop,
    /// Announced prefixes; all of the address family of `family.afi`.
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI: withdrawn prefixes of one family. With no prefixes it is the End-of-RIB
/// marker for that family (RFC 4724 §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MpUnreach {
    /// The family of `withdrawn`.
    pub family: Family,
    /// Withdrawn prefixes.
    pub withdrawn: Vec<IpNet>,
}

/// Why an MP attribute could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MpError {
    /// Shorter than its fixed fields, or the next hop length is not one we understand:
    /// the NLRI cannot be located (RFC 7606 §7.11).
    Malformed,
    /// The NLRI / withdrawn routes are not a valid prefix sequence (RFC 7606 §5.3).
    BadNlri,
    /// A family this crate does not decode; the attribute is ignored.
    UnsupportedFamily(Family),
}

fn decodable(family: Family) -> bool {
    matches!(family.afi, Afi::IPV4 | Afi::IPV6)
        && matches!(family.safi, Safi::UNICAST | Safi::MULTICAST)
}

fn parse_family(value: &[u8]) -> Option<(Family, &[u8])> {
    let ([a, b, safi], rest) = value.split_first_chunk::<3>()?;
    Some((
        Family {
            afi: Afi(u16::from_be_bytes([*a, *b])),
            safi: Safi(*safi),
        },
        rest,
    ))
}

fn decode_prefixes(afi: Afi, input: &[u8]) -> Result<Vec<IpNet>, MpError> {
    if afi == Afi::IPV4 {
        let mut v4 = Vec::new();
        decode_ipv4_prefixes(input, &mut v4).map_err(|_| MpError::BadNlri)?;
        Ok(v4.into_iter().map(IpNet::V4).collect())
    } else {
        let mut v6 = Vec::new();
        decode_ipv6_prefixes(input, &mut v6).map_err(|_| MpError::BadNlri)?;
        Ok(v6.into_iter().map(IpNet::V6).collect())
    }
}

impl MpReach {
    pub(crate) fn parse(value: &[u8]) -> Result<MpReach, MpError> {
        let (family, rest) = parse_family(value).ok_or(MpError::Malformed)?;
        if !decodable(family) {
            return Err(MpError::UnsupportedFamily(family));
        }
        let (&nh_len, rest) = rest.split_first().ok_or(MpError::Malformed)?;
        let (nh, rest) = rest
            .split_at_checked(usize::from(nh_len))
            .ok_or(MpError::Malformed)?;
        let next_hop = MpNextHop::parse(nh).ok_or(MpError::Malformed)?;
        // RFC 7606 §7.11: a next hop length inconsistent with the AFI makes the attribute
        // malformed. IPv6 NLRI needs a 16- or 32-octet IPv6 next hop (RFC 2545 §3; 6PE's
        // IPv4 next hop is IPv4-mapped, 16 octets, RFC 4798 §2). The converse, IPv4 NLRI with
        // an IPv6 next hop, is valid (RFC 8950).
        if family.afi == Afi::IPV6 && matches!(next_hop, MpNextHop::V4(_)) {
            return Err(MpError::Malformed);
        }
        // RFC 4760 §3: one Reserved octet (formerly the SNPA count), ignored on receipt.
        let (_reserved, nlri) = rest.split_first().ok_or(MpError::Malformed)?;
        Ok(MpReach {
            family,
            next_hop,
            nlri: decode_prefixes(family.afi, nlri)?,
        })
    }

    /// Value length on the wire.
    pub fn value_len(&self) -> usize {
        3 + 1 + self.next_hop.len() + 1 + self.nlri.iter().map(net_encoded_len).sum::<usize>()
    }

    pub(crate) fn check(&self) -> Result<(), EncodingError> {
        let v4 = self.family.afi == Afi::IPV4;
        if !decodable(self.family) || self.nlri.iter().any(|n| matches!(n, IpNet::V4(_)) != v4) {
            return Err(EncodingError::Invalid {
                field: "mp_reach.nlri",
                reason: "prefixes must match the AFI (IPv4 or IPv6, unicast or multicast)",
            });
        }
        if self.family.afi == Afi::IPV6 && matches!(self.next_hop, MpNextHop::V4(_)) {
            return Err(EncodingError::Invalid {
                field: "mp_reach.next_hop",
                reason: "IPv6 NLRI needs an IPv6 next hop (RFC 2545 §3)",
            });
        }
        Ok(())
    }

    /// Appends the value.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.family.afi.0);
        buf.put_u8(self.family.safi.0);
        buf.put_u8(u8::try_from(self.next_hop.len()).unwrap_or(u8::MAX));
        self.next_hop.encode(buf);
        buf.put_u8(0);
        for n in &self.nlri {
            encode_prefix(n, buf);
        }
    }
}

impl MpUnreach {
    pub(crate) fn parse(value: &[u8]) -> Result<MpUnreach, MpError> {
        let (family, rest) = parse_family(value).ok_or(MpError::Malformed)?;
        if !decodable(family) {
            return Err(MpError::UnsupportedFamily(family));
        }
        Ok(MpUnreach {
            family,
            withdrawn: decode_prefixes(family.afi, rest)?,
        })
    }

    /// Value length on the wire.
    pub fn value_len(&self) -> usize {
        3 + self.withdrawn.iter().map(net_encoded_len).sum::<usize>()
    }

    pub(crate) fn check(&self) -> Result<(), EncodingError> {
        let v4 = self.family.afi == Afi::IPV4;
        if !decodable(self.family)
            || self
                .withdrawn
                .iter()
                .any(|n| matches!(n, IpNet::V4(_)) != v4)
        {
            return Err(EncodingError::Invalid {
                field: "mp_unreach.withdrawn",
                reason: "prefixes must match the AFI (IPv4 or IPv6, unicast or multicast)",
            });
        }
        Ok(())
    }

    /// Appends the value.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.family.afi.0);
        buf.put_u8(self.family.safi.0);
        for n in &self.withdrawn {
            encode_prefix(n, buf);
        }
    }
}
