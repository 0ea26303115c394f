//! OPEN message (RFC 4271 §4.2) with RFC 9072 extended optional parameters length.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! RFC 9072 §2: Opt Parm Len 255 followed by a parameter type 255 means a 2-octet Extended
//! Opt. Parm. Length follows, and each parameter then has a 2-octet length.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, be_u8};
use nom::Parser;

use super::capability::{parse_capabilities, Capability};
use super::error::{open_subcode, EncodingError, ErrorCode, MessageError};
use super::iana::{ParamType, AS_TRANS};

/// The BGP version we speak (RFC 4271 §4.2).
pub const BGP_VERSION: u8 = 4;

/// A hold time in seconds: 0 (no keepalives) or at least 3 (RFC 4271 §4.2, "MUST be either
/// zero or at least three seconds").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(transparent))]
pub struct HoldTime(u16);

impl HoldTime {
    /// Hold time 0: the session runs without keepalives and hold timer.
    pub const ZERO: HoldTime = HoldTime(0);
    /// The RFC 4271 §10 suggested default, 90 seconds.
    pub const DEFAULT: HoldTime = HoldTime(90);

    /// Checks the RFC rule: 1 and 2 are refused.
    pub fn new(seconds: u16) -> Result<Self, EncodingError> {
        if seconds == 1 || seconds == 2 {
            Err(EncodingError::Invalid {
                field: "open.hold_time",
                reason: "hold time must be 0 or at least 3 seconds (RFC 4271 §4.2)",
            })
        } else {
            Ok(HoldTime(seconds))
        }
    }

    /// The hold time in seconds.
    pub fn seconds(self) -> u16 {
        self.0
    }
}

