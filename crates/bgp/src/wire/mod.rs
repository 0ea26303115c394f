//! The BGP-4 message model and its pure decoder and encoder (RFC 4271 §4 plus extensions).
//!
//! No tokio and no sockets here: [`decode_message`] turns bytes into a [`Message`] (or the
//! [`Notification`] to send, inside a [`MessageError`]), [`Message::encode`] turns a message
//! into bytes. Both take a [`DecodeCtx`]: what the two OPENs negotiated.
//!
//! Layout: one module per message (`open`, `update`, `notification`, `route_refresh`), the
//! header checks (`header`), capabilities (`capability`), path attributes (`attribute/`),
//! prefixes (`nlri`), IANA spaces (`iana`) and errors (`error`).

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod attribute;
pub mod capability;
pub mod error;
pub mod header;
pub mod iana;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod route_refresh;
pub mod update;

use bytes::{Bytes, BytesMut};

pub use attribute::{
    Aggregator, AsPath, AsSegment, AsSegmentType, Community, ExtendedCommunity, LargeCommunity,
    MpNextHop, MpReach, MpUnreach, Origin, PathAttributes, RawAttribute,
};
pub use capability::{Capability, GracefulRestart, GracefulRestartFamily};
pub use error::{
    AttributeError, EncodingError, ErrorAction, ErrorCode, MessageError, ShutdownCommunicationError,
};
pub use header::{
    parse_header, Header, HEADER_LEN, MARKER, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN,
};
pub use iana::{Afi, AttrType, CapabilityCode, MessageType, Safi, AS_TRANS};
pub use notification::Notification;
pub use open::{HoldTime, Open};
pub use route_refresh::RouteRefresh;
pub use update::Update;

/// An address family: AFI and SAFI together (RFC 4760 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Family {
    /// Address Family Identifier.
    pub afi: Afi,
    /// Subsequent Address Family Identifier.
    pub safi: Safi,
}

impl Family {
    /// IPv4 unicast, the family a session without Multiprotocol capabilities carries.
    pub const IPV4_UNICAST: Family = Family {
        afi: Afi::IPV4,
        safi: Safi::UNICAST,
    };
    /// IPv6 unicast.
    pub const IPV6_UNICAST: Family = Family {
        afi: Afi::IPV6,
        safi: Safi::UNICAST,
    };
}

/// The set of families a session negotiated, restricted to the ones this crate can decode
/// (IPv4 and IPv6, unicast and multicast). A bit set, so [`DecodeCtx`] stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Families(u8);

impl Families {
    /// No family.
    pub const NONE: Families = Families(0);
    /// IPv4 unicast only: the implicit family of a session without MP capabilities (RFC 4760 §1).
    pub const IPV4_UNICAST: Families = Families(1);
    /// IPv4 and IPv6 unicast.
    pub const IPV4_IPV6_UNICAST: Families = Families(1 | 4);

    fn bit(family: Family) -> Option<u8> {
        match (family.afi, family.safi) {
            (Afi::IPV4, Safi::UNICAST) => Some(1),
            (Afi::IPV4, Safi::MULTICAST) => Some(2),
            (Afi::IPV6, Safi::UNICAST) => Some(4),
            (Afi::IPV6, Safi::MULTICAST) => Some(8),
            _ => None,
        }
    }

    /// Adds `family`; returns false (and adds nothing) for a family this crate cannot carry.
    pub fn insert(&mut self, family: Family) -> bool {
        match Self::bit(family) {
            Some(bit) => {
                self.0 |= bit;
                true
            }
            None => false,
        }
    }

    /// The families in both sets.
    pub fn intersection(self, other: Families) -> Families {
        Families(self.0 & other.0)
    }

    /// Whether `family` is in the set.
    pub fn contains(self, family: Family) -> bool {
        Self::bit(family).is_some_and(|bit| self.0 & bit != 0)
    }

    /// The families in the set, in a fixed order.
    pub fn iter(self) -> impl Iterator<Item = Family> {
        [
            Family::IPV4_UNICAST,
            Family {
                afi: Afi::IPV4,
                safi: Safi::MULTICAST,
            },
            Family::IPV6_UNICAST,
            Family {
                afi: Afi::IPV6,
                safi: Safi::MULTICAST,
            },
        ]
        .into_iter()
        .filter(move |f| self.contains(*f))
    }
}

