//! Capabilities carried in the OPEN Capabilities optional parameter (RFC 5492 §4).
//!
//! ```text
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```
//! Known capabilities are typed; anything else stays raw in [`Capability::Unknown`].

use bytes::{BufMut, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::Parser;

use super::error::{open_subcode, EncodingError, ErrorCode, MessageError};
use super::iana::{Afi, CapabilityCode, Safi};
use super::Family;

/// One capability (RFC 5492).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Capability {
    /// Multiprotocol Extensions (code 1, RFC 4760 §8): `AFI (2) | Reserved (1) | SAFI (1)`.
    Multiprotocol(Family),
    /// Route Refresh (code 2, RFC 2918 §2): empty value.
    RouteRefresh,
    /// Extended Message (code 6, RFC 8654 §3): empty value.
    ExtendedMessage,
    /// Graceful Restart (code 64, RFC 4724 §3).
    GracefulRestart(GracefulRestart),
    /// Support for 4-octet AS numbers (code 65, RFC 6793 §3): the speaker's ASN.
    FourOctetAs(u32),
    /// FQDN (code 73, draft-walton-bgp-hostname-capability):
    /// `Hostname Len (1) | Hostname | Domain Name Len (1) | Domain Name`.
    Fqdn {
        /// Host name, UTF-8.
        hostname: String,
        /// Domain name, UTF-8, often empty.
        domain: String,
    },
    /// Any other capability, kept as received (RFC 5492 §3: unknown ones are ignored, not
    /// refused).
    Unknown {
        /// Capability code.
        code: CapabilityCode,
        /// Raw value.
        value: Vec<u8>,
    },
}

/// The Graceful Restart capability value (RFC 4724 §3, RFC 8538 §2 for the N bit).
///
/// ```text
/// +--------------------------------------------------+
/// | Restart Flags (4 bits) | Restart Time (12 bits)  |
/// +--------------------------------------------------+
/// | AFI (16 bits) | SAFI (8 bits) | Flags for AFI/SAFI (8 bits) |  repeated
/// +--------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GracefulRestart {
    /// The 4 restart flag bits, in the low nibble: 0x8 = R (Restart State), 0x4 = N
    /// (Notification, RFC 8538).
    pub restart_flags: u8,
    /// Restart time in seconds, 0..=4095.
    pub restart_time: u16,
    /// Per-family entries.
    pub families: Vec<GracefulRestartFamily>,
}

impl GracefulRestart {
    /// R bit: the speaker has restarted (RFC 4724 §3).
    pub const RESTART_STATE: u8 = 0x8;
    /// N bit: the speaker supports Graceful NOTIFICATION (RFC 8538 §2).
    pub const NOTIFICATION: u8 = 0x4;
}

/// One AFI/SAFI entry of the Graceful Restart capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GracefulRestartFamily {
    /// The family.
    pub family: Family,
    /// Per-family flags: 0x80 = F (forwarding state preserved).
    pub flags: u8,
}

impl GracefulRestartFamily {
    /// F bit: forwarding state was preserved (RFC 4724 §3).
    pub const FORWARDING_STATE: u8 = 0x80;
}

