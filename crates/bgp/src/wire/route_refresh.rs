//! ROUTE-REFRESH message (RFC 2918 §3, subtypes RFC 7313 §3.2).
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Subtype | SAFI |
//! +-------+-------+-------+-------+
//! ```

use bytes::{BufMut, BytesMut};

use super::error::{route_refresh_subcode, ErrorCode, MessageError};
use super::header::{encode_header, HEADER_LEN};
use super::iana::{Afi, MessageType, Safi};

/// Body length: always 4.
pub const BODY_LEN: usize = 4;

/// A ROUTE-REFRESH request (or, with RFC 7313, a BoRR/EoRR marker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RouteRefresh {
    /// Family to refresh.
    pub afi: Afi,
    /// Message subtype (RFC 7313 §3.2): 0 = normal request, 1 = BoRR, 2 = EoRR. The octet
    /// was "Reserved" in RFC 2918.
    pub subtype: u8,
    /// Family to refresh.
    pub safi: Safi,
}

impl RouteRefresh {
    /// A normal refresh request for a family.
    pub fn request(afi: Afi, safi: Safi) -> Self {
        RouteRefresh {
            afi,
            subtype: 0,
            safi,
        }
    }

    /// Decodes the body.
    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        match body {
            [a, b, subtype, safi] => Ok(RouteRefresh {
                afi: Afi(u16::from_be_bytes([*a, *b])),
                subtype: *subtype,
                safi: Safi(*safi),
            }),
            _ => {
                // RFC 7313 §5: "The Data field of the NOTIFICATION message MUST contain the
                // complete ROUTE-REFRESH message."
                let total = body.len() + HEADER_LEN;
                let mut data = BytesMut::with_capacity(total);
                encode_header(
                    u16::try_from(total).unwrap_or(u16::MAX),
                    MessageType::ROUTE_REFRESH,
                    &mut data,
                );
                data.put_slice(body);
                Err(MessageError::new(
                    ErrorCode::ROUTE_REFRESH,
                    route_refresh_subcode::INVALID_MESSAGE_LENGTH,
                    data.to_vec(),
                    "route_refresh.length",
                    "ROUTE-REFRESH body must be 4 octets",
                ))
            }
        }
    }

    /// Appends the body.
    pub fn encode_body(&self, buf: &mut BytesMut) {
        buf.put_u16(self.afi.0);
        buf.put_u8(self.subtype);
        buf.put_u8(self.safi.0);
    }
}