/// What the OPEN exchange negotiated, which changes how messages are decoded and encoded.
///
/// [`DecodeCtx::default`] is the state before the OPENs: 2-octet AS numbers, 4096-octet
/// messages, IPv4 unicast. After the exchange build it with [`DecodeCtx::negotiate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DecodeCtx {
    /// Both sides sent the 4-octet AS capability (RFC 6793 §3): AS_PATH and AGGREGATOR carry
    /// 4-octet AS numbers.
    pub four_octet_as: bool,
    /// Both sides sent the Extended Message capability (RFC 8654 §3): messages other than OPEN
    /// and KEEPALIVE may be up to 65535 octets.
    pub extended_message: bool,
    /// Families both sides announced (RFC 4760 §8), or IPv4 unicast if neither sent any.
    pub families: Families,
}

/// The encoder takes the same negotiated context as the decoder.
pub type EncodeCtx = DecodeCtx;

impl Default for DecodeCtx {
    fn default() -> Self {
        DecodeCtx {
            four_octet_as: false,
            extended_message: false,
            families: Families::IPV4_UNICAST,
        }
    }
}

impl DecodeCtx {
    /// A context for a modern peer: 4-octet AS, no extended messages, IPv4 and IPv6 unicast.
    pub fn modern() -> Self {
        DecodeCtx {
            four_octet_as: true,
            extended_message: false,
            families: Families::IPV4_IPV6_UNICAST,
        }
    }

    /// The context after the OPEN exchange: a feature is on only if both sides announced it.
    /// Families are the intersection of both sides' Multiprotocol capabilities, where a side
    /// without any carries IPv4 unicast only (RFC 4760 §8, RFC 5492 §3).
    pub fn negotiate(local: &Open, remote: &Open) -> Self {
        let has =
            |open: &Open, code: CapabilityCode| open.capabilities.iter().any(|c| c.code() == code);
        let families_of = |open: &Open| {
            let mut set = Families::NONE;
            let mut any = false;
            for c in &open.capabilities {
                if let Capability::Multiprotocol(f) = c {
                    any = true;
                    set.insert(*f);
                }
            }
            if any {
                set
            } else {
                Families::IPV4_UNICAST
            }
        };
        DecodeCtx {
            four_octet_as: has(local, CapabilityCode::FOUR_OCTET_AS)
                && has(remote, CapabilityCode::FOUR_OCTET_AS),
            extended_message: has(local, CapabilityCode::EXTENDED_MESSAGE)
                && has(remote, CapabilityCode::EXTENDED_MESSAGE),
            families: families_of(local).intersection(families_of(remote)),
        }
    }

    /// The largest UPDATE (and NOTIFICATION, ROUTE-REFRESH) this context allows.
    pub fn max_message_len(&self) -> usize {
        header::max_len(MessageType::UPDATE, self)
    }
}

