//! The message header (RFC 4271 §4.1) and its checks (RFC 4271 §6.1, RFC 8654 §4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                           Marker (16, all ones)               |
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use bytes::{BufMut, BytesMut};

use super::error::{header_subcode, ErrorCode, MessageError};
use super::iana::MessageType;
use super::DecodeCtx;

/// The 16-octet all-ones marker (RFC 4271 §4.1).
pub const MARKER: [u8; 16] = [0xff; 16];
/// Length of the fixed header.
pub const HEADER_LEN: usize = 19;
/// Largest message without Extended Message (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message once Extended Message is negotiated (RFC 8654 §4).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;
/// Minimum OPEN length (RFC 4271 §4.2).
pub const MIN_OPEN_LEN: usize = 29;
/// Minimum UPDATE length (RFC 4271 §4.3).
pub const MIN_UPDATE_LEN: usize = 23;
/// Minimum NOTIFICATION length (RFC 4271 §4.5).
pub const MIN_NOTIFICATION_LEN: usize = 21;
/// KEEPALIVE length (RFC 4271 §4.4).
pub const KEEPALIVE_LEN: usize = 19;
/// ROUTE-REFRESH length (RFC 2918 §3).
pub const ROUTE_REFRESH_LEN: usize = 23;

/// A checked header: the whole message is `length` octets, body `length - 19`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Total message length including the header.
    pub length: u16,
    /// Message type, one of the five we know.
    pub message_type: MessageType,
}

impl Header {
    /// Length of the body after the header.
    pub fn body_len(&self) -> usize {
        usize::from(self.length).saturating_sub(HEADER_LEN)
    }
}

/// The largest message of `message_type` allowed under `ctx`. RFC 8654 §4: OPEN and KEEPALIVE
/// stay within 4096 even after Extended Message is negotiated.
pub fn max_len(message_type: MessageType, ctx: &DecodeCtx) -> usize {
    if ctx.extended_message
        && message_type != MessageType::OPEN
        && message_type != MessageType::KEEPALIVE
    {
        MAX_EXTENDED_MESSAGE_LEN
    } else {
        MAX_MESSAGE_LEN
    }
}

fn bad_length(length: u16, reason: &'static str) -> MessageError {
    // RFC 4271 §6.1: "The Data field MUST contain the erroneous Length field."
    MessageError::new(
        ErrorCode::MESSAGE_HEADER,
        header_subcode::BAD_MESSAGE_LENGTH,
        length.to_be_bytes(),
        "header.length",
        reason,
    )
}

/// Parses and checks the first 19 octets of `input` (which may hold more). Rejects, in order:
/// a marker not all ones (1/1), a length below 19 or above the largest any message may have
/// (1/2), an unknown type (1/3), and a length outside the bounds of that type (1/2).
pub fn parse_header(input: &[u8], ctx: &DecodeCtx) -> Result<Header, MessageError> {
    let Some((marker, rest)) = input.split_first_chunk::<16>() else {
        return Err(MessageError::new(
            ErrorCode::MESSAGE_HEADER,
            header_subcode::BAD_MESSAGE_LENGTH,
            u16::try_from(input.len()).unwrap_or(u16::MAX).to_be_bytes(),
            "header",
            "message shorter than the 19-octet header",
        ));
    };
    if *marker != MARKER {
        // RFC 4271 §6.1: "If the Marker field of the message header is not as expected, then a
        // synchronization error has occurred and the Error Subcode MUST be set to Connection
        // Not Synchronized."
        return Err(MessageError::new(
            ErrorCode::MESSAGE_HEADER,
            header_subcode::CONNECTION_NOT_SYNCHRONIZED,
            Vec::new(),
            "header.marker",
            "marker is not all ones",
        ));
    }
    let (length, message_type) = match rest {
        [hi, lo, ty, ..] => (u16::from_be_bytes([*hi, *lo]), MessageType(*ty)),
        _ => {
            return Err(MessageError::new(
                ErrorCode::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                u16::try_from(input.len()).unwrap_or(u16::MAX).to_be_bytes(),
                "header",
                "message shorter than the 19-octet header",
            ))
        }
    };
    let len = usize::from(length);
    let overall_max = if ctx.extended_message {
        MAX_EXTENDED_MESSAGE_LEN
    } else {
        MAX_MESSAGE_LEN
    };
    if len < HEADER_LEN {
        return Err(bad_length(length, "length below 19"));
    }
    if len > overall_max {
        return Err(bad_length(length, "length above the negotiated maximum"));
    }
    let (min, exact) = match message_type {
        MessageType::OPEN => (MIN_OPEN_LEN, false),
        MessageType::UPDATE => (MIN_UPDATE_LEN, false),
        MessageType::NOTIFICATION => (MIN_NOTIFICATION_LEN, false),
        MessageType::KEEPALIVE => (KEEPALIVE_LEN, true),
        // RFC 7313 §5 answers a ROUTE-REFRESH of the wrong length with 7/1 carrying the whole
        // message, so only the minimum is checked here and the body decoder does the rest.
        MessageType::ROUTE_REFRESH => (ROUTE_REFRESH_LEN, false),
        _ => {
            // RFC 4271 §6.1: "The Data field MUST contain the erroneous Type field."
            return Err(MessageError::new(
                ErrorCode::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_TYPE,
                vec![message_type.0],
                "header.type",
                "unknown message type",
            ));
        }
    };
    if len < min {
        return Err(bad_length(
            length,
            "length below the minimum for this message type",
        ));
    }
    if exact && len != min {
        return Err(bad_length(length, "KEEPALIVE length must be exactly 19"));
    }
    if len > max_len(message_type, ctx) {
        return Err(bad_length(
            length,
            "length above the maximum for this message type (RFC 8654 §4)",
        ));
    }
    Ok(Header {
        length,
        message_type,
    })
}

/// Appends a header for a message of `total_len` octets (header included).
pub fn encode_header(total_len: u16, message_type: MessageType, buf: &mut BytesMut) {
    buf.put_slice(&MARKER);
    buf.put_u16(total_len);
    buf.put_u8(message_type.0);
}
