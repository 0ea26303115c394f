//! One test per RFC 4271 §6 error case (and the later RFCs that refine them), asserting the
//! NOTIFICATION code, subcode and data exactly.

use ferrolb_bgp::wire::error::{header_subcode, open_subcode, update_subcode};
use ferrolb_bgp::wire::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .lines()
        .flat_map(|line| line.split('|').next().unwrap_or("").bytes())
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| (b as char).to_digit(16).expect("hex digit") as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

fn with_header(message_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(message_type);
    m.extend_from_slice(body);
    m
}

/// Decodes and returns the NOTIFICATION as (code, subcode, data).
fn notification(bytes: &[u8], ctx: &DecodeCtx) -> (u8, u8, Vec<u8>) {
    match decode_message(bytes, ctx) {
        Ok(m) => panic!("expected an error, decoded {m:?}"),
        Err(e) => (
            e.notification.code.0,
            e.notification.subcode,
            e.notification.data,
        ),
    }
}

fn as4() -> DecodeCtx {
    DecodeCtx::modern()
}

const OPEN_OK: &str = "04 fde9 005a c0000201 00";

// --- RFC 4271 §6.1 Message Header Error ---

#[test]
fn marker_not_all_ones_is_1_1_connection_not_synchronized() {
    let mut m = with_header(4, &[]);
    m[3] = 0xfe;
    assert_eq!(
        notification(&m, &as4()),
        (1, header_subcode::CONNECTION_NOT_SYNCHRONIZED, vec![])
    );
}

#[test]
fn length_below_19_is_1_2_with_the_length_as_data() {
    let mut m = with_header(4, &[]);
    m[16..18].copy_from_slice(&18u16.to_be_bytes());
    assert_eq!(
        notification(&m, &as4()),
        (1, header_subcode::BAD_MESSAGE_LENGTH, vec![0x00, 0x12])
    );
}

#[test]
fn length_above_4096_is_1_2_with_the_length_as_data() {
    let m = with_header(2, &vec![0; 4097 - 19]);
    assert_eq!(notification(&m, &as4()), (1, 2, vec![0x10, 0x01]));
}

#[test]
fn extended_message_allows_65535_for_update_but_not_for_open() {
    // RFC 8654 §4: after Extended Message, UPDATE may exceed 4096 but OPEN may not.
    let ext = DecodeCtx {
        extended_message: true,
        ..as4()
    };
    let mut update_body = hex("0000 0000");
    update_body.extend(std::iter::repeat_n([32u8, 10, 0, 0, 1], 1000).flatten());
    let m = with_header(2, &update_body);
    assert!(decode_message(&m, &ext).is_ok());
    assert_eq!(
        notification(&m, &as4()).1,
        header_subcode::BAD_MESSAGE_LENGTH
    );
    let open = with_header(1, &vec![0; 5000]);
    assert_eq!(
        notification(&open, &ext),
        (1, 2, (5019u16).to_be_bytes().to_vec())
    );
}

#[test]
fn open_shorter_than_29_is_1_2() {
    let m = with_header(1, &hex("04 fde9 005a c0000201"));
    assert_eq!(notification(&m, &as4()), (1, 2, vec![0x00, 28]));
}

#[test]
fn update_shorter_than_23_is_1_2() {
    let m = with_header(2, &hex("0000 00"));
    assert_eq!(notification(&m, &as4()), (1, 2, vec![0x00, 22]));
}

#[test]
fn keepalive_longer_than_19_is_1_2() {
    let m = with_header(4, &[0]);
    assert_eq!(notification(&m, &as4()), (1, 2, vec![0x00, 20]));
}

#[test]
fn notification_shorter_than_21_is_1_2() {
    let m = with_header(3, &[6]);
    assert_eq!(notification(&m, &as4()), (1, 2, vec![0x00, 20]));
}

#[test]
fn unknown_type_is_1_3_with_the_type_as_data() {
    let m = with_header(6, &[]);
    assert_eq!(
        notification(&m, &as4()),
        (1, header_subcode::BAD_MESSAGE_TYPE, vec![6])
    );
}

#[test]
fn length_field_disagreeing_with_the_buffer_is_1_2() {
    let mut m = with_header(4, &[]);
    m.push(0);
    assert_eq!(notification(&m, &as4()), (1, 2, vec![0x00, 19]));
}

// --- RFC 4271 §6.2 OPEN Message Error ---

#[test]
fn version_3_is_2_1_with_our_version_as_data() {
    let m = with_header(1, &hex("03 fde9 005a c0000201 00"));
    assert_eq!(
        notification(&m, &as4()),
        (2, open_subcode::UNSUPPORTED_VERSION_NUMBER, vec![0, 4])
    );
}

#[test]
fn my_as_zero_is_2_2_bad_peer_as() {
    // RFC 7607 §2.
    let m = with_header(1, &hex("04 0000 005a c0000201 00"));
    assert_eq!(
        notification(&m, &as4()),
        (2, open_subcode::BAD_PEER_AS, vec![])
    );
}