/// A BGP message (RFC 4271 §4): plain data.
// UPDATE is the common message; boxing it would cost an allocation per UPDATE to save a few
// bytes on the rare KEEPALIVE.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Message {
    /// OPEN (RFC 4271 §4.2).
    Open(Open),
    /// UPDATE (RFC 4271 §4.3).
    Update(Update),
    /// NOTIFICATION (RFC 4271 §4.5).
    Notification(Notification),
    /// KEEPALIVE (RFC 4271 §4.4): a header alone.
    Keepalive,
    /// ROUTE-REFRESH (RFC 2918 §3, RFC 7313 §3.2).
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The type code in the header.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::OPEN,
            Message::Update(_) => MessageType::UPDATE,
            Message::Notification(_) => MessageType::NOTIFICATION,
            Message::Keepalive => MessageType::KEEPALIVE,
            Message::RouteRefresh(_) => MessageType::ROUTE_REFRESH,
        }
    }

    /// The encoded length, header included, exactly as [`Message::encode`] writes it. Does not
    /// check limits; `encode` does.
    pub fn encoded_len(&self, ctx: &EncodeCtx) -> usize {
        HEADER_LEN
            + match self {
                Message::Open(open) => open.body_len(),
                Message::Update(update) => update.body_len(ctx),
                Message::Notification(n) => n.body_len(),
                Message::Keepalive => 0,
                Message::RouteRefresh(_) => route_refresh::BODY_LEN,
            }
    }

    /// Appends the whole message (header included) to `buf`, or fails without writing a
    /// partial message if a field or the total exceeds what the wire (under `ctx`) allows.
    pub fn encode(&self, ctx: &EncodeCtx, buf: &mut BytesMut) -> Result<(), EncodingError> {
        let message_type = self.message_type();
        let total = self.encoded_len(ctx);
        let max = header::max_len(message_type, ctx);
        if total > max {
            return Err(EncodingError::TooLong {
                field: "message",
                actual: total,
                max,
            });
        }
        // Validate fields before writing anything, so a refusal leaves `buf` untouched.
        match self {
            Message::Open(open) => open.check_encodable()?,
            Message::Update(update) => update.check_encodable(ctx)?,
            _ => {}
        }
        let length = u16::try_from(total).map_err(|_| EncodingError::TooLong {
            field: "message",
            actual: total,
            max,
        })?;
        buf.reserve(total);
        header::encode_header(length, message_type, buf);
        match self {
            Message::Open(open) => open.encode_body(buf),
            Message::Update(update) => update.encode_body(ctx, buf),
            Message::Notification(n) => n.encode_body(buf),
            Message::Keepalive => {}
            Message::RouteRefresh(rr) => rr.encode_body(buf),
        }
        Ok(())
    }

    /// The encoded message as a fresh buffer.
    pub fn to_bytes(&self, ctx: &EncodeCtx) -> Result<Bytes, EncodingError> {
        let mut buf = BytesMut::with_capacity(self.encoded_len(ctx));
        self.encode(ctx, &mut buf)?;
        Ok(buf.freeze())
    }
}

impl From<Notification> for Message {
    fn from(n: Notification) -> Self {
        Message::Notification(n)
    }
}

impl From<Update> for Message {
    fn from(u: Update) -> Self {
        Message::Update(u)
    }
}

impl From<Open> for Message {
    fn from(o: Open) -> Self {
        Message::Open(o)
    }
}

/// Decodes one whole message, header included. `msg` must be exactly one message: its length
/// must equal the header's Length field (else 1/2 with that field as data).
pub fn decode_message(msg: &[u8], ctx: &DecodeCtx) -> Result<Message, MessageError> {
    let header = parse_header(msg, ctx)?;
    if msg.len() != usize::from(header.length) {
        return Err(MessageError::new(
            ErrorCode::MESSAGE_HEADER,
            error::header_subcode::BAD_MESSAGE_LENGTH,
            header.length.to_be_bytes(),
            "header.length",
            "length field does not match the message size",
        ));
    }
    let body = msg.get(HEADER_LEN..).unwrap_or_default();
    decode_body(header.message_type, body, ctx)
}

/// Decodes a message body whose header was already checked by [`parse_header`] (as the framing
/// codec does). Calling it with a body that violates the header bounds gives the 1/2 error.
pub fn decode_body(
    message_type: MessageType,
    body: &[u8],
    ctx: &DecodeCtx,
) -> Result<Message, MessageError> {
    match message_type {
        MessageType::OPEN => open::Open::decode(body).map(Message::Open),
        MessageType::UPDATE => update::Update::decode(body, ctx).map(Message::Update),
        MessageType::NOTIFICATION => Notification::decode(body).map(Message::Notification),
        MessageType::KEEPALIVE => {
            if body.is_empty() {
                Ok(Message::Keepalive)
            } else {
                Err(MessageError::new(
                    ErrorCode::MESSAGE_HEADER,
                    error::header_subcode::BAD_MESSAGE_LENGTH,
                    u16::try_from(body.len() + HEADER_LEN)
                        .unwrap_or(u16::MAX)
                        .to_be_bytes(),
                    "header.length",
                    "KEEPALIVE length must be exactly 19",
                ))
            }
        }
        MessageType::ROUTE_REFRESH => RouteRefresh::decode(body).map(Message::RouteRefresh),
        other => Err(MessageError::new(
            ErrorCode::MESSAGE_HEADER,
            error::header_subcode::BAD_MESSAGE_TYPE,
            vec![other.0],
            "header.type",
            "unknown message type",
        )),
    }
}
