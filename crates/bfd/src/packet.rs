//! The BFD Control packet (RFC 5880 §4.1): plain data, a pure [`decode`] and [`encode`].
//!
//! ```text
//!     0                   1                   2                   3
//!     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                       My Discriminator                        |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                      Your Discriminator                       |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                    Desired Min TX Interval                    |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                   Required Min RX Interval                    |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    |                 Required Min Echo RX Interval                 |
//!    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!    An optional Authentication Section (A bit set) follows.
//! ```
//!
//! Decoding applies the RFC 5880 §6.8.6 reception checks that need only the packet and the
//! UDP payload length: version, Length, Detect Mult, M bit, My Discriminator, and the A bit
//! (we configure no authentication, so "If the A bit is set and no authentication is in use
//! ... the packet MUST be discarded"). The checks that need session state (Your
//! Discriminator lookup) live in [`crate::demux`].
#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fmt;

/// The BFD version this implementation speaks (RFC 5880 §4.1: "This document defines
/// protocol version 1").
pub const VERSION: u8 = 1;
/// The length of a Control packet without an Authentication Section (RFC 5880 §4.1), the
/// only length we send.
pub const LEN: usize = 24;
/// The minimum Length with the A bit set: 24 plus Auth Type and Auth Len (RFC 5880 §6.8.6).
pub const LEN_WITH_AUTH: usize = 26;

/// A session state (the 2-bit Sta field, RFC 5880 §4.1). Open: any value of the field
/// decodes, and `Debug` prints the RFC name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct State(pub u8);

impl State {
    /// 0 AdminDown (RFC 5880 §4.1).
    pub const ADMIN_DOWN: State = State(0);
    /// 1 Down (RFC 5880 §4.1).
    pub const DOWN: State = State(1);
    /// 2 Init (RFC 5880 §4.1).
    pub const INIT: State = State(2);
    /// 3 Up (RFC 5880 §4.1).
    pub const UP: State = State(3);

    /// The RFC 5880 §4.1 name, or `None` for a value the 2-bit field cannot carry.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "AdminDown",
            1 => "Down",
            2 => "Init",
            3 => "Up",
            _ => return None,
        })
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "State({})", self.0),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A diagnostic code (the 5-bit Diag field, RFC 5880 §4.1): why the sender's last session
/// state change happened. Open: values 9-31 are reserved but decode and round-trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Diag(pub u8);

impl Diag {
    /// 0 No Diagnostic (RFC 5880 §4.1).
    pub const NONE: Diag = Diag(0);
    /// 1 Control Detection Time Expired (RFC 5880 §4.1).
    pub const CONTROL_DETECTION_TIME_EXPIRED: Diag = Diag(1);
    /// 2 Echo Function Failed (RFC 5880 §4.1).
    pub const ECHO_FUNCTION_FAILED: Diag = Diag(2);
    /// 3 Neighbor Signaled Session Down (RFC 5880 §4.1).
    pub const NEIGHBOR_SIGNALED_SESSION_DOWN: Diag = Diag(3);
    /// 4 Forwarding Plane Reset (RFC 5880 §4.1).
    pub const FORWARDING_PLANE_RESET: Diag = Diag(4);
    /// 5 Path Down (RFC 5880 §4.1).
    pub const PATH_DOWN: Diag = Diag(5);
    /// 6 Concatenated Path Down (RFC 5880 §4.1).
    pub const CONCATENATED_PATH_DOWN: Diag = Diag(6);
    /// 7 Administratively Down (RFC 5880 §4.1).
    pub const ADMINISTRATIVELY_DOWN: Diag = Diag(7);
    /// 8 Reverse Concatenated Path Down (RFC 5880 §4.1).
    pub const REVERSE_CONCATENATED_PATH_DOWN: Diag = Diag(8);

    /// The RFC 5880 §4.1 name; "Reserved" for 9-31, `None` above the 5-bit field.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "No Diagnostic",
            1 => "Control Detection Time Expired",
            2 => "Echo Function Failed",
            3 => "Neighbor Signaled Session Down",
            4 => "Forwarding Plane Reset",
            5 => "Path Down",
            6 => "Concatenated Path Down",
            7 => "Administratively Down",
            8 => "Reverse Concatenated Path Down",
            9..=31 => "Reserved",
            _ => return None,
        })
    }
}

