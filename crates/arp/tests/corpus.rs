//! Replays the fuzz seed corpus (`fuzz/corpus/*`, see its README) through the parser and the
//! reply decision on stable Rust, so every seed and every crasher saved there is a regression
//! test even where cargo-fuzz cannot run.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ferrolb_arp::respond::respond;
use ferrolb_arp::wire::{encode_frame, parse_frame, Frame, MacAddr, NdpMessage};

const OUR_MAC: MacAddr = MacAddr([0x02, 0xfe, 0, 0, 0, 1]);

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).expect("read seed"))
        })
        .collect()
}

/// Error label the parser must return for each seed that is malformed on purpose; every other
/// named seed must parse.
fn expected_error(seed: &str) -> Option<&'static str> {
    match seed {
        "ns_zero_length_option" => Some("zero_length_option"),
        "truncated_ipv6_header" => Some("truncated"),
        "short_ipv6_payload" => Some("bad_payload_length"),
        _ => None,
    }
}

#[test]
fn parse_frame_corpus_replays() {
    let seeds = corpus("parse_frame");
    assert!(
        seeds.len() >= 10,
        "seed corpus went missing: {}",
        seeds.len()
    );
    for (name, bytes) in seeds {
        let parsed = parse_frame(&bytes);
        // Hash-named files are inputs libFuzzer added; only named seeds have expectations.
        if name.len() == 40 && name.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        match (expected_error(&name), parsed) {
            (None, Ok(frame)) => {
                assert_eq!(parse_frame(&encode_frame(&frame)), Ok(frame), "{name}");
            }
            (Some(label), Err(e)) => assert_eq!(e.metric_label(), label, "{name}"),
            (want, got) => panic!("{name}: expected error {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn respond_corpus_replays() {
    let mut answered = BTreeSet::new();
    for (name, data) in corpus("respond") {
        let Some((selector, bytes)) = data.split_first() else {
            continue;
        };
        let Ok(frame) = parse_frame(bytes) else {
            continue;
        };
        let target = match &frame {
            Frame::Arp { arp, .. } => IpAddr::V4(arp.target_ip),
            Frame::Ndp { msg, .. } => match msg {
                NdpMessage::NeighborSolicitation(ns) => IpAddr::V6(ns.target),
                NdpMessage::NeighborAdvertisement(na) => IpAddr::V6(na.target),
            },
        };
        let vips: BTreeSet<IpAddr> = if selector & 1 == 1 {
            [target].into()
        } else {
            BTreeSet::new()
        };
        if let Some(reply) = respond(&frame, &vips, OUR_MAC) {
            assert_eq!(reply.eth().src, OUR_MAC, "{name}");
            answered.insert(name);
        }
    }
    let want: BTreeSet<String> = [
        "arp_probe",
        "arp_request",
        "arp_request_padded",
        "ns_dad",
        "ns_nud_no_slla",
        "ns_resolution",
        "ns_unknown_option",
    ]
    .map(String::from)
    .into();
    assert_eq!(answered, want);
}