#[test]
fn bgp_identifier_zero_is_2_3() {
    let m = with_header(1, &hex("04 fde9 005a 00000000 00"));
    assert_eq!(
        notification(&m, &as4()),
        (2, open_subcode::BAD_BGP_IDENTIFIER, vec![])
    );
}

#[test]
fn unknown_optional_parameter_is_2_4() {
    // Parameter type 1 (Authentication, deprecated) is not supported.
    let m = with_header(1, &hex("04 fde9 005a c0000201 04 01 02 abcd"));
    assert_eq!(
        notification(&m, &as4()),
        (2, open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER, vec![])
    );
}

#[test]
fn hold_time_1_and_2_are_2_6_while_0_and_3_are_accepted() {
    for (hold, ok) in [
        (0u16, true),
        (1, false),
        (2, false),
        (3, true),
        (65535, true),
    ] {
        let mut body = hex(OPEN_OK);
        body[3..5].copy_from_slice(&hold.to_be_bytes());
        let m = with_header(1, &body);
        match decode_message(&m, &as4()) {
            Ok(Message::Open(open)) => {
                assert!(ok, "hold time {hold} accepted");
                assert_eq!(open.hold_time.seconds(), hold);
            }
            Ok(other) => panic!("decoded {other:?}"),
            Err(e) => {
                assert!(!ok, "hold time {hold} refused: {e}");
                assert_eq!(
                    (
                        e.notification.code,
                        e.notification.subcode,
                        e.notification.data
                    ),
                    (
                        ErrorCode::OPEN_MESSAGE,
                        open_subcode::UNACCEPTABLE_HOLD_TIME,
                        vec![]
                    )
                );
            }
        }
    }
    assert!(HoldTime::new(1).is_err() && HoldTime::new(2).is_err() && HoldTime::new(3).is_ok());
}

#[test]
fn malformed_known_capability_is_2_0_unspecific() {
    // Multiprotocol capability of length 3 (must be 4).
    let m = with_header(1, &hex("04 fde9 005a c0000201 05 02 03 01 01 00"));
    assert_eq!(
        notification(&m, &as4()),
        (2, open_subcode::UNSPECIFIC, vec![])
    );
}

#[test]
fn optional_parameters_length_overrunning_the_message_is_1_2_with_the_length_field() {
    // RFC 4271 §6.1: the Length field (33) is less than the minimum length of this OPEN
    // (29 + the 5 parameter octets it declares): Bad Message Length, data the Length field.
    let m = with_header(1, &hex("04 fde9 005a c0000201 05 02 02 02 00"));
    assert_eq!(m.len(), 33);
    assert_eq!(
        notification(&m, &as4()),
        (1, header_subcode::BAD_MESSAGE_LENGTH, vec![0, 33])
    );
    // The same through RFC 9072's extended length (255 255, then 2 octets: 6, but 4 follow).
    let m = with_header(1, &hex("04 fde9 005a c0000201 ff ff 0006 02 0002 0200"));
    assert_eq!(
        notification(&m, &as4()),
        (
            1,
            header_subcode::BAD_MESSAGE_LENGTH,
            37u16.to_be_bytes().to_vec()
        )
    );
}

#[test]
fn octets_after_the_optional_parameters_are_2_0() {
    // RFC 4271 §6.2: 3 parameter octets declared, 4 present: malformed, Unspecific.
    let m = with_header(1, &hex("04 fde9 005a c0000201 03 02 02 02 00"));
    assert_eq!(notification(&m, &as4()), (2, 0, vec![]));
}

// --- RFC 4271 §6.3 UPDATE Message Error ---

#[test]
fn withdrawn_routes_length_too_large_is_3_1() {
    let m = with_header(2, &hex("0010 0000"));
    assert_eq!(
        notification(&m, &as4()),
        (3, update_subcode::MALFORMED_ATTRIBUTE_LIST, vec![])
    );
}

#[test]
fn total_attribute_length_too_large_is_3_1() {
    let m = with_header(2, &hex("0000 0004 400101"));
    assert_eq!(
        notification(&m, &as4()),
        (3, update_subcode::MALFORMED_ATTRIBUTE_LIST, vec![])
    );
}

#[test]
fn unrecognized_well_known_attribute_is_3_2_with_the_attribute_as_data() {
    // Flags 0x40 (well-known, transitive), type 200, length 2.
    let m = with_header(2, &hex("0000 0005 40 c8 02 abcd"));
    assert_eq!(
        notification(&m, &as4()),
        (
            3,
            update_subcode::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
            hex("40c802abcd")
        )
    );
}

#[test]
fn missing_well_known_attribute_is_treat_as_withdraw_per_rfc7606() {
    // RFC 7606 §3 d replaces RFC 4271's 3/3 with treat-as-withdraw: found by validate().
    let m = with_header(2, &hex("0000 0007 40 03 04 0a000001 18 0a0000"));
    let Ok(Message::Update(u)) = decode_message(&m, &as4()) else {
        panic!("decode failed")
    };
    let findings = u.validate(&as4());
    let missing: Vec<_> = findings.iter().map(|f| f.attr_type).collect();
    assert_eq!(missing, vec![AttrType::ORIGIN, AttrType::AS_PATH]);
    assert!(findings
        .iter()
        .all(|f| f.action == ErrorAction::TreatAsWithdraw));
}

