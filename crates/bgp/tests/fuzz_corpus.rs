//! Replays the checked-in fuzz corpus (`crates/bgp/fuzz/corpus/`) on stable Rust with the same
//! checks the cargo-fuzz targets run, plus any crash inputs kept in `fuzz/artifacts/`.
//! A crasher found by `scripts/fuzz-smoke.sh` becomes a named regression test below.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for dir in [
        root.join("corpus").join(target),
        root.join("artifacts").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.expect("dir entry").path()).collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("read corpus file");
            eprintln!("replaying {}", path.display());
            check(&data);
            count += 1;
        }
    }
    count
}

#[test]
fn decode_message_corpus_replays_without_failure() {
    let n = replay("decode_message", checks::check_decode_message);
    assert!(n >= 30, "seed corpus missing: {n} files");
}

#[test]
fn framing_corpus_replays_without_failure() {
    let n = replay("framing", checks::check_framing);
    assert!(n >= 5, "seed corpus missing: {n} files");
}

#[test]
fn framing_ends_the_stream_at_a_broken_marker() {
    // The property holds for a reason: a bad marker after a good message is reported once and
    // nothing after it is framed (RFC 4271 §6.1: 1/1, the stream cannot be resynchronised).
    let mut stream = vec![0xff; 16];
    stream.extend_from_slice(&[0, 19, 4]);
    stream.extend_from_slice(&[0u8; 19]);
    stream.extend_from_slice(&stream.clone()[..19]);
    let out = checks::frame(&stream, checks::ctx_of(1), 5);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(out[0], checks::Framed::Item(Ok(_))));
    match &out[1] {
        checks::Framed::End(Some(n)) => assert_eq!((n.code.0, n.subcode), (1, 1)),
        other => panic!("expected a broken frame, got {other:?}"),
    }
}

#[test]
fn regression_mp_reach_ipv6_with_a_4_octet_next_hop() {
    // scripts/fuzz-smoke.sh found this in CI (2026-11-23): MP_REACH_NLRI for IPv6 unicast with
    // a 4-octet next hop decoded, then failed to re-encode. It is now malformed (RFC 7606
    // §7.11), so decoding fails with a NOTIFICATION and the check has nothing to round-trip.
    let hex = concat!(
        "00ffffffffffffffffffffffffffffffff0075020000005e800e5b0002010400",
        "00000000000001200e010000000000001b010000000000000000003d10010000",
        "000000000000003d108020010d0100000000000000000000000000000000003d",
        "108020010d0100000000000000000000114002000000",
    );
    let data: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    checks::check_decode_message(&data);
    let ctx = checks::ctx_of(data[0]);
    let err = ferrolb_bgp::wire::decode_message(&data[1..], &ctx).expect_err("malformed");
    assert_eq!(err.field, "update.path_attributes.mp");
}
