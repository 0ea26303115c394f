//! Errors: the NOTIFICATION codes of RFC 4271 §4.5 and §6 (and later RFCs), the decode error
//! that *is* the NOTIFICATION to send, RFC 7606 attribute-error actions, and encoding errors.
//!
//! Every code and subcode is a named constant and appears once in [`SUBCODE_NAMES`], the table
//! used for printing.

use std::fmt;

use super::iana::AttrType;

/// NOTIFICATION error code (IANA "BGP Error (Notification) Codes"; RFC 4271 §4.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize), serde(transparent))]
pub struct ErrorCode(pub u8);

impl ErrorCode {
    /// 1, Message Header Error, RFC 4271 §6.1.
    pub const MESSAGE_HEADER: ErrorCode = ErrorCode(1);
    /// 2, OPEN Message Error, RFC 4271 §6.2.
    pub const OPEN_MESSAGE: ErrorCode = ErrorCode(2);
    /// 3, UPDATE Message Error, RFC 4271 §6.3.
    pub const UPDATE_MESSAGE: ErrorCode = ErrorCode(3);
    /// 4, Hold Timer Expired, RFC 4271 §6.5.
    pub const HOLD_TIMER_EXPIRED: ErrorCode = ErrorCode(4);
    /// 5, Finite State Machine Error, RFC 4271 §6.6 (subcodes RFC 6608).
    pub const FSM: ErrorCode = ErrorCode(5);
    /// 6, Cease, RFC 4271 §6.7 (subcodes RFC 4486).
    pub const CEASE: ErrorCode = ErrorCode(6);
    /// 7, ROUTE-REFRESH Message Error, RFC 7313 §5.
    pub const ROUTE_REFRESH: ErrorCode = ErrorCode(7);
    /// 8, Send Hold Timer Expired, RFC 9687.
    pub const SEND_HOLD_TIMER_EXPIRED: ErrorCode = ErrorCode(8);

    /// The RFC name of this code, if known.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "Message Header Error",
            2 => "OPEN Message Error",
            3 => "UPDATE Message Error",
            4 => "Hold Timer Expired",
            5 => "Finite State Machine Error",
            6 => "Cease",
            7 => "ROUTE-REFRESH Message Error",
            8 => "Send Hold Timer Expired",
            _ => return None,
        })
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{}({name})", self.0),
            None => write!(f, "ErrorCode({})", self.0),
        }
    }
}