impl Capability {
    /// The capability code on the wire.
    pub fn code(&self) -> CapabilityCode {
        match self {
            Capability::Multiprotocol(_) => CapabilityCode::MULTIPROTOCOL,
            Capability::RouteRefresh => CapabilityCode::ROUTE_REFRESH,
            Capability::ExtendedMessage => CapabilityCode::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => CapabilityCode::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => CapabilityCode::FOUR_OCTET_AS,
            Capability::Fqdn { .. } => CapabilityCode::FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Length of the value (without code and length octets).
    pub fn value_len(&self) -> usize {
        match self {
            Capability::Multiprotocol(_) => 4,
            Capability::RouteRefresh | Capability::ExtendedMessage => 0,
            Capability::GracefulRestart(gr) => 2 + 4 * gr.families.len(),
            Capability::FourOctetAs(_) => 4,
            Capability::Fqdn { hostname, domain } => 2 + hostname.len() + domain.len(),
            Capability::Unknown { value, .. } => value.len(),
        }
    }

    /// Length on the wire: code, length and value.
    pub fn encoded_len(&self) -> usize {
        2 + self.value_len()
    }

    /// Checks that the value fits its one-octet length field and each sub-field fits.
    pub fn check_encodable(&self) -> Result<(), EncodingError> {
        if self.value_len() > 255 {
            return Err(EncodingError::TooLong {
                field: "capability.value",
                actual: self.value_len(),
                max: 255,
            });
        }
        match self {
            Capability::GracefulRestart(gr) => {
                if gr.restart_time > 0x0fff {
                    return Err(EncodingError::TooLong {
                        field: "graceful_restart.restart_time",
                        actual: usize::from(gr.restart_time),
                        max: 0x0fff,
                    });
                }
                if gr.restart_flags > 0x0f {
                    return Err(EncodingError::Invalid {
                        field: "graceful_restart.restart_flags",
                        reason: "only 4 flag bits exist",
                    });
                }
            }
            Capability::Fqdn { hostname, domain } => {
                for (field, s) in [("fqdn.hostname", hostname), ("fqdn.domain", domain)] {
                    if s.len() > 255 {
                        return Err(EncodingError::TooLong {
                            field,
                            actual: s.len(),
                            max: 255,
                        });
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Appends code, length and value. Call [`Capability::check_encodable`] first; lengths
    /// that do not fit are truncated to their field width otherwise.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u8(self.code().0);
        buf.put_u8(u8::try_from(self.value_len()).unwrap_or(u8::MAX));
        match self {
            Capability::Multiprotocol(f) => {
                buf.put_u16(f.afi.0);
                buf.put_u8(0);
                buf.put_u8(f.safi.0);
            }
            Capability::RouteRefresh | Capability::ExtendedMessage => {}
            Capability::GracefulRestart(gr) => {
                buf.put_u16(
                    (u16::from(gr.restart_flags & 0x0f) << 12) | (gr.restart_time & 0x0fff),
                );
                for f in &gr.families {
                    buf.put_u16(f.family.afi.0);
                    buf.put_u8(f.family.safi.0);
                    buf.put_u8(f.flags);
                }
            }
            Capability::FourOctetAs(asn) => buf.put_u32(*asn),
            Capability::Fqdn { hostname, domain } => {
                buf.put_u8(u8::try_from(hostname.len()).unwrap_or(u8::MAX));
                buf.put_slice(hostname.as_bytes());
                buf.put_u8(u8::try_from(domain.len()).unwrap_or(u8::MAX));
                buf.put_slice(domain.as_bytes());
            }
            Capability::Unknown { value, .. } => buf.put_slice(value),
        }
    }
}

fn malformed(reason: &'static str) -> MessageError {
    // RFC 4271 §6.2: "If one of the Optional Parameters in the OPEN message is recognized, but
    // is malformed, then the Error Subcode MUST be set to 0 (Unspecific)."
    MessageError::new(
        ErrorCode::OPEN_MESSAGE,
        open_subcode::UNSPECIFIC,
        Vec::new(),
        "open.capability",
        reason,
    )
}

type Res<'a, T> = nom::IResult<&'a [u8], T, ()>;

fn parse_family(input: &[u8]) -> Res<'_, (Family, u8)> {
    let (input, afi) = be_u16(input)?;
    let (input, safi) = be_u8(input)?;
    let (input, flags) = be_u8(input)?;
    Ok((
        input,
        (
            Family {
                afi: Afi(afi),
                safi: Safi(safi),
            },
            flags,
        ),
    ))
}

fn parse_length_prefixed_str(input: &[u8]) -> Res<'_, &[u8]> {
    let (input, len) = be_u8(input)?;
    take(len).parse(input)
}

/// Parses one capability value of a known code; `None` means the value is malformed.
fn parse_value(code: CapabilityCode, value: &[u8]) -> Result<Capability, MessageError> {
    let cap = match code {
        CapabilityCode::MULTIPROTOCOL => match value {
            // RFC 4760 §8: AFI, one reserved octet (ignored on receipt), SAFI.
            [a, b, _reserved, safi] => Capability::Multiprotocol(Family {
                afi: Afi(u16::from_be_bytes([*a, *b])),
                safi: Safi(*safi),
            }),
            _ => return Err(malformed("Multiprotocol capability length is not 4")),
        },
        CapabilityCode::ROUTE_REFRESH if value.is_empty() => Capability::RouteRefresh,
        CapabilityCode::ROUTE_REFRESH => {
            return Err(malformed("Route Refresh capability length is not 0"))
        }
        CapabilityCode::EXTENDED_MESSAGE if value.is_empty() => Capability::ExtendedMessage,
        CapabilityCode::EXTENDED_MESSAGE => {
            return Err(malformed("Extended Message capability length is not 0"))
        }
        CapabilityCode::FOUR_OCTET_AS => match be_u32::<_, ()>(value) {
            Ok(([], asn)) => Capability::FourOctetAs(asn),
            _ => return Err(malformed("4-octet AS capability length is not 4")),
        },
        CapabilityCode::GRACEFUL_RESTART => {
            // RFC 4724 §3: 2 octets, then 4 per family.
            let Ok((mut rest, head)) = be_u16::<_, ()>(value) else {
                return Err(malformed(
                    "Graceful Restart capability shorter than 2 octets",
                ));
            };
            if rest.len() % 4 != 0 {
                return Err(malformed(
                    "Graceful Restart family list is not a multiple of 4",
                ));
            }
            let mut families = Vec::with_capacity(rest.len() / 4);
            while let Ok((next, (family, flags))) = parse_family(rest) {
                families.push(GracefulRestartFamily { family, flags });
                rest = next;
            }
            Capability::GracefulRestart(GracefulRestart {
                restart_flags: u8::try_from(head >> 12).unwrap_or(0),
                restart_time: head & 0x0fff,
                families,
            })
        }
        CapabilityCode::FQDN => {
            let parsed = (parse_length_prefixed_str, parse_length_prefixed_str).parse(value);
            match parsed {
                Ok(([], (host, domain))) => {
                    match (std::str::from_utf8(host), std::str::from_utf8(domain)) {
                        (Ok(h), Ok(d)) => Capability::Fqdn {
                            hostname: h.to_owned(),
                            domain: d.to_owned(),
                        },
                        // The hostname is informational: keep a non-UTF-8 one raw rather than
                        // refuse the session over it.
                        _ => Capability::Unknown {
                            code,
                            value: value.to_vec(),
                        },
                    }
                }
                _ => return Err(malformed("FQDN capability lengths are inconsistent")),
            }
        }
        _ => Capability::Unknown {
            code,
            value: value.to_vec(),
        },
    };
    Ok(cap)
}

/// Parses the value of a Capabilities optional parameter: a sequence of capability TLVs, each
/// confined to its own length (RFC 5492 §4). Appends to `out`.
pub fn parse_capabilities(mut input: &[u8], out: &mut Vec<Capability>) -> Result<(), MessageError> {
    // Each TLV consumes at least 2 octets, so this loop runs at most input.len() / 2 times.
    while !input.is_empty() {
        let parsed: Res<'_, (u8, &[u8])> = (be_u8, parse_length_prefixed_str).parse(input);
        let Ok((rest, (code, value))) = parsed else {
            return Err(malformed("capability length overruns the parameter"));
        };
        out.push(parse_value(CapabilityCode(code), value)?);
        input = rest;
    }
    Ok(())
}
