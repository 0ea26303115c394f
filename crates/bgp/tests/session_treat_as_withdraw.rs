//! RFC 7606 treat-as-withdraw on a live session: a hand-driven peer sends UPDATEs whose
//! attribute errors call for it (a zero-length AS_PATH segment, ORIGIN 7, a 3-octet NEXT_HOP,
//! a missing NEXT_HOP) and one valid UPDATE. The session hands each bad one over flagged and
//! counted as withdrawn, and `ferrolb-bgp listen` prints its prefixes as withdrawals, as
//! `ferrolb-bgp decode` reports the same bytes.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrolb_bgp::event::{EventKind, SpeakerEvent};
use ferrolb_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::{Capability, DecodeCtx, Family, HoldTime, Message, Open};
use ferrolb_bgp::BgpCodec;
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc::Receiver;
use tokio_util::codec::Framed;

const BIN: &str = env!("CARGO_BIN_EXE_ferrolb-bgp");
const DEADLINE: Duration = Duration::from_secs(20);

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// ORIGIN IGP, AS_PATH [65003] (4-octet: `Open::new` offers the capability on both sides).
const ORIGIN: &str = "40 01 01 00";
const AS_PATH: &str = "40 02 06 02 01 0000fdeb";
const NEXT_HOP: &str = "40 03 04 c0000201";

/// UPDATE bodies with a treat-as-withdraw error, each announcing one prefix, by name.
fn bad_updates() -> Vec<(&'static str, &'static str, String)> {
    let body = |attrs: String, nlri: &str| {
        let attrs = hex(&attrs);
        format!("0000 {:04x} {} {nlri}", attrs.len(), hex_of(&attrs))
    };
    vec![
        (
            "zero-length AS_PATH segment (RFC 7606 §7.2)",
            "198.51.100.1/32",
            body(format!("{ORIGIN} 40 02 02 02 00 {NEXT_HOP}"), "20 c6336401"),
        ),
        (
            "ORIGIN 7 (RFC 7606 §7.1)",
            "198.51.100.2/32",
            body(format!("40 01 01 07 {AS_PATH} {NEXT_HOP}"), "20 c6336402"),
        ),
        (
            "3-octet NEXT_HOP (RFC 7606 §7.3)",
            "198.51.100.3/32",
            body(format!("{ORIGIN} {AS_PATH} 40 03 03 c00002"), "20 c6336403"),
        ),
        (
            "missing NEXT_HOP (RFC 7606 §3 d)",
            "198.51.100.4/32",
            body(format!("{ORIGIN} {AS_PATH}"), "20 c6336404"),
        ),
    ]
}

/// A valid UPDATE announcing 198.51.100.9/32.
fn good_update() -> String {
    let attrs = hex(&format!("{ORIGIN} {AS_PATH} {NEXT_HOP}"));
    format!("0000 {:04x} {} 20 c6336409", attrs.len(), hex_of(&attrs))
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A whole UPDATE message (header included) from its body in hex.
fn update_message(body: &str) -> Vec<u8> {
    let body = hex(body);
    let mut m = vec![0xff; 16];
    m.extend(u16::try_from(19 + body.len()).expect("len").to_be_bytes());
    m.push(2);
    m.extend(body);
    m
}

/// Connects from `from` to `port` on 127.0.0.1 as AS 65003, brings the session up, sends the
/// bad UPDATEs and the good one, and returns the connection (still open).
async fn raw_peer(from: Ipv4Addr, to: SocketAddr) -> Framed<TcpStream, BgpCodec> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(from), 0))
        .expect("bind");
    let stream = tokio::time::timeout(DEADLINE, socket.connect(to))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut framed = Framed::new(stream, BgpCodec::default());
    let ours = Open::new(
        65003,
        HoldTime::ZERO,
        Ipv4Addr::new(10, 0, 0, 3),
        vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
    );
    framed
        .send(Message::Open(ours.clone()))
        .await
        .expect("OPEN");
    let theirs = loop {
        match tokio::time::timeout(DEADLINE, framed.next()).await {
            Ok(Some(Ok(Ok(Message::Open(o))))) => break o,
            Ok(Some(Ok(Ok(Message::Keepalive)))) => {}
            other => panic!("expected OPEN, got {other:?}"),
        }
    };
    framed
        .codec_mut()
        .set_ctx(DecodeCtx::negotiate(&ours, &theirs));
    framed.send(Message::Keepalive).await.expect("KEEPALIVE");
    let mut bytes = Vec::new();
    for (_, _, body) in bad_updates() {
        bytes.extend(update_message(&body));
    }
    bytes.extend(update_message(&good_update()));
    framed.get_mut().write_all(&bytes).await.expect("UPDATEs");
    framed
}

