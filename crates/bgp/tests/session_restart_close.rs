//! `Speaker::shutdown_for_restart` against a hand-driven peer over loopback: with the N bit on
//! both sides the session closes with a Cease that keeps Graceful Restart (6/6, RFC 8538 §4);
//! towards a peer with Graceful Restart but no N bit the TCP connection closes without a
//! NOTIFICATION (RFC 4724 §4.2); a plain `shutdown` with N on both sides is a Hard Reset
//! (RFC 8538 §3).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrolb_bgp::rib::Routes;
use ferrolb_bgp::speaker::{GracefulRestartConfig, PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::error::cease_subcode;
use ferrolb_bgp::wire::{
    Capability, DecodeCtx, ErrorCode, Family, GracefulRestart, GracefulRestartFamily, HoldTime,
    Message, Open,
};
use ferrolb_bgp::BgpCodec;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::codec::Framed;

const DEADLINE: Duration = Duration::from_secs(10);

async fn next(framed: &mut Framed<TcpStream, BgpCodec>) -> Option<Message> {
    match tokio::time::timeout(DEADLINE, framed.next()).await {
        Ok(Some(Ok(Ok(m)))) => Some(m),
        Ok(None) => None,
        other => panic!("expected a message or EOF, got {other:?}"),
    }
}

/// A speaker with Graceful Restart and an Established session with a raw peer at `client`
/// whose OPEN carries Graceful Restart with `flags`; returns both ends.
async fn established(client: Ipv4Addr, flags: u8) -> (Speaker, Framed<TcpStream, BgpCodec>) {
    let mut cfg = SpeakerConfig::new(65001);
    cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    cfg.listen = vec!["127.0.0.1:0".parse().expect("addr")];
    cfg.graceful_restart = Some(GracefulRestartConfig {
        restart_time: 120,
        restarted: false,
    });
    let (speaker, _events) = Speaker::start(cfg).await.expect("start");
    let port = speaker.listen_addrs().first().expect("listening").port();
    let mut peer = PeerConfig::new(IpAddr::V4(client), 65003);
    peer.passive = true;
    peer.hold_time = 0;
    speaker.set_peers(vec![peer]).expect("peers");
    speaker.set_routes(Routes::new());

    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(client), 0))
        .expect("bind client address");
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
            Capability::GracefulRestart(GracefulRestart {
                restart_flags: flags,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV4_UNICAST,
                    flags: 0,
                }],
            }),
        ],
    );
    framed
        .send(Message::Open(ours.clone()))
        .await
        .expect("send OPEN");
    let Some(Message::Open(theirs)) = next(&mut framed).await else {
        panic!("expected OPEN first");
    };
    let n = theirs.capabilities.iter().any(|c| {
        matches!(c, Capability::GracefulRestart(gr)
            if gr.restart_flags & GracefulRestart::NOTIFICATION != 0)
    });
    assert!(n, "our Graceful Restart capability carries the N bit");
    framed
        .codec_mut()
        .set_ctx(DecodeCtx::negotiate(&ours, &theirs));
    framed
        .send(Message::Keepalive)
        .await
        .expect("send KEEPALIVE");
    assert_eq!(next(&mut framed).await, Some(Message::Keepalive));
    // The (empty) table's End-of-RIB: the session is Established.
    match next(&mut framed).await {
        Some(Message::Update(u)) if u.end_of_rib_family().is_some() => {}
        other => panic!("expected End-of-RIB, got {other:?}"),
    }
    (speaker, framed)
}

#[tokio::test]
async fn restart_with_n_on_both_sides_sends_cease_6_6() {
    let (speaker, mut framed) =
        established(Ipv4Addr::new(127, 0, 0, 11), GracefulRestart::NOTIFICATION).await;
    speaker
        .shutdown_for_restart("upgrade", Duration::from_secs(5))
        .await;
    let Some(Message::Notification(n)) = next(&mut framed).await else {
        panic!("expected a NOTIFICATION");
    };
    assert_eq!(
        (n.code, n.subcode),
        (ErrorCode::CEASE, cease_subcode::OTHER_CONFIGURATION_CHANGE)
    );
}

#[tokio::test]
async fn restart_towards_a_peer_without_n_closes_without_notification() {
    let (speaker, mut framed) = established(Ipv4Addr::new(127, 0, 0, 12), 0).await;
    speaker
        .shutdown_for_restart("upgrade", Duration::from_secs(5))
        .await;
    assert_eq!(next(&mut framed).await, None, "EOF, no NOTIFICATION");
}

#[tokio::test]
async fn shutdown_with_n_on_both_sides_is_a_hard_reset() {
    let (speaker, mut framed) =
        established(Ipv4Addr::new(127, 0, 0, 13), GracefulRestart::NOTIFICATION).await;
    speaker.shutdown("bye", Duration::from_secs(5)).await;
    let Some(Message::Notification(n)) = next(&mut framed).await else {
        panic!("expected a NOTIFICATION");
    };
    assert_eq!(
        (n.code, n.subcode),
        (ErrorCode::CEASE, cease_subcode::HARD_RESET)
    );
    assert_eq!(
        n.data.get(..2),
        Some(&[6, cease_subcode::ADMINISTRATIVE_SHUTDOWN][..])
    );
}
