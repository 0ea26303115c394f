//! RFC 7606 classification: each row is one attribute error and the action the RFC requires.
//! The UPDATE carries IPv4 NLRI so treat-as-withdraw has something to withdraw.

use ferrolb_bgp::wire::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| (b as char).to_digit(16).expect("hex digit") as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// Valid ORIGIN, AS_PATH (4-octet, 65001), NEXT_HOP 10.0.0.1.
const BASE: &str = "40010100 4002060201 0000fde9 4003040a000001";
/// NLRI 10.1.0.0/16.
const NLRI: &str = "100a01";

fn update_with(extra_attrs: &str) -> Vec<u8> {
    let attrs = hex(&format!("{BASE} {extra_attrs}"));
    let nlri = hex(NLRI);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&nlri);
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&body);
    m
}

fn decode_update(bytes: &[u8]) -> Update {
    match decode_message(bytes, &DecodeCtx::modern()) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

#[test]
fn attribute_errors_are_classified_as_rfc7606_prescribes() {
    use ErrorAction::{AttributeDiscard as Discard, TreatAsWithdraw as Withdraw};
    // (description, extra attribute bytes appended after the valid base, expected strongest)
    let table: &[(&str, &str, ErrorAction, AttrType)] = &[
        // §7.4: MED length 3.
        (
            "MED length 3",
            "800403000001",
            Withdraw,
            AttrType::MULTI_EXIT_DISC,
        ),
        // §7.5: LOCAL_PREF length 2.
        (
            "LOCAL_PREF length 2",
            "4005020001",
            Withdraw,
            AttrType::LOCAL_PREF,
        ),
        // §7.6: ATOMIC_AGGREGATE length 1 -> attribute discard.
        (
            "ATOMIC_AGGREGATE length 1",
            "40060100",
            Discard,
            AttrType::ATOMIC_AGGREGATE,
        ),
        // §7.7: AGGREGATOR length 6 with 4-octet AS negotiated -> attribute discard.
        (
            "AGGREGATOR length 6",
            "c00706fde90a000001",
            Discard,
            AttrType::AGGREGATOR,
        ),
        // §7.8: COMMUNITIES length 3.
        (
            "COMMUNITIES length 3",
            "c00803000001",
            Withdraw,
            AttrType::COMMUNITIES,
        ),
        // §7.14: EXTENDED COMMUNITIES length 4.
        (
            "EXT COMMUNITIES length 4",
            "c0100400000001",
            Withdraw,
            AttrType::EXTENDED_COMMUNITIES,
        ),
        // RFC 8092 §6: LARGE_COMMUNITY length 8.
        (
            "LARGE length 8",
            "c020080000000100000002",
            Withdraw,
            AttrType::LARGE_COMMUNITIES,
        ),
        // §3 c: MED sent as well-known (flags 0x40) -> flags conflict.
        (
            "MED with well-known flags",
            "400404 00000001",
            Withdraw,
            AttrType::MULTI_EXIT_DISC,
        ),
        // §3 g: a second COMMUNITIES is discarded.
        (
            "duplicate COMMUNITIES",
            "c00804ffffff01 c00804ffffff02",
            Discard,
            AttrType::COMMUNITIES,
        ),
        // RFC 6793 §3: AS4_PATH between two 4-octet speakers is discarded.
        (
            "AS4_PATH from NEW speaker",
            "c0110602010000fde9",
            Discard,
            AttrType::AS4_PATH,
        ),
        // §4: attribute length overruns the attribute field.
        (
            "length overrun",
            "c00810ffffff01",
            Withdraw,
            AttrType::COMMUNITIES,
        ),
        // §4: fewer than 3 octets left for an attribute header.
        ("truncated header", "c0", Withdraw, AttrType(0)),
    ];
    for (what, extra, action, attr) in table {
        let u = decode_update(&update_with(extra));
        assert_eq!(
            u.strongest_action(),
            Some(*action),
            "{what}: {:?}",
            u.attribute_errors
        );
        assert!(
            u.attribute_errors
                .iter()
                .any(|e| e.attr_type == *attr && e.action == *action),
            "{what}: findings {:?}",
            u.attribute_errors
        );
        assert_eq!(u.treat_as_withdraw, *action == Withdraw, "{what}");
        // The NLRI is still decoded so it can be withdrawn (RFC 7606 §2).
        assert_eq!(u.nlri, vec!["10.1.0.0/16".parse().unwrap()], "{what}");
    }
}

#[test]
fn malformed_origin_and_as_path_are_treat_as_withdraw() {
    // §7.1: ORIGIN value 3 is undefined. Build without BASE's ORIGIN by replacing it.
    let bad_origin = update_with("");
    let mut m = bad_origin.clone();
    // ORIGIN value octet: header 19 + withdrawn len 2 + attr len 2 + flags/type/len 3.
    m[19 + 2 + 2 + 3] = 3;
    let u = decode_update(&m);
    assert!(u.treat_as_withdraw);
    assert_eq!(u.attribute_errors[0].attr_type, AttrType::ORIGIN);
    assert_eq!(u.attrs.origin, None);

    // §7.2: AS_PATH segment type 5 is unrecognised.
    let mut m = bad_origin;
    m[19 + 2 + 2 + 4 + 3] = 5;
    let u = decode_update(&m);
    assert!(u.treat_as_withdraw);
    assert_eq!(u.attribute_errors[0].attr_type, AttrType::AS_PATH);
}

#[test]
fn as_path_segment_of_length_zero_is_malformed() {
    // §7.2: "It has a Path Segment Length field of zero."
    let attrs = hex("40010100 40020202 00 4003040a000001");
    let mut body = vec![0, 0, 0, attrs.len() as u8];
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&hex(NLRI));
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((body.len() + 19) as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&body);
    let u = decode_update(&m);
    assert!(u.treat_as_withdraw);
    assert_eq!(u.attribute_errors[0].attr_type, AttrType::AS_PATH);
}

