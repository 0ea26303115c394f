//! COMMUNITIES (type 8, RFC 1997), EXTENDED COMMUNITIES (type 16, RFC 4360) and
//! LARGE_COMMUNITY (type 32, RFC 8092): lists of fixed-size values.
//!
//! ```text
//! COMMUNITIES:           | AS (2) | value (2) |                      repeated, 4 octets each
//! EXTENDED COMMUNITIES:  | type (1) | sub-type (1) | value (6) |     repeated, 8 octets each
//! LARGE_COMMUNITY:       | Global Admin (4) | Local 1 (4) | Local 2 (4) |  12 octets each
//! ```

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::wire::iana::AS_TRANS;

/// A standard community (RFC 1997).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(transparent))]
pub struct Community(pub u32);

impl Community {
    /// GRACEFUL_SHUTDOWN (RFC 8326).
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// ACCEPT_OWN (RFC 7611).
    pub const ACCEPT_OWN: Community = Community(0xFFFF_0001);
    /// LLGR_STALE (RFC 9494).
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    /// NO_LLGR (RFC 9494).
    pub const NO_LLGR: Community = Community(0xFFFF_0007);
    /// BLACKHOLE (RFC 7999).
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);
    /// NO_EXPORT (RFC 1997): not outside the AS (confederation).
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    /// NO_ADVERTISE (RFC 1997): to no peer.
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    /// NO_EXPORT_SUBCONFED (RFC 1997): not to external peers.
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// NOPEER (RFC 3765).
    pub const NO_PEER: Community = Community(0xFFFF_FF04);

    /// `asn:value`.
    pub fn new(asn: u16, value: u16) -> Self {
        Community((u32::from(asn) << 16) | u32::from(value))
    }

    /// The well-known name, if this is a well-known community.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Community::GRACEFUL_SHUTDOWN => "GRACEFUL_SHUTDOWN",
            Community::ACCEPT_OWN => "ACCEPT_OWN",
            Community::LLGR_STALE => "LLGR_STALE",
            Community::NO_LLGR => "NO_LLGR",
            Community::BLACKHOLE => "BLACKHOLE",
            Community::NO_EXPORT => "NO_EXPORT",
            Community::NO_ADVERTISE => "NO_ADVERTISE",
            Community::NO_EXPORT_SUBCONFED => "NO_EXPORT_SUBCONFED",
            Community::NO_PEER => "NOPEER",
            _ => return None,
        })
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff),
        }
    }
}

impl fmt::Debug for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// RFC 4360 §2: the T bit of the type octet; set means non-transitive.
const NON_TRANSITIVE_BIT: u8 = 0x40;
/// Two-octet-AS specific extended community, transitive (RFC 4360 §3.1).
const LINK_BANDWIDTH_TYPE: u8 = 0x00;
/// The link bandwidth sub-type (draft-ietf-idr-link-bandwidth §3; IANA "Two-Octet AS-Specific
/// Extended Community Sub-Types").
pub const LINK_BANDWIDTH_SUB_TYPE: u8 = 0x04;

/// An extended community (RFC 4360 §2), kept as its 8 octets; type and sub-type are the
/// first two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(transparent))]
pub struct ExtendedCommunity(pub [u8; 8]);

impl ExtendedCommunity {
    /// Two-octet-AS route target (type 0x00, sub-type 0x02; RFC 4360 §4).
    pub fn route_target(asn: u16, value: u32) -> Self {
        let [a, b] = asn.to_be_bytes();
        let [c, d, e, f] = value.to_be_bytes();
        ExtendedCommunity([0x00, 0x02, a, b, c, d, e, f])
    }

    /// Link bandwidth (draft-ietf-idr-link-bandwidth §3): two-octet-AS specific, sub-type
    /// 0x04, the AS in the global administrator field and the bandwidth of the link to the
    /// next hop, in bytes per second, as an IEEE 754 single-precision float in the local
    /// administrator field.
    ///
    /// Encoded as FRR's `set extcommunity bandwidth` does by default: transitive (type 0x00;
    /// the draft's original non-transitive type 0x40 would be dropped at the first eBGP hop
    /// by some implementations), and an AS that needs four octets replaced by AS_TRANS
    /// (RFC 6793 §9), since the field holds only two. A negative, NaN or infinite bandwidth
    /// is sent as 0, which receivers read as "no bandwidth".
    pub fn link_bandwidth(asn: u32, bytes_per_second: f32) -> Self {
        let [a, b] = u16::try_from(asn).unwrap_or(AS_TRANS).to_be_bytes();
        let value = if bytes_per_second.is_finite() && bytes_per_second > 0.0 {
            bytes_per_second
        } else {
            0.0
        };
        let [c, d, e, f] = value.to_bits().to_be_bytes();
        ExtendedCommunity([
            LINK_BANDWIDTH_TYPE,
            LINK_BANDWIDTH_SUB_TYPE,
            a,
            b,
            c,
            d,
            e,
            f,
        ])
    }