/// Subcodes of Message Header Error (RFC 4271 §4.5).
pub mod header_subcode {
    /// 1: the marker is not all ones (RFC 4271 §6.1). Data: empty.
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    /// 2: bad Length field (RFC 4271 §6.1). Data: the erroneous Length field.
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    /// 3: unrecognised Type field (RFC 4271 §6.1). Data: the erroneous Type field.
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// Subcodes of OPEN Message Error (RFC 4271 §4.5, RFC 5492, RFC 9234).
pub mod open_subcode {
    /// 0: unspecific; a recognised optional parameter is malformed (RFC 4271 §6.2).
    pub const UNSPECIFIC: u8 = 0;
    /// 1: Data: the largest locally supported version number, 2 octets (RFC 4271 §6.2).
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    /// 2: the peer's AS is not the configured one (RFC 4271 §6.2).
    pub const BAD_PEER_AS: u8 = 2;
    /// 3: syntactically bad BGP Identifier (RFC 4271 §6.2, RFC 6286 §2.2).
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    /// 4: an optional parameter type we do not recognise (RFC 4271 §6.2).
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    /// 5: Authentication Failure, deprecated by RFC 4271 §4.5; never sent.
    pub const AUTHENTICATION_FAILURE: u8 = 5;
    /// 6: hold time 1 or 2, or unacceptable by local policy (RFC 4271 §6.2).
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// 7: a capability we require is missing (RFC 5492 §5).
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    /// 11: BGP Role mismatch (RFC 9234 §4.2).
    pub const ROLE_MISMATCH: u8 = 11;
}

/// Subcodes of UPDATE Message Error (RFC 4271 §4.5).
pub mod update_subcode {
    /// 1: attribute list or UPDATE lengths are inconsistent (RFC 4271 §6.3, RFC 7606 §3-4).
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    /// 2: a well-known attribute we do not recognise. Data: the attribute (RFC 4271 §6.3).
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    /// 3: a well-known mandatory attribute is missing. Data: its type code (RFC 4271 §6.3).
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    /// 4: flags conflict with the type code. Data: the attribute (RFC 4271 §6.3).
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    /// 5: length conflicts with the type code. Data: the attribute (RFC 4271 §6.3).
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    /// 6: undefined ORIGIN value. Data: the attribute (RFC 4271 §6.3).
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    /// 7: AS Routing Loop, deprecated by RFC 4271 §4.5; never sent.
    pub const AS_ROUTING_LOOP: u8 = 7;
    /// 8: syntactically bad NEXT_HOP. Data: the attribute (RFC 4271 §6.3).
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    /// 9: a recognised optional attribute is malformed. Data: the attribute (RFC 4271 §6.3).
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    /// 10: the NLRI field is syntactically incorrect (RFC 4271 §6.3).
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    /// 11: AS_PATH is syntactically incorrect (RFC 4271 §6.3).
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Subcodes of Finite State Machine Error (RFC 6608 §3).
pub mod fsm_subcode {
    /// 0: unspecified error.
    pub const UNSPECIFIED: u8 = 0;
    /// 1: unexpected message in OpenSent. Data: the message type, 1 octet.
    pub const UNEXPECTED_MESSAGE_IN_OPEN_SENT: u8 = 1;
    /// 2: unexpected message in OpenConfirm. Data: the message type, 1 octet.
    pub const UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM: u8 = 2;
    /// 3: unexpected message in Established. Data: the message type, 1 octet.
    pub const UNEXPECTED_MESSAGE_IN_ESTABLISHED: u8 = 3;
}

/// Subcodes of Cease (RFC 4486 §4, RFC 8538, RFC 9384).
pub mod cease_subcode {
    /// 1: maximum number of prefixes reached (RFC 4486). Data may carry AFI, SAFI, limit.
    pub const MAXIMUM_PREFIXES_REACHED: u8 = 1;
    /// 2: administrative shutdown (RFC 4486); data may be a Shutdown Communication (RFC 9003).
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    /// 3: peer de-configured (RFC 4486).
    pub const PEER_DECONFIGURED: u8 = 3;
    /// 4: administrative reset (RFC 4486); data may be a Shutdown Communication (RFC 9003).
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    /// 5: connection rejected (RFC 4486).
    pub const CONNECTION_REJECTED: u8 = 5;
    /// 6: other configuration change (RFC 4486).
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    /// 7: connection collision resolution (RFC 4486, RFC 4271 §6.8).
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    /// 8: out of resources (RFC 4486).
    pub const OUT_OF_RESOURCES: u8 = 8;
    /// 9: hard reset (RFC 8538 §3).
    pub const HARD_RESET: u8 = 9;
    /// 10: BFD down (RFC 9384).
    pub const BFD_DOWN: u8 = 10;
}

/// Subcodes of ROUTE-REFRESH Message Error (RFC 7313 §5).
pub mod route_refresh_subcode {
    /// 1: invalid message length. Data: the complete ROUTE-REFRESH message.
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// Every (code, subcode, name) pair we know: the one table used to print subcodes.
pub const SUBCODE_NAMES: &[(u8, u8, &str)] = &[
    (
        1,
        header_subcode::CONNECTION_NOT_SYNCHRONIZED,
        "Connection Not Synchronized",
    ),
    (1, header_subcode::BAD_MESSAGE_LENGTH, "Bad Message Length"),
    (1, header_subcode::BAD_MESSAGE_TYPE, "Bad Message Type"),
    (2, open_subcode::UNSPECIFIC, "Unspecific"),
    (
        2,
        open_subcode::UNSUPPORTED_VERSION_NUMBER,
        "Unsupported Version Number",
    ),
    (2, open_subcode::BAD_PEER_AS, "Bad Peer AS"),
    (2, open_subcode::BAD_BGP_IDENTIFIER, "Bad BGP Identifier"),
    (
        2,
        open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
        "Unsupported Optional Parameter",
    ),
    (
        2,
        open_subcode::AUTHENTICATION_FAILURE,
        "Authentication Failure (deprecated)",
    ),
    (
        2,
        open_subcode::UNACCEPTABLE_HOLD_TIME,
        "Unacceptable Hold Time",
    ),
    (
        2,
        open_subcode::UNSUPPORTED_CAPABILITY,
        "Unsupported Capability",
    ),
    (2, open_subcode::ROLE_MISMATCH, "Role Mismatch"),
    (
        3,
        update_subcode::MALFORMED_ATTRIBUTE_LIST,
        "Malformed Attribute List",
    ),
    (
        3,
        update_subcode::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
        "Unrecognized Well-known Attribute",
    ),
    (
        3,
        update_subcode::MISSING_WELL_KNOWN_ATTRIBUTE,
        "Missing Well-known Attribute",
    ),
    (
        3,
        update_subcode::ATTRIBUTE_FLAGS_ERROR,
        "Attribute Flags Error",
    ),
    (
        3,
        update_subcode::ATTRIBUTE_LENGTH_ERROR,
        "Attribute Length Error",
    ),
    (
        3,
        update_subcode::INVALID_ORIGIN_ATTRIBUTE,
        "Invalid ORIGIN Attribute",
    ),
    (
        3,
        update_subcode::AS_ROUTING_LOOP,
        "AS Routing Loop (deprecated)",
    ),
    (
        3,
        update_subcode::INVALID_NEXT_HOP_ATTRIBUTE,
        "Invalid NEXT_HOP Attribute",
    ),
    (
        3,
        update_subcode::OPTIONAL_ATTRIBUTE_ERROR,
        "Optional Attribute Error",
    ),
    (
        3,
        update_subcode::INVALID_NETWORK_FIELD,
        "Invalid Network Field",
    ),
    (3, update_subcode::MALFORMED_AS_PATH, "Malformed AS_PATH"),
    (5, fsm_subcode::UNSPECIFIED, "Unspecified Error"),
    (
        5,
        fsm_subcode::UNEXPECTED_MESSAGE_IN_OPEN_SENT,
        "Receive Unexpected Message in OpenSent State",
    ),
    (
        5,
        fsm_subcode::UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM,
        "Receive Unexpected Message in OpenConfirm State",
    ),
    (
        5,
        fsm_subcode::UNEXPECTED_MESSAGE_IN_ESTABLISHED,
        "Receive Unexpected Message in Established State",
    ),
    (
        6,
        cease_subcode::MAXIMUM_PREFIXES_REACHED,
        "Maximum Number of Prefixes Reached",
    ),
    (
        6,
        cease_subcode::ADMINISTRATIVE_SHUTDOWN,
        "Administrative Shutdown",
    ),
    (6, cease_subcode::PEER_DECONFIGURED, "Peer De-configured"),
    (
        6,
        cease_subcode::ADMINISTRATIVE_RESET,
        "Administrative Reset",
    ),
    (6, cease_subcode::CONNECTION_REJECTED, "Connection Rejected"),
    (
        6,
        cease_subcode::OTHER_CONFIGURATION_CHANGE,
        "Other Configuration Change",
    ),
    (
        6,
        cease_subcode::CONNECTION_COLLISION_RESOLUTION,
        "Connection Collision Resolution",
    ),
    (6, cease_subcode::OUT_OF_RESOURCES, "Out of Resources"),
    (6, cease_subcode::HARD_RESET, "Hard Reset"),
    (6, cease_subcode::BFD_DOWN, "BFD Down"),
    (
        7,
        route_refresh_subcode::INVALID_MESSAGE_LENGTH,
        "Invalid Message Length",
    ),
];

/// The name of `subcode` under `code`, from [`SUBCODE_NAMES`].
pub fn subcode_name(code: ErrorCode, subcode: u8) -> Option<&'static str> {
    SUBCODE_NAMES
        .iter()
        .find(|(c, s, _)| *c == code.0 && *s == subcode)
        .map(|(_, _, name)| *name)
}

/// A decode failure that resets the session: the NOTIFICATION to send, plus which field was bad
/// and why, for the operator's log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{field}: {reason} (NOTIFICATION {notification})")]
pub struct MessageError {
    /// What to send the peer: code, subcode and data exactly as the RFC prescribes.
    pub notification: super::Notification,
    /// The wire field that was wrong, e.g. `"header.length"`.
    pub field: &'static str,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl MessageError {
    /// Builds an error from its parts.
    pub fn new(
        code: ErrorCode,
        subcode: u8,
        data: impl Into<Vec<u8>>,
        field: &'static str,
        reason: &'static str,
    ) -> Self {
        MessageError {
            notification: super::Notification {
                code,
                subcode,
                data: data.into(),
            },
            field,
            reason,
        }
    }