impl fmt::Debug for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{}({n})", self.0),
            None => write!(f, "Diag({})", self.0),
        }
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A BFD Control packet without Authentication Section (RFC 5880 §4.1). The version (always
/// [`VERSION`]), the A and M bits (always 0: [`decode`] discards packets with either set) and
/// the Length (always [`LEN`] on encode) are not fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlPacket {
    /// Diag: the sender's reason for its last state change.
    pub diag: Diag,
    /// Sta: the sender's session state.
    pub state: State,
    /// P: the sender asks for verification of a parameter change (a Poll, RFC 5880 §6.5).
    pub poll: bool,
    /// F: the sender answers a Poll.
    pub final_: bool,
    /// C: the sender's BFD is independent of its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wants to run in Demand mode (RFC 5880 §6.6).
    pub demand: bool,
    /// Detect Mult: the sender's detection time multiplier; never 0 after [`decode`].
    pub detect_mult: u8,
    /// My Discriminator: the sender's discriminator; never 0 after [`decode`].
    pub my_discr: u32,
    /// Your Discriminator: the receiver's discriminator as the sender knows it, or 0.
    pub your_discr: u32,
    /// Desired Min TX Interval, microseconds.
    pub desired_min_tx_us: u32,
    /// Required Min RX Interval, microseconds (0: do not send me periodic packets).
    pub required_min_rx_us: u32,
    /// Required Min Echo RX Interval, microseconds (0: the sender does not support Echo).
    pub required_min_echo_rx_us: u32,
}

/// Why a datagram is not a Control packet we accept (RFC 5880 §6.8.6, the checks that need
/// only the datagram). Each is a "MUST be discarded".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The datagram is shorter than the fixed 24-octet header, so the fields cannot be read.
    #[error("datagram of {0} octets is shorter than the 24-octet Control packet")]
    Truncated(usize),
    /// "If the version number is not correct (1), the packet MUST be discarded."
    #[error("version {0}, not 1")]
    BadVersion(u8),
    /// "If the Length field is less than the minimum correct value (24 if the A bit is clear,
    /// or 26 if the A bit is set), the packet MUST be discarded."
    #[error("Length {length} below the minimum {min}")]
    LengthTooSmall {
        /// The Length field.
        length: u8,
        /// 24, or 26 with the A bit.
        min: usize,
    },
    /// "If the Length field is greater than the payload of the encapsulating protocol, the
    /// packet MUST be discarded."
    #[error("Length {length} exceeds the {payload}-octet UDP payload")]
    LengthExceedsPayload {
        /// The Length field.
        length: u8,
        /// The UDP payload length.
        payload: usize,
    },
    /// "If the Detect Mult field is zero, the packet MUST be discarded."
    #[error("Detect Mult is 0")]
    ZeroDetectMult,
    /// "If the Multipoint (M) bit is nonzero, the packet MUST be discarded."
    #[error("Multipoint (M) bit set")]
    Multipoint,
    /// "If the My Discriminator field is zero, the packet MUST be discarded."
    #[error("My Discriminator is 0")]
    ZeroMyDiscriminator,
    /// "If the A bit is set and no authentication is in use (bfd.AuthType is zero), the
    /// packet MUST be discarded." We configure no authentication.
    #[error("Authentication (A) bit set, but no authentication is configured")]
    AuthenticationNotConfigured,
}

impl DecodeError {
    /// A short, stable label for the per-reason drop counter.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DecodeError::Truncated(_) => "truncated",
            DecodeError::BadVersion(_) => "bad_version",
            DecodeError::LengthTooSmall { .. } => "length_too_small",
            DecodeError::LengthExceedsPayload { .. } => "length_exceeds_payload",
            DecodeError::ZeroDetectMult => "zero_detect_mult",
            DecodeError::Multipoint => "multipoint",
            DecodeError::ZeroMyDiscriminator => "zero_my_discriminator",
            DecodeError::AuthenticationNotConfigured => "authentication_not_configured",
        }
    }
}

/// Why a [`ControlPacket`] cannot be encoded: a field holds a value its wire field cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Diag is a 5-bit field.
    #[error("diag {0} does not fit the 5-bit Diag field")]
    DiagOutOfRange(u8),
    /// Sta is a 2-bit field.
    #[error("state {0} does not fit the 2-bit Sta field")]
    StateOutOfRange(u8),
    /// RFC 5880 §6.8.7: "A BFD Control packet MUST NOT have both the Poll (P) and Final (F)
    /// bits set."
    #[error("Poll and Final both set")]
    PollAndFinal,
}

const P_BIT: u8 = 0x20;
const F_BIT: u8 = 0x10;
const C_BIT: u8 = 0x08;
const A_BIT: u8 = 0x04;
const D_BIT: u8 = 0x02;
const M_BIT: u8 = 0x01;