    /// The (AS, bytes per second) of a link bandwidth community, transitive (type 0x00) or
    /// non-transitive (0x40), or `None` for any other extended community.
    pub fn as_link_bandwidth(self) -> Option<(u16, f32)> {
        let [t, sub, a, b, c, d, e, f] = self.0;
        ((t & !NON_TRANSITIVE_BIT) == LINK_BANDWIDTH_TYPE && sub == LINK_BANDWIDTH_SUB_TYPE).then(
            || {
                (
                    u16::from_be_bytes([a, b]),
                    f32::from_bits(u32::from_be_bytes([c, d, e, f])),
                )
            },
        )
    }

    /// The type octet (high-order).
    pub fn type_high(self) -> u8 {
        self.0[0]
    }

    /// The sub-type octet.
    pub fn sub_type(self) -> u8 {
        self.0[1]
    }
}

/// A large community (RFC 8092 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct LargeCommunity {
    /// Global Administrator: the ASN that defines the meaning.
    pub global_admin: u32,
    /// Local Data Part 1.
    pub local_data_1: u32,
    /// Local Data Part 2.
    pub local_data_2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.global_admin, self.local_data_1, self.local_data_2
        )
    }
}

/// Parses COMMUNITIES; `None` if the length is not a non-zero multiple of 4 (RFC 7606 §7.8).
pub fn parse_communities(value: &[u8]) -> Option<Vec<Community>> {
    if value.is_empty() || !value.len().is_multiple_of(4) {
        return None;
    }
    Some(
        value
            .chunks_exact(4)
            .filter_map(|c| c.try_into().ok().map(u32::from_be_bytes).map(Community))
            .collect(),
    )
}

/// Parses EXTENDED COMMUNITIES; `None` if the length is not a non-zero multiple of 8
/// (RFC 7606 §7.14).
pub fn parse_extended_communities(value: &[u8]) -> Option<Vec<ExtendedCommunity>> {
    if value.is_empty() || !value.len().is_multiple_of(8) {
        return None;
    }
    Some(
        value
            .chunks_exact(8)
            .filter_map(|c| c.try_into().ok().map(ExtendedCommunity))
            .collect(),
    )
}

/// Parses LARGE_COMMUNITY; `None` if the length is not a non-zero multiple of 12
/// (RFC 8092 §5).
pub fn parse_large_communities(value: &[u8]) -> Option<Vec<LargeCommunity>> {
    if value.is_empty() || !value.len().is_multiple_of(12) {
        return None;
    }
    Some(
        value
            .chunks_exact(12)
            .filter_map(|c| match c {
                [a, b, c, d, e, f, g, h, i, j, k, l] => Some(LargeCommunity {
                    global_admin: u32::from_be_bytes([*a, *b, *c, *d]),
                    local_data_1: u32::from_be_bytes([*e, *f, *g, *h]),
                    local_data_2: u32::from_be_bytes([*i, *j, *k, *l]),
                }),
                _ => None,
            })
            .collect(),
    )
}

/// Appends COMMUNITIES values.
pub fn encode_communities(list: &[Community], buf: &mut BytesMut) {
    for c in list {
        buf.put_u32(c.0);
    }
}

/// Appends EXTENDED COMMUNITIES values.
pub fn encode_extended_communities(list: &[ExtendedCommunity], buf: &mut BytesMut) {
    for c in list {
        buf.put_slice(&c.0);
    }
}

/// Appends LARGE_COMMUNITY values.
pub fn encode_large_communities(list: &[LargeCommunity], buf: &mut BytesMut) {
    for c in list {
        buf.put_u32(c.global_admin);
        buf.put_u32(c.local_data_1);
        buf.put_u32(c.local_data_2);
    }
}
