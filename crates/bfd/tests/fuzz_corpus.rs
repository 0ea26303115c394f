//! Replays the fuzz seed corpus (crates/bfd/fuzz/corpus) through the fuzz targets' checks
//! on stable Rust, so every seed (and every crasher added to the corpus) stays a test.

#[allow(dead_code)]
#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("corpus entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        check(&data);
        n += 1;
    }
    assert!(n >= 10, "{target}: only {n} seeds in {}", dir.display());
}

#[test]
fn decode_packet_corpus_replays() {
    replay("decode_packet", checks::check_decode_packet);
}

#[test]
fn session_step_corpus_replays() {
    replay("session_step", checks::check_session_step);
}