/// An OPEN message. Optional parameters other than Capabilities are refused at decode time
/// (2/4), so the capabilities are all there is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Open {
    /// Protocol version, 4.
    pub version: u8,
    /// My Autonomous System as on the wire: the ASN, or AS_TRANS (23456) when it needs 4
    /// octets (RFC 6793 §4.1). Use [`Open::asn`] for the real ASN.
    pub my_as: u16,
    /// Proposed hold time.
    pub hold_time: HoldTime,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in wire order, flattened across Capabilities parameters.
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for `asn`: My AS is AS_TRANS when `asn` needs 4 octets, and the 4-octet AS
    /// capability carrying `asn` is added if `capabilities` lacks it (RFC 6793 §3, §4.1).
    pub fn new(
        asn: u32,
        hold_time: HoldTime,
        bgp_id: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Self {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            version: BGP_VERSION,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The speaker's ASN: from the 4-octet AS capability if present, else My AS.
    pub fn asn(&self) -> u32 {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(asn) => Some(*asn),
                _ => None,
            })
            .unwrap_or(u32::from(self.my_as))
    }

    fn params_len(&self) -> usize {
        // Each capability in its own Capabilities parameter: type, length, capability.
        self.capabilities.iter().map(|c| 2 + c.encoded_len()).sum()
    }

    fn uses_extended_params(&self) -> bool {
        // RFC 9072 §2: only when the parameters do not fit the 1-octet length fields.
        self.params_len() > 255 || self.capabilities.iter().any(|c| c.encoded_len() > 255)
    }

    /// Body length on the wire.
    pub fn body_len(&self) -> usize {
        if self.uses_extended_params() {
            // Extended: 3 extra octets (255, 255, 2-octet length) and one more per parameter.
            10 + 3 + self.params_len() + self.capabilities.len()
        } else {
            10 + self.params_len()
        }
    }

    /// Checks every capability and the total parameter length.
    pub fn check_encodable(&self) -> Result<(), EncodingError> {
        for c in &self.capabilities {
            c.check_encodable()?;
        }
        let total = self.params_len() + self.capabilities.len();
        if total > usize::from(u16::MAX) {
            return Err(EncodingError::TooLong {
                field: "open.optional_parameters",
                actual: total,
                max: usize::from(u16::MAX),
            });
        }
        Ok(())
    }

    /// Appends the body. Call [`Open::check_encodable`] first.
    pub fn encode_body(&self, buf: &mut BytesMut) {
        buf.put_u8(self.version);
        buf.put_u16(self.my_as);
        buf.put_u16(self.hold_time.0);
        buf.put_slice(&self.bgp_id.octets());
        if self.uses_extended_params() {
            buf.put_u8(255);
            buf.put_u8(ParamType::EXTENDED_LENGTH.0);
            let total = self.params_len() + self.capabilities.len();
            buf.put_u16(u16::try_from(total).unwrap_or(u16::MAX));
            for c in &self.capabilities {
                buf.put_u8(ParamType::CAPABILITIES.0);
                buf.put_u16(u16::try_from(c.encoded_len()).unwrap_or(u16::MAX));
                c.encode(buf);
            }
        } else {
            buf.put_u8(u8::try_from(self.params_len()).unwrap_or(u8::MAX));
            for c in &self.capabilities {
                buf.put_u8(ParamType::CAPABILITIES.0);
                buf.put_u8(u8::try_from(c.encoded_len()).unwrap_or(u8::MAX));
                c.encode(buf);
            }
        }
    }

    /// Decodes an OPEN body (RFC 4271 §6.2 checks included).
    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        type Res<'a, T> = nom::IResult<&'a [u8], T, ()>;
        let fixed: Res<'_, (u8, u16, u16, u32, u8)> =
            (be_u8, be_u16, be_u16, be_u32, be_u8).parse(body);
        let Ok((rest, (version, my_as, hold, bgp_id, opt_len))) = fixed else {
            return Err(unspecific("open", "OPEN shorter than its fixed fields"));
        };
        if version != BGP_VERSION {
            // RFC 4271 §6.2: "The Data field is a 2-octet unsigned integer, which indicates the
            // largest, locally-supported version number less than the version the remote BGP
            // peer bid".
            return Err(MessageError::new(
                ErrorCode::OPEN_MESSAGE,
                open_subcode::UNSUPPORTED_VERSION_NUMBER,
                u16::from(BGP_VERSION).to_be_bytes(),
                "open.version",
                "only BGP version 4 is supported",
            ));
        }
        if my_as == 0 {
            // RFC 7607 §2: AS 0 in My Autonomous System is answered with 2/2 Bad Peer AS.
            return Err(MessageError::new(
                ErrorCode::OPEN_MESSAGE,
                open_subcode::BAD_PEER_AS,
                Vec::new(),
                "open.my_as",
                "AS 0 is reserved (RFC 7607)",
            ));
        }
        let Ok(hold_time) = HoldTime::new(hold) else {
            // RFC 4271 §6.2: "An implementation MUST reject Hold Time values of one or two
            // seconds."
            return Err(MessageError::new(
                ErrorCode::OPEN_MESSAGE,
                open_subcode::UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
                "open.hold_time",
                "hold time 1 or 2 seconds",
            ));
        };
        if bgp_id == 0 {
            // RFC 6286 §2.2: the identifier is a non-zero 4-octet value.
            return Err(MessageError::new(
                ErrorCode::OPEN_MESSAGE,
                open_subcode::BAD_BGP_IDENTIFIER,
                Vec::new(),
                "open.bgp_id",
                "BGP Identifier is zero",
            ));
        }
        let mut capabilities = Vec::new();
        // RFC 9072 §2: "if the one-octet 'Non-Ext OP Len' field is non-zero, a BGP speaker MUST
        // use the value of the octet following" it to pick the encoding: 255 means the 2-octet
        // Extended Opt. Parm. Length follows (senders put 255 in Non-Ext OP Len, receivers do
        // not rely on it).
        let extended = opt_len != 0 && rest.first() == Some(&ParamType::EXTENDED_LENGTH.0);
        let (params, wide) = if extended {
            let parsed: Res<'_, u16> = be_u16(rest.get(1..).unwrap_or_default());
            match parsed {
                Ok((params, len)) if params.len() == usize::from(len) => (params, true),
                Ok((params, len)) if params.len() < usize::from(len) => return Err(overrun(body)),
                _ => {
                    return Err(unspecific(
                        "open.optional_parameters_length",
                        "extended parameters length does not match the message",
                    ))
                }
            }
        } else if rest.len() == usize::from(opt_len) {
            (rest, false)
        } else if rest.len() < usize::from(opt_len) {
            return Err(overrun(body));
        } else {
            // Octets after the parameters: the parameters themselves may be well-formed, so
            // this is the "malformed" case of RFC 4271 §6.2, subcode 0.
            return Err(unspecific(
                "open.optional_parameters_length",
                "parameters length does not match the message",
            ));
        };
        let mut input = params;
        // Each parameter consumes at least 2 octets: bounded by the parameter block length.
        while !input.is_empty() {
            let parsed: Res<'_, (u8, &[u8])> = if wide {
                (be_u8, be_u16.flat_map(take)).parse(input)
            } else {
                (be_u8, be_u8.flat_map(take)).parse(input)
            };
            let Ok((next, (param_type, value))) = parsed else {
                return Err(unspecific(
                    "open.optional_parameters",
                    "parameter length overruns the parameters",
                ));
            };
            if param_type != ParamType::CAPABILITIES.0 {
                // RFC 4271 §6.2: "If one of the Optional Parameters in the OPEN message is not
                // recognized, then the Error Subcode MUST be set to Unsupported Optional
                // Parameters."
                return Err(MessageError::new(
                    ErrorCode::OPEN_MESSAGE,
                    open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                    "open.optional_parameters.type",
                    "only the Capabilities parameter (2) is supported",
                ));
            }
            parse_capabilities(value, &mut capabilities)?;
            input = next;
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from(bgp_id),
            capabilities,
        })
    }
}

/// The Optional Parameters Length says more octets follow than the message holds: 1/2 Bad
/// Message Length with the Length field as data. RFC 4271 §6.1: "if the Length field of an
/// OPEN message is less than the minimum length of the OPEN message ... the Error Subcode MUST
/// be set to Bad Message Length. The Data field MUST contain the erroneous Length field."
/// The minimum length of this OPEN is its fixed part plus the parameters it declares, so the
/// Length field is short of it; that names the error more precisely than §6.2's 2/0
/// (Unspecific), which is for a recognised parameter that is malformed.
fn overrun(body: &[u8]) -> MessageError {
    let length = u16::try_from(super::HEADER_LEN + body.len()).unwrap_or(u16::MAX);
    MessageError::new(
        ErrorCode::MESSAGE_HEADER,
        super::error::header_subcode::BAD_MESSAGE_LENGTH,
        length.to_be_bytes(),
        "open.optional_parameters_length",
        "the parameters length runs past the end of the message",
    )
}

fn unspecific(field: &'static str, reason: &'static str) -> MessageError {
    MessageError::new(
        ErrorCode::OPEN_MESSAGE,
        open_subcode::UNSPECIFIC,
        Vec::new(),
        field,
        reason,
    )
}
