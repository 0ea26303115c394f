//! A per-peer local AS (FRR's `neighbor X local-as N no-prepend replace-as`, which MetalLB's FRR
//! mode writes for `spec.localASN`) against a hand-driven peer over loopback: the OPEN carries
//! the peer's local AS, and the AS_PATH of our routes is that AS alone.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_bgp::rib::{Route, Routes};
use ferrolb_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::{AsPath, Capability, DecodeCtx, Family, HoldTime, Message, Open};
use ferrolb_bgp::BgpCodec;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

const DEADLINE: Duration = Duration::from_secs(10);
const SPEAKER_AS: u32 = 65001;
const LOCAL_AS: u32 = 4_200_000_100;
const PEER_AS: u32 = 65003;

async fn next(framed: &mut Framed<TcpStream, BgpCodec>) -> Message {
    match tokio::time::timeout(DEADLINE, framed.next()).await {
        Ok(Some(Ok(Ok(m)))) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Our speaker connects to a listener played by the test; returns the framed connection after
/// the OPEN exchange, with our speaker's OPEN.
async fn session(peer_as: u32, local_as: Option<u32>) -> (Framed<TcpStream, BgpCodec>, Open) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (speaker, _events) = Speaker::start(SpeakerConfig::new(SPEAKER_AS))
        .await
        .expect("start");
    let mut peer = PeerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), peer_as);
    peer.port = port;
    peer.ipv6 = false;
    peer.hold_time = 0;
    peer.local_as = local_as;
    speaker.set_peers(vec![peer]).expect("peers");
    let mut routes = Routes::new();
    routes.insert(
        "198.51.100.1/32".parse().expect("net"),
        Arc::new(Route::default()),
    );
    speaker.set_routes(routes);
    // The speaker task lives as long as the handle; leak it for the test's duration.
    std::mem::forget(speaker);

    let (stream, _) = tokio::time::timeout(DEADLINE, listener.accept())
        .await
        .expect("connected in time")
        .expect("accept");
    let mut framed = Framed::new(stream, BgpCodec::default());
    let ours = Open::new(
        peer_as,
        HoldTime::ZERO,
        Ipv4Addr::new(10, 0, 0, 3),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(peer_as),
        ],
    );
    let Message::Open(theirs) = next(&mut framed).await else {
        panic!("expected OPEN first");
    };
    framed
        .send(Message::Open(ours.clone()))
        .await
        .expect("send OPEN");
    framed
        .codec_mut()
        .set_ctx(DecodeCtx::negotiate(&ours, &theirs));
    framed.send(Message::Keepalive).await.expect("KEEPALIVE");
    assert_eq!(next(&mut framed).await, Message::Keepalive);
    (framed, theirs)
}

/// The AS_PATH of the first UPDATE that announces something.
async fn first_as_path(framed: &mut Framed<TcpStream, BgpCodec>) -> Option<AsPath> {
    // Bounded: the table is one prefix, announced before End-of-RIB.
    for _ in 0..10 {
        match next(framed).await {
            Message::Update(u) if u.announced().next().is_some() => return u.attrs.as_path,
            Message::Update(_) | Message::Keepalive => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("no announcement within 10 messages");
}

#[tokio::test]
async fn local_as_is_in_the_open_and_alone_in_the_as_path() {
    let (mut framed, open) = session(PEER_AS, Some(LOCAL_AS)).await;
    assert_eq!(open.asn(), LOCAL_AS, "OPEN speaks as the peer's local AS");
    // replace-as: the speaker's own AS is not prepended after the local AS.
    assert_eq!(
        first_as_path(&mut framed).await,
        Some(AsPath::sequence([LOCAL_AS]))
    );
}

#[tokio::test]
async fn without_local_as_the_speaker_as_is_used() {
    let (mut framed, open) = session(PEER_AS, None).await;
    assert_eq!(open.asn(), SPEAKER_AS);
    assert_eq!(
        first_as_path(&mut framed).await,
        Some(AsPath::sequence([SPEAKER_AS]))
    );
}

#[tokio::test]
async fn a_peer_in_the_local_as_is_ibgp_with_an_empty_as_path() {
    let (mut framed, open) = session(LOCAL_AS, Some(LOCAL_AS)).await;
    assert_eq!(open.asn(), LOCAL_AS);
    // RFC 4271 §5.1.2: an originated route towards iBGP has an empty AS_PATH.
    assert_eq!(first_as_path(&mut framed).await, Some(AsPath::default()));
}