async fn next_event(events: &mut Receiver<SpeakerEvent>) -> SpeakerEvent {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("event in time")
        .expect("speaker running")
}

#[test]
fn decode_calls_each_bad_update_treat_as_withdraw() {
    // The reference the session must agree with: `decode` on the same bytes.
    for (name, _, body) in bad_updates() {
        let mut child = Command::new(BIN)
            .args(["decode"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run decode");
        let line = format!("{}\n", hex_of(&update_message(&body)));
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), line.as_bytes())
            .expect("write hex");
        let out = child.wait_with_output().expect("decode output");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("\"treat_as_withdraw\":true"),
            "{name}: decode says {text}"
        );
    }
}

#[tokio::test]
async fn a_session_hands_bad_updates_over_as_withdrawn_and_counts_them_so() {
    let mut cfg = SpeakerConfig::new(65001);
    cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    cfg.listen = vec!["127.0.0.1:0".parse().expect("addr")];
    let mut template = PeerConfig::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    template.peer_as = None;
    template.passive = true;
    template.deliver_updates = true;
    cfg.accept_unknown = Some(template);
    let (speaker, mut events) = Speaker::start(cfg).await.expect("start");
    let port = speaker.listen_addrs()[0].port();
    let raw = raw_peer(
        Ipv4Addr::new(127, 0, 0, 41),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    )
    .await;

    let mut got = Vec::new();
    // Bounded: Up, then five UPDATEs; other events are skipped within the same count.
    for _ in 0..20 {
        if got.len() == 5 {
            break;
        }
        if let EventKind::UpdateReceived {
            announced,
            withdrawn,
            update: Some(u),
        } = next_event(&mut events).await.kind
        {
            got.push((announced, withdrawn, u.treat_as_withdraw));
        }
    }
    let bad = bad_updates().len();
    assert_eq!(got.len(), bad + 1, "{got:?}");
    for (i, (name, _, _)) in bad_updates().iter().enumerate() {
        assert_eq!(got[i], (0, 1, true), "{name}");
    }
    assert_eq!(got[bad], (1, 0, false), "the valid UPDATE");

    drop(raw);
    let counters = loop {
        if let EventKind::Messages {
            prefixes_received,
            prefixes_withdrawn,
            ..
        } = next_event(&mut events).await.kind
        {
            break (prefixes_received, prefixes_withdrawn);
        }
    };
    assert_eq!(counters, (1, bad as u64));
    speaker.shutdown("done", Duration::from_secs(2)).await;
}

/// Kills the child on drop so a failed assertion leaves no process behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next line of `rx` containing `needle`, within the deadline.
async fn line_with(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>, needle: &str) -> String {
    let wait = async {
        while let Some(l) = rx.recv().await {
            if l.contains(needle) {
                return l;
            }
        }
        panic!("stream ended before a line with {needle:?}");
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("no line with {needle:?}"))
}

fn lines(r: impl std::io::Read + Send + 'static) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test]
async fn listen_prints_bad_updates_as_withdrawals() {
    let mut child = Proc(
        Command::new(BIN)
            .args(["listen", "--listen", "127.0.0.1", "--port", "0"])
            .args(["--local-as", "65001"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn listen"),
    );
    let mut err = lines(child.0.stderr.take().expect("stderr"));
    let mut out = lines(child.0.stdout.take().expect("stdout"));
    let addr = line_with(&mut err, "listening on").await;
    let to: SocketAddr = addr
        .rsplit(' ')
        .next()
        .expect("address")
        .parse()
        .expect("socket address");
    let _raw = raw_peer(Ipv4Addr::new(127, 0, 0, 42), to).await;
    line_with(&mut out, "\"established\"").await;
    for (name, prefix, _) in bad_updates() {
        let l = line_with(&mut out, &format!("\"prefix\":\"{prefix}\"")).await;
        let v: serde_json::Value = serde_json::from_str(&l).expect("JSON line");
        assert_eq!(v["event"], "withdraw", "{name}: {l}");
        assert_eq!(v["treat_as_withdraw"], true, "{name}: {l}");
    }
    let l = line_with(&mut out, "\"prefix\":\"198.51.100.9/32\"").await;
    let v: serde_json::Value = serde_json::from_str(&l).expect("JSON line");
    assert_eq!(v["event"], "announce", "{l}");
}
