//! Our speaker against hand-driven peers over loopback, for what must never stall or grow
//! without bound: a peer that stops reading (every write is bounded by the
//! hold time and still watches stop requests), a colliding connection that is slow to send its
//! OPEN (RFC 4271 §6.8 without blocking the first connection), which connection a collision
//! keeps, and sessions from unknown addresses (removed when they end, capped). No root needed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_bgp::event::{EventKind, SpeakerEvent};
use ferrolb_bgp::fsm::DownReason;
use ferrolb_bgp::rib::{Route, Routes};
use ferrolb_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::{
    Capability, DecodeCtx, EncodeCtx, Family, HoldTime, LargeCommunity, Message, Notification, Open,
};
use ferrolb_bgp::BgpCodec;
use futures::{SinkExt, StreamExt};
use ipnet::IpNet;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc::Receiver;
use tokio_util::codec::Framed;

const DEADLINE: Duration = Duration::from_secs(30);
const SPEAKER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

type Raw = Framed<TcpStream, BgpCodec>;

/// Waits for the first event matching `f`, failing after the deadline.
async fn wait_for<T>(
    rx: &mut Receiver<SpeakerEvent>,
    what: &str,
    mut f: impl FnMut(&SpeakerEvent) -> Option<T>,
) -> T {
    ferrolb_e2e::recv_until(rx, DEADLINE, what, |e| f(&e))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn next(framed: &mut Raw) -> Message {
    match tokio::time::timeout(DEADLINE, framed.next()).await {
        Ok(Some(Ok(Ok(m)))) => m,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Reads messages until a NOTIFICATION (bounded), returning it.
async fn notification(framed: &mut Raw) -> Notification {
    for _ in 0..100 {
        if let Message::Notification(n) = next(framed).await {
            return n;
        }
    }
    panic!("no NOTIFICATION within 100 messages");
}

/// A speaker (AS 65001) listening on 127.0.0.1 with `peers` passive (it never connects out).
async fn speaker(cfg: impl FnOnce(&mut SpeakerConfig)) -> (Speaker, Receiver<SpeakerEvent>, u16) {
    let mut c = SpeakerConfig::new(65001);
    c.router_id = Some(SPEAKER_ID);
    c.listen = vec!["127.0.0.1:0".parse().expect("addr")];
    cfg(&mut c);
    let (speaker, events) = Speaker::start(c).await.expect("start");
    let port = speaker.listen_addrs().first().expect("listening").port();
    (speaker, events, port)
}

fn passive(addr: IpAddr, hold_time: u16) -> PeerConfig {
    let mut p = PeerConfig::new(addr, 65002);
    p.passive = true;
    p.ipv6 = false;
    p.hold_time = hold_time;
    p
}

/// A TCP connection from `from` to the speaker; `rcvbuf` shrinks the receive window.
async fn connect(from: IpAddr, port: u16, rcvbuf: Option<u32>) -> Raw {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = rcvbuf {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    let stream = socket
        .connect(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        .await
        .expect("connect");
    Framed::new(stream, BgpCodec::default())
}

fn open(id: Ipv4Addr, hold: u16) -> Open {
    Open::new(
        65002,
        HoldTime::new(hold).expect("hold"),
        id,
        vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
    )
}

/// Drives `framed` to Established: OPEN both ways, KEEPALIVE both ways.
async fn establish(framed: &mut Raw, ours: Open) {
    framed
        .send(Message::Open(ours.clone()))
        .await
        .expect("send OPEN");
    let Message::Open(theirs) = next(framed).await else {
        panic!("expected the speaker's OPEN");
    };
    framed
        .codec_mut()
        .set_ctx(DecodeCtx::negotiate(&ours, &theirs));
    assert_eq!(next(framed).await, Message::Keepalive);
    framed
        .send(Message::Keepalive)
        .await
        .expect("send KEEPALIVE");
}

/// Routes whose UPDATEs are far larger than any socket buffer: each prefix has its own
/// attribute set of 300 large communities (about 3.7 KB), so one UPDATE per prefix.
fn bulky_routes(n: u32) -> Routes {
    (0..n)
        .map(|i| {
            let prefix = IpNet::from(IpAddr::V4(Ipv4Addr::from(0x0a64_0000 + i)));
            let large_communities = (0..300)
                .map(|j| LargeCommunity {
                    global_admin: 65001,
                    local_data_1: i,
                    local_data_2: j,
                })
                .collect();
            let route = Route {
                large_communities,
                ..Route::default()
            };
            (prefix, Arc::new(route))
        })
        .collect()
}

/// A session whose peer stops reading right after the first UPDATE while the speaker has
/// about 9 MB of UPDATEs to send: the speaker's writes fill the window and block.
async fn stalled_session(from: Ipv4Addr, hold: u16) -> (Speaker, Receiver<SpeakerEvent>, Raw) {
    let (speaker, mut events, port) = speaker(|_| {}).await;
    let peer = IpAddr::V4(from);
    speaker.set_peers(vec![passive(peer, hold)]).expect("peers");
    speaker.set_routes(bulky_routes(2500));
    let mut raw = connect(peer, port, Some(4096)).await;
    establish(&mut raw, open(Ipv4Addr::new(10, 0, 0, 2), hold)).await;
    wait_for(&mut events, "Established", |e| {
        matches!(e.kind, EventKind::Up { .. }).then_some(())
    })
    .await;
    // One UPDATE read shows the speaker is writing its first chunk (about 7.5 MB, more than
    // both socket buffers hold). From here on the peer reads nothing and sends nothing.
    let Message::Update(_) = next(&mut raw).await else {
        panic!("expected an UPDATE");
    };
    (speaker, events, raw)
}

#[tokio::test]
async fn a_peer_that_stops_reading_fails_on_the_hold_timer_instead_of_stalling_the_task() {
    let (speaker, mut events, raw) = stalled_session(Ipv4Addr::new(127, 0, 0, 21), 3).await;
    // RFC 4271 §8.2.2 Established, Event 10: the hold timer still runs while UPDATEs wait
    // for window space.
    let reason = wait_for(&mut events, "the session to go down", |e| match &e.kind {
        EventKind::Down { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(reason, DownReason::HoldTimerExpired);
    speaker.shutdown("done", Duration::from_secs(5)).await;
    let unsent = wait_for(&mut events, "the task's counters", |e| match &e.kind {
        EventKind::Messages {
            notifications_unsent,
            ..
        } => Some(*notifications_unsent),
        _ => None,
    })
    .await;
    // The 4/0 queued behind the stuck UPDATEs could not go out, and is not counted as sent.
    assert_eq!(unsent, 1);
    drop(raw);
}

#[tokio::test]
async fn a_stop_request_is_served_while_a_write_is_stalled_and_its_cease_is_counted_honestly() {
    // Hold time 0: no hold timer, so only the stop request can end the write early.
    let (speaker, mut events, mut raw) = stalled_session(Ipv4Addr::new(127, 0, 0, 22), 0).await;
    speaker
        .shutdown("maintenance", Duration::from_secs(10))
        .await;
    let reason = wait_for(&mut events, "the session to stop", |e| match &e.kind {
        EventKind::Down { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(matches!(reason, DownReason::Stopped(_)), "{reason:?}");
    let (sent, unsent) = wait_for(&mut events, "the task's counters", |e| match &e.kind {
        EventKind::Messages {
            sent,
            notifications_unsent,
            ..
        } => Some((*sent, *notifications_unsent)),
        _ => None,
    })
    .await;
    // The speaker's socket is closed now. Read what reached our side up to EOF (bounded: the
    // table is 2500 UPDATEs): the Cease arrived exactly when it was not counted as unsent.
    // Usually the buffers were full and it could not go out; when the stop came before they
    // filled up, it went out behind the UPDATEs already written.
    let mut cease_arrived = false;
    let mut messages = 1; // the UPDATE read by stalled_session
    for _ in 0..3000 {
        match tokio::time::timeout(DEADLINE, raw.next()).await {
            Ok(Some(Ok(Ok(m)))) => {
                messages += 1;
                if let Message::Notification(n) = m {
                    assert_eq!((n.code.0, n.subcode), (6, 2));
                    cease_arrived = true;
                }
            }
            // EOF, or the tail of an UPDATE cut off when the socket was dropped.
            Ok(_) => break,
            Err(_) => panic!("no EOF after the speaker closed"),
        }
    }
    assert_eq!(
        unsent,
        u64::from(!cease_arrived),
        "unsent {unsent}, Cease seen {cease_arrived}"
    );
    // OPEN, KEEPALIVE and every whole UPDATE that reached us were counted as sent, even those
    // of the abandoned write.
    assert!(sent >= messages + 2, "sent {sent}, received {messages}");
}

#[tokio::test]
async fn a_slow_colliding_connection_does_not_hold_up_the_first_one_and_gets_cease_6_7() {
    let (speaker, _events, port) = speaker(|_| {}).await;
    let peer = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 23));
    speaker.set_peers(vec![passive(peer, 90)]).expect("peers");
    speaker.set_routes(
        [(
            "198.51.100.1/32".parse().expect("net"),
            Arc::new(Route::default()),
        )]
        .into(),
    );

    let mut first = connect(peer, port, None).await;
    let Message::Open(_) = next(&mut first).await else {
        panic!("expected the speaker's OPEN on the first connection");
    };
    // The speaker is in OpenSent. A second connection from the same peer shows only the
    // first 10 octets of its OPEN for now.
    let mut second = connect(peer, port, None).await;
    let ours = open(Ipv4Addr::new(10, 0, 0, 200), 90);
    let mut bytes = bytes::BytesMut::new();
    Message::Open(ours)
        .encode(&EncodeCtx::default(), &mut bytes)
        .expect("encode OPEN");
    let (head, rest) = bytes.split_at(10);
    second.get_mut().write_all(head).await.expect("write head");

    // The first connection still gets served all the way to Established and its table.
    first
        .send(Message::Open(open(Ipv4Addr::new(10, 0, 0, 200), 90)))
        .await
        .expect("send OPEN");
    assert_eq!(next(&mut first).await, Message::Keepalive);
    first.send(Message::Keepalive).await.expect("KEEPALIVE");
    let mut saw_eor = false;
    for _ in 0..10 {
        if let Message::Update(u) = next(&mut first).await {
            if u.end_of_rib_family().is_some() {
                saw_eor = true;
                break;
            }
        }
    }
    assert!(saw_eor, "no End-of-RIB on the first connection");

    // Now the second OPEN completes: against an Established session the new connection is
    // closed with Cease 6/7 (§6.8), even though its BGP Identifier is higher.
    second.get_mut().write_all(rest).await.expect("write rest");
    let n = notification(&mut second).await;
    assert_eq!((n.code.0, n.subcode), (6, 7));
    speaker.shutdown("done", Duration::from_secs(5)).await;
}

/// Both connections up to the speaker's OPEN, then the second one's OPEN with `second_id`:
/// returns which connection got Cease 6/7 and what the other one received next.
async fn collide(from: Ipv4Addr, second_id: Ipv4Addr) -> (bool, Message) {
    let (speaker, _events, port) = speaker(|_| {}).await;
    let peer = IpAddr::V4(from);
    speaker.set_peers(vec![passive(peer, 90)]).expect("peers");
    let mut first = connect(peer, port, None).await;
    let Message::Open(_) = next(&mut first).await else {
        panic!("expected the speaker's OPEN");
    };
    // The first connection shows its OPEN, so the speaker is in OpenConfirm.
    first
        .send(Message::Open(open(second_id, 90)))
        .await
        .expect("send OPEN");
    assert_eq!(next(&mut first).await, Message::Keepalive);
    let mut second = connect(peer, port, None).await;
    second
        .send(Message::Open(open(second_id, 90)))
        .await
        .expect("send OPEN");
    let result = tokio::time::timeout(DEADLINE, async {
        // Biased: when both have spoken, the first connection's 6/7 went out before the
        // second one's OPEN.
        tokio::select! {
            biased;
            m = first.next() => (true, m),
            m = second.next() => (false, m),
        }
    })
    .await
    .expect("one connection hears from the speaker");
    let (first_spoke, msg) = result;
    let msg = match msg {
        Some(Ok(Ok(m))) => m,
        other => panic!("expected a message, got {other:?}"),
    };
    let out = if first_spoke {
        // The first connection lost: its 6/7; the second then gets our OPEN.
        let Message::Notification(n) = msg else {
            panic!("first connection got {msg:?}");
        };
        assert_eq!((n.code.0, n.subcode), (6, 7));
        (true, next(&mut second).await)
    } else {
        let Message::Notification(n) = msg else {
            panic!("second connection got {msg:?}");
        };
        assert_eq!((n.code.0, n.subcode), (6, 7));
        first.send(Message::Keepalive).await.expect("KEEPALIVE");
        (false, next(&mut first).await)
    };
    speaker.shutdown("done", Duration::from_secs(5)).await;
    out
}

#[tokio::test]
async fn a_collision_keeps_the_connection_of_the_higher_bgp_identifier() {
    // RFC 4271 §6.8: "If the value of the local BGP Identifier is less than the remote one,
    // the local system closes the BGP connection that already exists".
    let (first_closed, next_msg) =
        collide(Ipv4Addr::new(127, 0, 0, 24), Ipv4Addr::new(10, 0, 0, 200)).await;
    assert!(
        first_closed,
        "peer's identifier is higher: our connection must go"
    );
    assert!(
        matches!(next_msg, Message::Open(_)),
        "the kept connection gets our OPEN, got {next_msg:?}"
    );
    // Otherwise the new connection is closed and the existing one goes on.
    let (first_closed, next_msg) =
        collide(Ipv4Addr::new(127, 0, 0, 25), Ipv4Addr::new(10, 0, 0, 50)).await;
    assert!(
        !first_closed,
        "our identifier is higher: the new connection must go"
    );
    assert!(
        matches!(next_msg, Message::Update(_)),
        "the existing session reaches Established, got {next_msg:?}"
    );
}

fn collector(c: &mut SpeakerConfig, cap: usize) {
    let mut template = PeerConfig::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
    template.peer_as = None;
    template.ipv6 = false;
    c.accept_unknown = Some(template);
    c.max_unknown_peers = cap;
}

#[tokio::test]
async fn a_session_from_an_unknown_address_leaves_the_peer_map_when_it_ends() {
    let (speaker, mut events, port) = speaker(|c| collector(c, 8)).await;
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 26));
    let mut raw = connect(from, port, None).await;
    establish(&mut raw, open(Ipv4Addr::new(10, 0, 0, 2), 90)).await;
    wait_for(&mut events, "Established", |e| {
        matches!(e.kind, EventKind::Up { .. }).then_some(())
    })
    .await;
    assert_eq!(speaker.peer_addrs(), vec![from]);
    raw.send(Message::Notification(Notification::cease(2)))
        .await
        .expect("send Cease");
    drop(raw);
    wait_for(&mut events, "the task to end", |e| {
        matches!(e.kind, EventKind::Messages { .. }).then_some(())
    })
    .await;
    assert_eq!(speaker.peer_addrs(), Vec::<IpAddr>::new());
    speaker.shutdown("done", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn sessions_from_unknown_addresses_are_capped() {
    let (speaker, _events, port) = speaker(|c| collector(c, 2)).await;
    let mut kept = Vec::new();
    for last in [27, 28] {
        let mut raw = connect(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), port, None).await;
        // Sessions past their OPEN: only connections still waiting for one are evicted.
        establish(&mut raw, open(Ipv4Addr::new(10, 0, 0, last), 90)).await;
        kept.push(raw);
    }
    let mut third = connect(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 29)), port, None).await;
    let got = tokio::time::timeout(DEADLINE, third.next())
        .await
        .expect("an answer or a close");
    assert!(got.is_none(), "the third unknown peer got {got:?}");
    assert_eq!(speaker.peer_addrs().len(), 2);
    speaker.shutdown("done", Duration::from_secs(5)).await;
}

/// 100 connections from distinct loopback addresses that trickle an OPEN one octet at a time
/// hold every slot for unknown peers; a real peer (our own speaker) still gets a session,
/// because a new connection evicts the oldest one that has not completed its OPEN. The OPEN
/// deadline is set far beyond the test's own deadline, so only eviction can let it in.
#[tokio::test]
async fn trickling_connections_do_not_lock_a_real_peer_out() {
    const TRICKLERS: u8 = 100;
    let (collector_speaker, mut events, port) = speaker(|c| {
        collector(c, 64);
        c.open_deadline = Duration::from_secs(600);
    })
    .await;
    let mut tricklers = Vec::new();
    for i in 0..TRICKLERS {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 3, i + 1));
        let mut raw = connect(from, port, None).await;
        // The first octet of an OPEN's marker; the rest never comes.
        raw.get_mut().write_all(&[0xff]).await.expect("one octet");
        tricklers.push(raw);
    }
    // Bounded: one more octet each, a round at a time, while the real peer connects.
    let (real, _real_events) = {
        let mut c = SpeakerConfig::new(65002);
        c.router_id = Some(Ipv4Addr::new(10, 0, 0, 2));
        Speaker::start(c).await.expect("start the real peer")
    };
    let mut to_collector = PeerConfig::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 65001);
    to_collector.port = port;
    to_collector.local_address = Some(IpAddr::V4(Ipv4Addr::new(127, 0, 4, 1)));
    to_collector.ipv6 = false;
    real.set_peers(vec![to_collector]).expect("peers");
    for raw in &mut tricklers {
        // A trickler may have been evicted already: its write may fail, which is the point.
        let _ = raw.get_mut().write_all(&[0xff]).await;
    }
    let peer_as = wait_for(&mut events, "the real peer Established", |e| match e.kind {
        EventKind::Up { peer_as, .. } => Some(peer_as),
        _ => None,
    })
    .await;
    assert_eq!(peer_as, 65002);
    assert!(
        collector_speaker.peer_addrs().len() <= 64,
        "the cap still holds"
    );
    real.shutdown("done", Duration::from_secs(2)).await;
    collector_speaker
        .shutdown("done", Duration::from_secs(2))
        .await;
}

/// A connection from an unknown address that never completes its OPEN gets 4/0 (Hold Timer
/// Expired) once the OPEN deadline passes, not after RFC 4271's suggested 4 minutes.
#[tokio::test]
async fn a_connection_without_an_open_gets_4_0_at_the_open_deadline() {
    let (speaker, _events, port) = speaker(|c| {
        collector(c, 8);
        c.open_deadline = Duration::from_secs(1);
    })
    .await;
    let mut raw = connect(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 31)), port, None).await;
    let n = notification(&mut raw).await;
    assert_eq!((n.code.0, n.subcode), (4, 0));
    speaker.shutdown("done", Duration::from_secs(2)).await;
}