/// Decodes one UDP payload (RFC 5880 §4.1) with the §6.8.6 checks, in the RFC's order.
/// Octets after Length (padding) are ignored.
pub fn decode(payload: &[u8]) -> Result<ControlPacket, DecodeError> {
    let Some(head) = payload.first_chunk::<LEN>() else {
        return Err(DecodeError::Truncated(payload.len()));
    };
    let [b0, b1, detect_mult, length, rest @ ..] = *head;
    let word = |i: usize| -> u32 {
        let mut w = [0u8; 4];
        for (k, o) in w.iter_mut().enumerate() {
            *o = rest.get(i * 4 + k).copied().unwrap_or(0);
        }
        u32::from_be_bytes(w)
    };
    let version = b0 >> 5;
    if version != VERSION {
        return Err(DecodeError::BadVersion(version));
    }
    let auth = b1 & A_BIT != 0;
    let min = if auth { LEN_WITH_AUTH } else { LEN };
    if usize::from(length) < min {
        return Err(DecodeError::LengthTooSmall { length, min });
    }
    if usize::from(length) > payload.len() {
        return Err(DecodeError::LengthExceedsPayload {
            length,
            payload: payload.len(),
        });
    }
    if detect_mult == 0 {
        return Err(DecodeError::ZeroDetectMult);
    }
    if b1 & M_BIT != 0 {
        return Err(DecodeError::Multipoint);
    }
    let my_discr = word(0);
    if my_discr == 0 {
        return Err(DecodeError::ZeroMyDiscriminator);
    }
    // The Your Discriminator checks come next in §6.8.6; they need the session table and are
    // in crate::demux. The A-bit check follows them in the RFC, but its outcome does not
    // depend on them, so it is made here.
    if auth {
        return Err(DecodeError::AuthenticationNotConfigured);
    }
    Ok(ControlPacket {
        diag: Diag(b0 & 0x1f),
        state: State(b1 >> 6),
        poll: b1 & P_BIT != 0,
        final_: b1 & F_BIT != 0,
        control_plane_independent: b1 & C_BIT != 0,
        demand: b1 & D_BIT != 0,
        detect_mult,
        my_discr,
        your_discr: word(1),
        desired_min_tx_us: word(2),
        required_min_rx_us: word(3),
        required_min_echo_rx_us: word(4),
    })
}

