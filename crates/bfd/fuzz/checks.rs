//! The checks the fuzz targets run, shared with `crates/bfd/tests/fuzz_corpus.rs`, which
//! replays the seed corpus on stable Rust.

use std::time::Duration;

use ferrolb_bfd::packet::{decode, encode, EncodeError};
use ferrolb_bfd::session::{step, Action, Event, Session, SessionParams, SLOW_TX};
use ferrolb_bfd::{Diag, State};

/// Arbitrary bytes through `decode`: never panics; whatever decodes re-encodes to a packet
/// that decodes to the same value (unless it has P and F both set, which we never send).
pub fn check_decode_packet(data: &[u8]) {
    if let Ok(p) = decode(data) {
        match encode(&p) {
            Ok(bytes) => assert_eq!(decode(&bytes), Ok(p)),
            Err(e) => assert_eq!(e, EncodeError::PollAndFinal),
        }
    }
}

/// Bytes as a sequence of events for one session: op octet, then the event's bytes.
///
/// - `0`: Received(decode of the next 24 octets), if they decode
/// - `1`: TxTimerExpired, `2`: DetectionTimerExpired, `3`: Start
/// - `4`: SetParams(tx ms, rx ms from two octets each ×10, mult, passive)
/// - `5`: AdminDown(diag octet & 31), `6`: AdminUp
///
/// Checks after every step: each packet to send encodes (never P and F both); the state
/// is one of the four; DesiredMinTx is at least 1 s while not Up (RFC 5880 §6.8.3); no Poll
/// outside Up; a transmit interval and a Detection Time, when known, are not zero.
pub fn check_session_step(data: &[u8]) {
    let params = SessionParams {
        desired_min_tx: Duration::from_millis(300),
        required_min_rx: Duration::from_millis(300),
        detect_mult: 3,
        passive: false,
    };
    let mut s = Session::new(0x0102_0304, params, 42);
    let mut rest = data;
    for _ in 0..256 {
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        let event = match op % 7 {
            0 => {
                let Some(head) = rest.get(..24) else { break };
                rest = rest.get(24..).unwrap_or_default();
                match decode(head) {
                    Ok(p) => Event::Received(p),
                    Err(_) => continue,
                }
            }
            1 => Event::TxTimerExpired,
            2 => Event::DetectionTimerExpired,
            3 => Event::Start,
            4 => {
                let Some(b) = rest.get(..6) else { break };
                rest = rest.get(6..).unwrap_or_default();
                let ms = |hi: u8, lo: u8| {
                    Duration::from_millis(u64::from(u16::from_be_bytes([hi, lo])) * 10)
                };
                Event::SetParams(SessionParams {
                    desired_min_tx: ms(b[0], b[1]).max(Duration::from_millis(10)),
                    required_min_rx: ms(b[2], b[3]).max(Duration::from_millis(10)),
                    detect_mult: b[4].max(1),
                    passive: b[5] & 1 == 1,
                })
            }
            5 => {
                let d = rest.first().copied().unwrap_or(7) & 31;
                rest = rest.get(1..).unwrap_or_default();
                Event::AdminDown(Diag(d))
            }
            _ => Event::AdminUp,
        };
        let (next, actions) = step(s, event);
        s = next;
        for a in &actions {
            if let Action::Send(p) = a {
                assert!(encode(p).is_ok(), "unencodable packet {p:?}");
            }
        }
        assert!(s.state.0 <= 3);
        if s.state != State::UP {
            assert!(s.desired_min_tx >= SLOW_TX, "{s:?}");
            assert!(!s.polling, "{s:?}");
        }
        assert!(!s.tx_interval().is_zero());
        assert!(s.detection_time().is_none_or(|d| !d.is_zero()), "{s:?}");
    }
}