#[test]
fn strongest_action_wins() {
    assert!(ErrorAction::AttributeDiscard < ErrorAction::TreatAsWithdraw);
    assert!(ErrorAction::TreatAsWithdraw < ErrorAction::SessionReset);
    // A discard and a treat-as-withdraw in one UPDATE: treat-as-withdraw wins.
    let u = decode_update(&update_with("40060100 800403000001"));
    assert_eq!(u.attribute_errors.len(), 2);
    assert_eq!(u.strongest_action(), Some(ErrorAction::TreatAsWithdraw));
}

#[test]
fn unknown_optional_attributes_are_kept_and_partial_is_set_on_readvertisement() {
    // Optional transitive type 99 and optional non-transitive type 98.
    let u = decode_update(&update_with("c06302abcd 806201ee"));
    assert!(u.attribute_errors.is_empty());
    assert_eq!(u.attrs.unknown.len(), 2);
    assert_eq!(u.attrs.unknown[0].type_code, AttrType(98));
    let again = u.attrs.readvertised();
    assert_eq!(again.unknown.len(), 1, "non-transitive dropped");
    assert_eq!(again.unknown[0].flags, 0xc0 | 0x20, "Partial set");
    assert_eq!(again.unknown[0].value, vec![0xab, 0xcd]);
}

#[test]
fn mp_reach_for_an_unsupported_family_is_discarded() {
    // AFI 25 (L2VPN) SAFI 70 (EVPN): not decoded here, ignored with a finding.
    let u = decode_update(&update_with("800e0b 0019 46 04 0a000001 00 0000"));
    assert_eq!(u.mp_reach, None);
    assert_eq!(u.strongest_action(), Some(ErrorAction::AttributeDiscard));
}

#[test]
fn validate_flags_families_not_negotiated() {
    let ctx = DecodeCtx::default(); // IPv4 unicast only
    let update = Update::end_of_rib(Family::IPV6_UNICAST);
    let findings = update.validate(&ctx);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].attr_type, AttrType::MP_UNREACH_NLRI);
    assert!(update.validate(&DecodeCtx::modern()).is_empty());
}

#[test]
fn mp_reach_ipv6_with_an_ipv4_next_hop_is_malformed_and_resets_the_session() {
    // Found by the fuzz smoke: AFI 2 SAFI 1 with a 4-octet next hop decoded, then could not be
    // re-encoded. RFC 7606 §7.11: a next hop length inconsistent with the AFI is malformed
    // (session reset, 3/9 with the attribute as data); RFC 2545 §3 wants 16 or 32 octets.
    let bytes = update_with("800e0e 0002 01 04 0a000001 00 2020010db8");
    match decode_message(&bytes, &DecodeCtx::modern()) {
        Err(e) => {
            let n = &e.notification;
            assert_eq!((n.code.0, n.subcode), (3, 9), "{e}");
            assert_eq!(e.field, "update.path_attributes.mp");
        }
        other => panic!("expected a session reset, got {other:?}"),
    }
    let ok = update_with("800e1a 0002 01 10 20010db8000000000000000000000001 00 2020010db8");
    assert!(
        decode_update(&ok).mp_reach.is_some(),
        "a 16-octet next hop stays valid"
    );
}

#[test]
fn mp_reach_ipv4_with_an_ipv6_next_hop_stays_valid() {
    // RFC 8950: IPv4 NLRI over an IPv6 next hop is legitimate.
    let u = decode_update(&update_with(
        "800e19 0001 01 10 20010db8000000000000000000000001 00 18c63364",
    ));
    assert!(u.attribute_errors.is_empty(), "{:?}", u.attribute_errors);
    assert!(u.mp_reach.is_some());
}
