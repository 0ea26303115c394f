//! Writes the seed corpus of the gossip fuzz targets (see corpus/README.md).
//!
//! Run from crates/gossip/fuzz: `cargo run --example gen_corpus`. A three-speaker cluster
//! (a, b, c, all with the secret) gossips on a virtual clock through a join, lossy links that
//! force indirect probes, a crash and a graceful leave; every datagram that reaches "a" (the
//! speaker the targets fuzz) becomes a seed, a few per foca message kind. Deterministic:
//! re-running rewrites the same files.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ferrolb_gossip::auth;
use ferrolb_gossip::foca::{Codec, PostcardCodec};
use ferrolb_gossip::identity::MemberId;
use ferrolb_gossip_fuzz::{
    encode_input, key, known_peer, stranger, us, Node, MODE_KEYED, MODE_SEAL,
};

const STEP: Duration = Duration::from_millis(10);
const END: Duration = Duration::from_secs(3);
/// Seeds kept per message kind.
const PER_KIND: usize = 2;
/// Delivery rounds per step; each round answers the previous one's datagrams.
const MAX_ROUNDS: usize = 32;

/// Which links drop datagrams at `t`, and whether c has crashed.
fn link_up(t: Duration, from: &str, to: &str) -> bool {
    let pair = |x: &str, y: &str| (from == x && to == y) || (from == y && to == x);
    let ms = t.as_millis();
    match ms {
        // a <-> c lossy: a's probes of c go indirect through b (PingReq, IndirectPing,
        // IndirectAck, ForwardedAck).
        1000..1500 => !pair("a", "c"),
        // b <-> c lossy: b asks a to probe c.
        1500..2000 => !pair("b", "c"),
        // c crashed: suspicion, then down.
        _ if ms >= 2000 => from != "c" && to != "c",
        _ => true,
    }
}

fn kind(payload: &[u8]) -> String {
    let mut buf = payload;
    match Codec::<MemberId>::decode_header(&mut PostcardCodec, &mut buf) {
        Ok(header) => format!("{:?}", header.message)
            .split(|c: char| !c.is_ascii_alphanumeric())
            .next()
            .unwrap_or("unknown")
            .to_ascii_lowercase(),
        Err(_) => "undecodable".to_string(),
    }
}

/// Runs the cluster and returns the foca payloads that reached "a", in order.
fn simulate() -> Vec<Vec<u8>> {
    let mut nodes: BTreeMap<String, Node> = [(us(), 1), (known_peer(), 2), (stranger(), 3)]
        .into_iter()
        .map(|(id, seed)| (id.node.clone(), Node::new(id, Some(key()), seed)))
        .collect();
    let by_addr: BTreeMap<SocketAddr, String> = nodes
        .values()
        .map(|n| (n.id.addr, n.id.node.clone()))
        .collect();
    let mut to_a = Vec::new();
    if let Some(b) = nodes.get_mut("b") {
        b.announce(us());
    }
    if let Some(c) = nodes.get_mut("c") {
        c.announce(us());
    }
    let mut t = Duration::ZERO;
    let mut b_left = false;
    while t <= END {
        if !b_left && t >= Duration::from_millis(2500) {
            if let Some(b) = nodes.get_mut("b") {
                b.leave();
            }
            b_left = true;
        }
        for _ in 0..MAX_ROUNDS {
            let mut in_flight = Vec::new();
            for node in nodes.values_mut() {
                for (to, datagram) in node.outbox.drain(..) {
                    in_flight.push((node.id.node.clone(), to.addr, datagram));
                }
            }
            if in_flight.is_empty() {
                break;
            }
            for (from, to, datagram) in in_flight {
                let Some(to) = by_addr.get(&to) else { continue };
                if !link_up(t, &from, to) || (b_left && (from == "b" || to == "b")) {
                    continue;
                }
                if to == "a" {
                    if let Ok(payload) = auth::open(Some(&key()), &datagram) {
                        to_a.push(payload.to_vec());
                    }
                }
                if let Some(node) = nodes.get_mut(to) {
                    node.receive(&datagram);
                }
            }
        }
        t += STEP;
        for (name, node) in nodes.iter_mut() {
            let crashed = name == "c" && t >= Duration::from_millis(2000);
            let gone = name == "b" && b_left;
            if !crashed && !gone {
                node.advance(t, 1000);
            }
        }
    }
    to_a
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let open_dir = root.join("gossip_open");
    let datagram_dir = root.join("gossip_datagram");
    for dir in [&open_dir, &datagram_dir] {
        // Only this generator writes here: start clean so dropped seeds do not linger.
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    let key = key();
    let payloads = simulate();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for payload in &payloads {
        let kind = kind(payload);
        let n = seen.entry(kind.clone()).or_default();
        if *n >= PER_KIND {
            continue;
        }
        let keyed_wire = auth::seal(Some(&key), payload);
        write(
            &datagram_dir,
            &format!("keyed_sealed_{kind}_{n}"),
            &encode_input(MODE_KEYED | MODE_SEAL, &[payload]),
        );
        if *n == 0 {
            let unkeyed_wire = auth::seal(None, payload);
            write(
                &datagram_dir,
                &format!("keyed_wire_{kind}"),
                &encode_input(MODE_KEYED, &[&keyed_wire]),
            );
            write(
                &datagram_dir,
                &format!("unkeyed_sealed_{kind}"),
                &encode_input(MODE_SEAL, &[payload]),
            );
            write(&open_dir, &format!("keyed_{kind}"), &keyed_wire);
            write(&open_dir, &format!("unkeyed_{kind}"), &unkeyed_wire);
        }
        *n += 1;
    }
    let conversation: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    write(
        &datagram_dir,
        "keyed_sealed_conversation",
        &encode_input(MODE_KEYED | MODE_SEAL, &conversation),
    );
    // Envelope errors, one per `EnvelopeError` variant that needs no valid tag.
    for (name, bytes) in [
        ("empty", &b""[..]),
        ("too_short", b"FL\x01"),
        ("bad_magic", b"XX\x01\x00ping"),
        ("version_2", b"FL\x02\x00ping"),
        ("unknown_flags", b"FL\x01\x02ping"),
        ("tag_announced_short", b"FL\x01\x01short"),
        ("bad_tag", &auth::seal(Some(&key), b"ping")[..]),
    ] {
        let bytes = if name == "bad_tag" {
            let mut forged = bytes.to_vec();
            if let Some(last) = forged.last_mut() {
                *last ^= 1;
            }
            forged
        } else {
            bytes.to_vec()
        };
        write(&open_dir, name, &bytes);
    }
    println!(
        "{} payloads reached a; kinds: {:?}",
        payloads.len(),
        seen.iter().collect::<Vec<_>>()
    );
}
