//! NOTIFICATION message (RFC 4271 §4.5) and the Cease Shutdown Communication (RFC 9003).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! Cease 2 and 4 data (RFC 9003 §2): `| Length (1) | Shutdown Communication (UTF-8, <= 255) |`.

use std::fmt;

use bytes::{BufMut, BytesMut};

use super::error::{
    cease_subcode, header_subcode, open_subcode, subcode_name, update_subcode, ErrorCode,
    MessageError, ShutdownCommunicationError,
};
use super::iana::MessageType;

/// A NOTIFICATION: sent or received, and the error value of every session-reset decode failure.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Notification {
    /// Error code (RFC 4271 §4.5).
    pub code: ErrorCode,
    /// Error subcode; meaning depends on `code`.
    pub subcode: u8,
    /// Diagnostic data as the RFC for this code/subcode prescribes.
    pub data: Vec<u8>,
}

impl Notification {
    /// A NOTIFICATION with empty data.
    pub fn new(code: ErrorCode, subcode: u8) -> Self {
        Notification {
            code,
            subcode,
            data: Vec::new(),
        }
    }

    /// 4/0 Hold Timer Expired (RFC 4271 §6.5).
    pub fn hold_timer_expired() -> Self {
        Self::new(ErrorCode::HOLD_TIMER_EXPIRED, 0)
    }

    /// 5/x FSM error for an unexpected message (RFC 6608 §4): data is the message type.
    pub fn fsm_unexpected(subcode: u8, message_type: MessageType) -> Self {
        Notification {
            code: ErrorCode::FSM,
            subcode,
            data: vec![message_type.0],
        }
    }

    /// 6/`subcode` Cease (RFC 4486) with no data.
    pub fn cease(subcode: u8) -> Self {
        Self::new(ErrorCode::CEASE, subcode)
    }

    /// 6/2 or 6/4 Cease with a Shutdown Communication (RFC 9003 §2). An empty text gives the
    /// length octet 0.
    pub fn cease_with_communication(
        subcode: u8,
        text: &str,
    ) -> Result<Self, ShutdownCommunicationError> {
        let len = u8::try_from(text.len())
            .map_err(|_| ShutdownCommunicationError::TooLong(text.len()))?;
        let mut data = Vec::with_capacity(text.len() + 1);
        data.push(len);
        data.extend_from_slice(text.as_bytes());
        Ok(Notification {
            code: ErrorCode::CEASE,
            subcode,
            data,
        })
    }

    /// The Shutdown Communication (RFC 9003 §2) of a Cease 2 or 4, if it carries data.
    /// `None` for other codes or empty data.
    pub fn shutdown_communication(&self) -> Option<Result<&str, ShutdownCommunicationError>> {
        if self.code != ErrorCode::CEASE
            || !matches!(
                self.subcode,
                cease_subcode::ADMINISTRATIVE_SHUTDOWN | cease_subcode::ADMINISTRATIVE_RESET
            )
        {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let len = usize::from(len);
        let Some(text) = rest.get(..len) else {
            return Some(Err(ShutdownCommunicationError::Truncated {
                claimed: len,
                available: rest.len(),
            }));
        };
        Some(std::str::from_utf8(text).map_err(|_| ShutdownCommunicationError::NotUtf8))
    }

    /// The RFC names of code and subcode, e.g. `"Cease / Administrative Shutdown"`.
    pub fn name(&self) -> String {
        let code = self.code.name().unwrap_or("Unknown");
        match subcode_name(self.code, self.subcode) {
            Some(sub) => format!("{code} / {sub}"),
            None => format!("{code} / subcode {}", self.subcode),
        }
    }

    /// Body length on the wire (without the 19-octet header).
    pub fn body_len(&self) -> usize {
        2 + self.data.len()
    }

    /// Decodes a NOTIFICATION body. Any body of at least 2 octets is valid; the header check
    /// already enforced the minimum length 21 (RFC 4271 §4.5), so this only fails if called
    /// directly on a short body.
    pub fn decode(body: &[u8]) -> Result<Self, MessageError> {
        match body {
            [code, subcode, data @ ..] => Ok(Notification {
                code: ErrorCode(*code),
                subcode: *subcode,
                data: data.to_vec(),
            }),
            _ => Err(MessageError::new(
                ErrorCode::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                u16::try_from(body.len() + super::HEADER_LEN)
                    .unwrap_or(u16::MAX)
                    .to_be_bytes(),
                "notification",
                "NOTIFICATION body shorter than 2 octets",
            )),
        }
    }

    /// Appends the body to `buf`.
    pub fn encode_body(&self, buf: &mut BytesMut) {
        buf.put_u8(self.code.0);
        buf.put_u8(self.subcode);
        buf.put_slice(&self.data);
    }

    /// True for the errors after which RFC 4271 says the data identifies an attribute, i.e.
    /// UPDATE errors whose data is the offending attribute.
    pub fn is_update_error(&self) -> bool {
        self.code == ErrorCode::UPDATE_MESSAGE
    }

    /// True for 2/6 Unacceptable Hold Time, handy in FSM tests.
    pub fn is_unacceptable_hold_time(&self) -> bool {
        self.code == ErrorCode::OPEN_MESSAGE && self.subcode == open_subcode::UNACCEPTABLE_HOLD_TIME
    }

    /// True for 3/1 Malformed Attribute List.
    pub fn is_malformed_attribute_list(&self) -> bool {
        self.code == ErrorCode::UPDATE_MESSAGE
            && self.subcode == update_subcode::MALFORMED_ATTRIBUTE_LIST
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.code.0, self.subcode, self.name())?;
        if !self.data.is_empty() {
            f.write_str(" data ")?;
            for b in &self.data {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Notification({self})")
    }
}

impl From<MessageError> for Notification {
    fn from(e: MessageError) -> Self {
        e.notification
    }
}
