//! Our speaker against a hand-driven peer (a `Framed` socket in the test) over loopback: passive
//! accept, Graceful Restart capability with the Restart State bit after a restart, hold time 0,
//! End-of-RIB, and ROUTE-REFRESH re-sending the Adj-RIB-Out.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_bgp::rib::{Route, Routes};
use ferrolb_bgp::speaker::{GracefulRestartConfig, PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::{
    Afi, Capability, DecodeCtx, Family, GracefulRestart, GracefulRestartFamily, HoldTime, Message,
    Open, RouteRefresh, Safi,
};
use ferrolb_bgp::BgpCodec;
use futures::{SinkExt, StreamExt};
use ipnet::IpNet;
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::Framed;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const DEADLINE: Duration = Duration::from_secs(10);

async fn next(framed: &mut Framed<TcpStream, BgpCodec>) -> Message {
    match tokio::time::timeout(DEADLINE, framed.next()).await {
        Ok(Some(Ok(Ok(m)))) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Reads UPDATEs until End-of-RIB (IPv4), returning the prefixes announced.
async fn table_until_eor(framed: &mut Framed<TcpStream, BgpCodec>) -> BTreeSet<IpNet> {
    let mut got = BTreeSet::new();
    // Bounded: at most 100 messages before End-of-RIB.
    for _ in 0..100 {
        match next(framed).await {
            Message::Update(u) if u.end_of_rib_family().is_some() => return got,
            Message::Update(u) => got.extend(u.announced()),
            Message::Keepalive => panic!("KEEPALIVE sent although the hold time is 0"),
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("no End-of-RIB within 100 messages");
}

#[tokio::test]
async fn restarted_speaker_sets_r_bit_sends_eor_and_answers_route_refresh() {
    let mut cfg = SpeakerConfig::new(65001);
    cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    cfg.listen = vec!["127.0.0.1:0".parse().expect("addr")];
    cfg.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarted: true,
    });
    let (speaker, _events) = Speaker::start(cfg).await.expect("start");
    let port = speaker.listen_addrs().first().expect("listening").port();
    let mut peer = PeerConfig::new(CLIENT, 65003);
    peer.passive = true;
    speaker.set_peers(vec![peer]).expect("peers");
    let mut routes = Routes::new();
    for p in ["198.51.100.1/32", "198.51.100.2/32"] {
        routes.insert(p.parse().expect("net"), Arc::new(Route::default()));
    }
    speaker.set_routes(routes.clone());

    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(CLIENT, 0))
        .expect("bind 127.0.0.3");
    let stream = socket
        .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .await
        .expect("connect");
    let mut framed = Framed::new(stream, BgpCodec::default());
    let ours = Open::new(
        65003,
        HoldTime::ZERO,
        Ipv4Addr::new(10, 0, 0, 3),
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
        ],
    );
    framed
        .send(Message::Open(ours.clone()))
        .await
        .expect("send OPEN");
    let Message::Open(theirs) = next(&mut framed).await else {
        panic!("expected OPEN first");
    };
    let gr = theirs
        .capabilities
        .iter()
        .find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr.clone()),
            _ => None,
        })
        .expect("Graceful Restart capability");
    assert_eq!(gr.restart_time, 120);
    assert_ne!(
        gr.restart_flags & GracefulRestart::RESTART_STATE,
        0,
        "R bit after restart"
    );
    // `all` is vacuously true on an empty list: the F bits need families to sit on.
    assert!(!gr.families.is_empty(), "GR capability lists no families");
    assert!(gr
        .families
        .iter()
        .all(|f| f.flags & GracefulRestartFamily::FORWARDING_STATE != 0));
    assert!(theirs.capabilities.contains(&Capability::RouteRefresh));
    framed
        .codec_mut()
        .set_ctx(DecodeCtx::negotiate(&ours, &theirs));
    framed
        .send(Message::Keepalive)
        .await
        .expect("send KEEPALIVE");
    assert_eq!(next(&mut framed).await, Message::Keepalive);

    let want: BTreeSet<IpNet> = routes.keys().copied().collect();
    assert_eq!(table_until_eor(&mut framed).await, want);

    // RFC 2918 §4: the whole Adj-RIB-Out again.
    framed
        .send(Message::RouteRefresh(RouteRefresh::request(
            Afi::IPV4,
            Safi::UNICAST,
        )))
        .await
        .expect("send ROUTE-REFRESH");
    let mut again = BTreeSet::new();
    while again.len() < want.len() {
        match next(&mut framed).await {
            Message::Update(u) => again.extend(u.announced()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(again, want);
    speaker.shutdown("done", Duration::from_secs(5)).await;
    let Message::Notification(n) = next(&mut framed).await else {
        panic!("expected the Cease");
    };
    assert_eq!((n.code.0, n.subcode), (6, 2));
}
