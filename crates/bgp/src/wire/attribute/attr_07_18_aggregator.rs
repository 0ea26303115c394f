//! AGGREGATOR (type 7, RFC 4271 §5.1.7) and AS4_AGGREGATOR (type 18, RFC 6793 §3).
//!
//! ```text
//! +------------------------------+------------------------+
//! | AS (2 octets, or 4 with the  | IP address (4 octets)  |
//! | 4-octet AS capability)       |                        |
//! +------------------------------+------------------------+
//! ```
//! AS4_AGGREGATOR always carries a 4-octet AS.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use crate::wire::iana::AS_TRANS;

/// The AS and router that aggregated the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Aggregator {
    /// The aggregating AS.
    pub asn: u32,
    /// The aggregating speaker's address.
    pub address: Ipv4Addr,
}

impl Aggregator {
    /// Value length with 2- or 4-octet AS.
    pub fn value_len(four_octet: bool) -> usize {
        if four_octet {
            8
        } else {
            6
        }
    }

    /// Parses a value; `None` for a wrong length (RFC 7606 §7.7: attribute discard).
    pub fn parse(value: &[u8], four_octet: bool) -> Option<Aggregator> {
        match (four_octet, value) {
            (true, [a, b, c, d, e, f, g, h]) => Some(Aggregator {
                asn: u32::from_be_bytes([*a, *b, *c, *d]),
                address: Ipv4Addr::new(*e, *f, *g, *h),
            }),
            (false, [a, b, e, f, g, h]) => Some(Aggregator {
                asn: u32::from(u16::from_be_bytes([*a, *b])),
                address: Ipv4Addr::new(*e, *f, *g, *h),
            }),
            _ => None,
        }
    }

    /// Appends the value.
    pub fn encode(&self, four_octet: bool, buf: &mut BytesMut) {
        if four_octet {
            buf.put_u32(self.asn);
        } else {
            buf.put_u16(u16::try_from(self.asn).unwrap_or(AS_TRANS));
        }
        buf.put_slice(&self.address.octets());
    }
}
