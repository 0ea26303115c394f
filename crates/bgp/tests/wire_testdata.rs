//! Replays the vectors in `testdata/vectors` (see its README): valid ones round-trip byte for
//! byte, malformed ones give the expected NOTIFICATION.

use std::fs;
use std::path::{Path, PathBuf};

use ferrolb_bgp::wire::*;

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/vectors")
        .join(sub)
}

fn read_hex(path: &Path) -> Vec<u8> {
    let text = fs::read_to_string(path).unwrap();
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| (b as char).to_digit(16).expect("hex digit") as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

fn ctx_for(name: &str) -> DecodeCtx {
    if name.contains("as2") {
        DecodeCtx::default()
    } else {
        DecodeCtx::modern()
    }
}

#[test]
fn valid_vectors_round_trip_byte_for_byte() {
    let mut count = 0;
    for entry in fs::read_dir(dir("valid")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let bytes = read_hex(&path);
        let ctx = ctx_for(&name);
        let m = decode_message(&bytes, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Message::Update(u) = &m {
            assert!(
                u.attribute_errors.is_empty(),
                "{name}: {:?}",
                u.attribute_errors
            );
        }
        assert_eq!(
            m.to_bytes(&ctx).unwrap().to_vec(),
            bytes,
            "{name}: re-encoding differs"
        );
        count += 1;
    }
    assert!(count >= 10, "only {count} vectors found");
}

#[test]
fn malformed_vectors_give_the_expected_notification() {
    let expected = fs::read_to_string(dir("malformed").join("EXPECTED.tsv")).unwrap();
    let mut count = 0;
    for line in expected.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [name, code, subcode, data] = cols[..] else {
            panic!("bad row {line:?}")
        };
        let bytes = read_hex(&dir("malformed").join(format!("{name}.hex")));
        let err = decode_message(&bytes, &ctx_for(name)).expect_err(name);
        let n = err.notification;
        assert_eq!(n.code.0.to_string(), code, "{name}");
        assert_eq!(n.subcode.to_string(), subcode, "{name}");
        let hex: String = n.data.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, data, "{name}");
        count += 1;
    }
    assert!(count >= 10);
}
