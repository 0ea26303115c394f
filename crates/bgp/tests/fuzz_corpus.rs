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