/// Encodes `p` as a 24-octet Control packet (version 1, A and M clear, Length 24).
pub fn encode(p: &ControlPacket) -> Result<[u8; LEN], EncodeError> {
    if p.diag.0 > 0x1f {
        return Err(EncodeError::DiagOutOfRange(p.diag.0));
    }
    if p.state.0 > 3 {
        return Err(EncodeError::StateOutOfRange(p.state.0));
    }
    if p.poll && p.final_ {
        return Err(EncodeError::PollAndFinal);
    }
    let mut flags = p.state.0 << 6;
    for (set, bit) in [
        (p.poll, P_BIT),
        (p.final_, F_BIT),
        (p.control_plane_independent, C_BIT),
        (p.demand, D_BIT),
    ] {
        if set {
            flags |= bit;
        }
    }
    let mut out = [0u8; LEN];
    let words = [
        p.my_discr,
        p.your_discr,
        p.desired_min_tx_us,
        p.required_min_rx_us,
        p.required_min_echo_rx_us,
    ];
    let (head, tail) = out.split_at_mut(4);
    head.copy_from_slice(&[(VERSION << 5) | p.diag.0, flags, p.detect_mult, LEN as u8]);
    for (chunk, w) in tail.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A packet as FRR's bfdd sends it in Down state (captured values: version 1, Sta Down,
    /// Detect Mult 3, My Discr 1, Your Discr 0, 1 s / 300 ms / 50 ms).
    const FRR_DOWN: [u8; 24] = [
        0x20, 0x40, 0x03, 0x18, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x42,
        0x40, 0x00, 0x04, 0x93, 0xe0, 0x00, 0x00, 0xc3, 0x50,
    ];

    fn down_packet() -> ControlPacket {
        ControlPacket {
            diag: Diag::NONE,
            state: State::DOWN,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 3,
            my_discr: 1,
            your_discr: 0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 50_000,
        }
    }

    #[test]
    fn golden_down_packet_decodes_and_encodes_both_ways() {
        assert_eq!(decode(&FRR_DOWN), Ok(down_packet()));
        assert_eq!(encode(&down_packet()).unwrap(), FRR_DOWN);
    }

    #[test]
    fn flag_bits_sit_where_section_4_1_puts_them() {
        let mut p = down_packet();
        p.state = State::UP;
        p.poll = true;
        p.control_plane_independent = true;
        p.demand = true;
        p.diag = Diag::ADMINISTRATIVELY_DOWN;
        let b = encode(&p).unwrap();
        assert_eq!(b[0], 0x27, "Vers 1 | Diag 7");
        assert_eq!(b[1], 0b1110_1010, "Sta 3, P, C, D");
        p.poll = false;
        p.final_ = true;
        assert_eq!(encode(&p).unwrap()[1], 0b1101_1010, "Sta 3, F, C, D");
        assert_eq!(decode(&encode(&p).unwrap()).unwrap(), p);
    }

    /// Each row: a mutation of the golden packet and the RFC 5880 §6.8.6 rule that discards it.
    #[test]
    fn section_6_8_6_syntactic_discards() {
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut v = FRR_DOWN.to_vec();
            f(&mut v);
            decode(&v)
        };
        let rows: Vec<(&str, Result<ControlPacket, DecodeError>, DecodeError)> = vec![
            (
                "short datagram",
                decode(&FRR_DOWN[..23]),
                DecodeError::Truncated(23),
            ),
            (
                "version 0",
                with(&|v| v[0] &= 0x1f),
                DecodeError::BadVersion(0),
            ),
            (
                "version 2",
                with(&|v| v[0] = 0x40),
                DecodeError::BadVersion(2),
            ),
            (
                "Length 23",
                with(&|v| v[3] = 23),
                DecodeError::LengthTooSmall {
                    length: 23,
                    min: 24,
                },
            ),
            (
                "Length 24 with A",
                with(&|v| v[1] |= A_BIT),
                DecodeError::LengthTooSmall {
                    length: 24,
                    min: 26,
                },
            ),
            (
                "Length 25 > payload 24",
                with(&|v| v[3] = 25),
                DecodeError::LengthExceedsPayload {
                    length: 25,
                    payload: 24,
                },
            ),
            (
                "Detect Mult 0",
                with(&|v| v[2] = 0),
                DecodeError::ZeroDetectMult,
            ),
            ("M bit", with(&|v| v[1] |= M_BIT), DecodeError::Multipoint),
            (
                "My Discriminator 0",
                with(&|v| v[7] = 0),
                DecodeError::ZeroMyDiscriminator,
            ),
            (
                "A bit, no authentication configured",
                with(&|v| {
                    v[1] |= A_BIT;
                    v[3] = 26;
                    v.extend_from_slice(&[1, 2]);
                }),
                DecodeError::AuthenticationNotConfigured,
            ),
        ];
        for (what, got, want) in rows {
            assert_eq!(got, Err(want), "{what}");
        }
    }

    #[test]
    fn padding_after_length_is_ignored() {
        let mut v = FRR_DOWN.to_vec();
        v.extend_from_slice(&[0xff; 8]);
        assert_eq!(decode(&v), Ok(down_packet()));
    }

    #[test]
    fn encode_refuses_values_the_wire_cannot_carry() {
        let mut p = down_packet();
        p.diag = Diag(32);
        assert_eq!(encode(&p), Err(EncodeError::DiagOutOfRange(32)));
        let mut p = down_packet();
        p.state = State(4);
        assert_eq!(encode(&p), Err(EncodeError::StateOutOfRange(4)));
        let mut p = down_packet();
        p.poll = true;
        p.final_ = true;
        assert_eq!(encode(&p), Err(EncodeError::PollAndFinal));
    }

    #[test]
    fn names_print_in_debug() {
        assert_eq!(format!("{:?}", State::ADMIN_DOWN), "AdminDown");
        assert_eq!(format!("{:?}", State(9)), "State(9)");
        assert_eq!(
            format!("{:?}", Diag::CONTROL_DETECTION_TIME_EXPIRED),
            "1(Control Detection Time Expired)"
        );
        assert_eq!(format!("{:?}", Diag(20)), "20(Reserved)");
    }

    prop_compose! {
        fn any_packet()(
            diag in 0u8..32, state in 0u8..4, pf in 0u8..3, c: bool, d: bool,
            detect_mult in 1u8.., my_discr in 1u32.., your_discr: u32,
            tx: u32, rx: u32, echo: u32,
        ) -> ControlPacket {
            ControlPacket {
                diag: Diag(diag), state: State(state), poll: pf == 1, final_: pf == 2,
                control_plane_independent: c, demand: d, detect_mult, my_discr, your_discr,
                desired_min_tx_us: tx, required_min_rx_us: rx, required_min_echo_rx_us: echo,
            }
        }
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(p in any_packet()) {
            prop_assert_eq!(decode(&encode(&p).unwrap()), Ok(p));
        }

        #[test]
        fn decode_never_panics_and_accepts_only_what_re_encodes(
            bytes in proptest::collection::vec(any::<u8>(), 0..64)
        ) {
            if let Ok(p) = decode(&bytes) {
                match encode(&p) {
                    Ok(again) => prop_assert_eq!(decode(&again), Ok(p)),
                    // The only field combination a receiver may see but we never send.
                    Err(e) => prop_assert_eq!(e, EncodeError::PollAndFinal),
                }
            }
        }
    }
}