    /// A short stable label for metrics: `"<code>_<subcode>"`.
    pub fn metric_label(&self) -> String {
        format!("{}_{}", self.notification.code.0, self.notification.subcode)
    }
}

/// How an UPDATE attribute error is handled (RFC 7606 §2), ordered by strength: when several
/// errors occur in one UPDATE the strongest wins (RFC 7606 §3, "the approach ... with the most
/// severe").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum ErrorAction {
    /// "attribute discard": drop the attribute, keep processing the UPDATE.
    AttributeDiscard,
    /// "treat-as-withdraw": all NLRI in the UPDATE (including MP_REACH) are withdrawn.
    TreatAsWithdraw,
    /// "session reset": send the NOTIFICATION and close the session.
    SessionReset,
}

/// One RFC 7606 finding about a path attribute of a decoded UPDATE.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AttributeError {
    /// The attribute's type code.
    pub attr_type: AttrType,
    /// What the receiver must do.
    pub action: ErrorAction,
    /// Why, citing the rule.
    pub reason: &'static str,
}

/// An encoder refusal: a value that cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EncodingError {
    /// A field holds more than its length field can express, or the message exceeds its maximum.
    #[error("{field} is {actual} octets/items, at most {max} fit")]
    TooLong {
        /// The field that overflowed.
        field: &'static str,
        /// Its size.
        actual: usize,
        /// The largest size that fits.
        max: usize,
    },
    /// A value that the RFC forbids on the wire.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why it cannot be encoded.
        reason: &'static str,
    },
}

/// A Shutdown Communication (RFC 9003 §2) that cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ShutdownCommunicationError {
    /// The length octet claims more bytes than the data holds.
    #[error("shutdown communication length {claimed} exceeds the {available} octets present")]
    Truncated {
        /// The length octet.
        claimed: usize,
        /// Octets after the length octet.
        available: usize,
    },
    /// The text is not UTF-8 (RFC 9003 §2 requires UTF-8).
    #[error("shutdown communication is not valid UTF-8")]
    NotUtf8,
    /// The text is longer than 255 octets (RFC 9003 §2).
    #[error("shutdown communication is {0} octets, at most 255 allowed")]
    TooLong(usize),
}