#[test]
fn invalid_next_hop_is_treat_as_withdraw_in_validate() {
    // NEXT_HOP 0.0.0.0 is not a unicast host address (RFC 4271 §6.3).
    let m = with_header(
        2,
        &hex("0000 0014 40 01 01 00 40 02 06 02 01 0000fde9 40 03 04 00000000 18 0a0000"),
    );
    let Ok(Message::Update(u)) = decode_message(&m, &as4()) else {
        panic!("decode failed")
    };
    let findings = u.validate(&as4());
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].attr_type, AttrType::NEXT_HOP);
    assert_eq!(findings[0].action, ErrorAction::TreatAsWithdraw);
}

#[test]
fn malformed_mp_reach_next_hop_length_is_3_9_with_the_attribute_as_data() {
    // RFC 7606 §7.11: next hop length 5 cannot be right; the NLRI cannot be located.
    let attr = "80 0e 0b 0002 01 05 0102030405 00 00";
    let m = with_header(2, &hex(&format!("0000 000e {attr}")));
    assert_eq!(
        notification(&m, &as4()),
        (3, update_subcode::OPTIONAL_ATTRIBUTE_ERROR, hex(attr))
    );
}

#[test]
fn nlri_prefix_length_33_is_3_10() {
    let m = with_header(2, &hex("0000 0000 21 0a000001 00"));
    assert_eq!(
        notification(&m, &as4()),
        (3, update_subcode::INVALID_NETWORK_FIELD, vec![])
    );
}

#[test]
fn truncated_withdrawn_route_is_3_10() {
    let m = with_header(2, &hex("0002 18 0a 0000"));
    assert_eq!(
        notification(&m, &as4()),
        (3, update_subcode::INVALID_NETWORK_FIELD, vec![])
    );
}

#[test]
fn malformed_mp_reach_nlri_is_3_10() {
    // IPv6 prefix length 129.
    let m = with_header(
        2,
        &hex("0000 0019 80 0e 16 0002 01 10 20010db8000000000000000000000001 00 81"),
    );
    assert_eq!(notification(&m, &as4()), (3, 10, vec![]));
}

#[test]
fn mp_reach_twice_is_3_1() {
    // RFC 7606 §3 g.
    let one = "80 0f 03 0002 01";
    let m = with_header(2, &hex(&format!("0000 000c {one} {one}")));
    assert_eq!(
        notification(&m, &as4()),
        (3, update_subcode::MALFORMED_ATTRIBUTE_LIST, vec![])
    );
}

// --- RFC 7313 §5 ROUTE-REFRESH Message Error ---

#[test]
fn route_refresh_of_wrong_length_is_7_1_with_the_whole_message() {
    let m = with_header(5, &hex("0001 00 01 ff"));
    assert_eq!(notification(&m, &as4()), (7, 1, m.clone()));
}

// --- RFC 6608 / RFC 9003 helpers ---

#[test]
fn fsm_error_carries_the_message_type() {
    let n = Notification::fsm_unexpected(
        error::fsm_subcode::UNEXPECTED_MESSAGE_IN_OPEN_SENT,
        MessageType::UPDATE,
    );
    assert_eq!((n.code.0, n.subcode, n.data.clone()), (5, 1, vec![2]));
    assert_eq!(
        n.name(),
        "Finite State Machine Error / Receive Unexpected Message in OpenSent State"
    );
}

#[test]
fn shutdown_communication_errors_are_reported() {
    let too_long = "x".repeat(256);
    assert!(Notification::cease_with_communication(2, &too_long).is_err());
    let truncated = Notification {
        code: ErrorCode::CEASE,
        subcode: 4,
        data: vec![5, b'a'],
    };
    assert!(matches!(
        truncated.shutdown_communication(),
        Some(Err(ShutdownCommunicationError::Truncated {
            claimed: 5,
            available: 1
        }))
    ));
    let not_utf8 = Notification {
        code: ErrorCode::CEASE,
        subcode: 2,
        data: vec![1, 0xff],
    };
    assert_eq!(
        not_utf8.shutdown_communication(),
        Some(Err(ShutdownCommunicationError::NotUtf8))
    );
    assert_eq!(Notification::cease(3).shutdown_communication(), None);
}

#[test]
fn every_named_subcode_is_in_the_name_table_once() {
    let mut seen = std::collections::HashSet::new();
    for (code, sub, name) in error::SUBCODE_NAMES {
        assert!(seen.insert((code, sub)), "duplicate {code}/{sub}");
        assert!(
            ErrorCode(*code).name().is_some(),
            "{name}: code {code} unnamed"
        );
    }
}
