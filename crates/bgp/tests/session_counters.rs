//! Per-peer message counters (`Speaker::message_counts`) over loopback: two of our speakers
//! (127.0.0.1 announces, 127.0.0.3 collects) count OPEN, KEEPALIVE, UPDATE and NOTIFICATION
//! both ways, each side's sent matching the other's received, and a session restarted for a
//! configuration change keeps counting. No root needed.
//!
//! Counters have no event of their own: a message is counted by its sender just after the
//! write completed, which may be after the receiver saw it. Where a count is compared across
//! the two sides, it is therefore awaited (polled, bounded by [`DEADLINE`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_bgp::counters::{DirectionCounts, MessageCounts};
use ferrolb_bgp::event::{EventKind, SpeakerEvent};
use ferrolb_bgp::rib::{Route, Routes};
use ferrolb_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use tokio::sync::mpsc::Receiver;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const DEADLINE: Duration = Duration::from_secs(15);

async fn wait_for(
    rx: &mut Receiver<SpeakerEvent>,
    what: &str,
    mut f: impl FnMut(&EventKind) -> bool,
) {
    tokio::time::timeout(DEADLINE, async {
        while let Some(e) = rx.recv().await {
            if f(&e.kind) {
                return;
            }
        }
        panic!("event channel closed while waiting for {what}");
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Polls `read` until `ok` holds for what it returns; fails after [`DEADLINE`] with the last.
async fn eventually<T: std::fmt::Debug>(
    what: &str,
    read: impl Fn() -> T,
    ok: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let v = read();
        if ok(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {v:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn counts(s: &Speaker, peer: IpAddr) -> MessageCounts {
    s.message_counts(peer).expect("the peer has a task")
}

fn sum(d: &DirectionCounts) -> u64 {
    d.opens + d.updates + d.notifications + d.keepalives + d.route_refreshes
}

#[tokio::test]
async fn every_message_type_is_counted_both_ways_and_across_a_restart() {
    let mut a_cfg = SpeakerConfig::new(65001);
    a_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    a_cfg.listen = vec![SocketAddr::new(A, 0)];
    let mut b_cfg = SpeakerConfig::new(65002);
    b_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 3));
    let (a, mut a_rx) = Speaker::start(a_cfg).await.expect("start A");
    let (b, mut b_rx) = Speaker::start(b_cfg).await.expect("start B");
    let a_port = a.listen_addrs().first().expect("A listens").port();

    // A is passive and announces; B connects.
    let mut a_peer = PeerConfig::new(B, 65002);
    a_peer.passive = true;
    a.set_peers(vec![a_peer]).expect("A peers");
    let mut routes = Routes::new();
    routes.insert(
        "198.51.100.1/32".parse().expect("prefix"),
        Arc::new(Route::default()),
    );
    a.set_routes(routes);
    let mut b_peer = PeerConfig::new(A, 65001);
    b_peer.port = a_port;
    b_peer.local_address = Some(B);
    b.set_peers(vec![b_peer.clone()]).expect("B peers");
    assert_eq!(
        b.message_counts(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))),
        None
    );

    // B has A's table once both End-of-RIBs (IPv4, IPv6) arrived.
    let mut eors = 0;
    wait_for(&mut b_rx, "two End-of-RIBs at B", |k| {
        if matches!(k, EventKind::EndOfRibReceived) {
            eors += 1;
        }
        eors == 2
    })
    .await;
    wait_for(&mut a_rx, "A up", |k| matches!(k, EventKind::Up { .. })).await;

    // Reaching Established took one OPEN and at least one KEEPALIVE each way.
    let at_b = counts(&b, A);
    assert_eq!(at_b.sent.opens, 1, "{at_b:#?}");
    assert_eq!(at_b.received.opens, 1, "{at_b:#?}");
    assert!(at_b.sent.keepalives >= 1, "{at_b:#?}");
    assert!(at_b.received.keepalives >= 1, "{at_b:#?}");
    // One UPDATE for the route and one End-of-RIB per family, at least.
    assert!(at_b.received.updates >= 3, "{at_b:#?}");
    assert_eq!(at_b.received.notifications, 0, "{at_b:#?}");
    // What A sent is what B received.
    let at_a = eventually(
        "A's sent UPDATEs to match B's received",
        || counts(&a, B),
        |c| c.sent.updates == at_b.received.updates,
    )
    .await;
    assert_eq!(at_a.sent.opens, 1, "{at_a:#?}");
    assert_eq!(at_a.received.opens, 1, "{at_a:#?}");
    assert_eq!(at_a.sent.notifications, 0, "{at_a:#?}");

    // A configuration change on B: Cease 6/6 from B's old task (RFC 4486 §4), and a new
    // session counting on.
    b_peer.hold_time = 30;
    b.set_peers(vec![b_peer]).expect("B peers, changed");
    wait_for(&mut a_rx, "A down", |k| matches!(k, EventKind::Down { .. })).await;
    wait_for(&mut a_rx, "A up again", |k| {
        matches!(k, EventKind::Up { .. })
    })
    .await;
    wait_for(&mut b_rx, "B up again", |k| {
        matches!(k, EventKind::Up { .. })
    })
    .await;

    let at_b = eventually(
        "B's NOTIFICATION counted",
        || counts(&b, A),
        |c| c.sent.notifications == 1,
    )
    .await;
    assert_eq!(
        at_b.sent.opens, 2,
        "B's counts go on across its restart: {at_b:#?}"
    );
    assert_eq!(at_b.received.opens, 2, "{at_b:#?}");
    let at_a = eventually(
        "A's received NOTIFICATION counted",
        || counts(&a, B),
        |c| c.received.notifications == 1,
    )
    .await;
    assert_eq!(at_a.received.opens, 2, "{at_a:#?}");
    assert_eq!(at_a.sent.opens, 2, "{at_a:#?}");
    assert_eq!(at_a.sent.notifications, 0, "{at_a:#?}");
    assert_eq!(at_a.received.route_refreshes, 0, "{at_a:#?}");

    // The totals are the sums of the types (once no message is mid-way through counting).
    for (name, s, peer) in [("A", &a, B), ("B", &b, A)] {
        eventually(
            &format!("{name}'s totals to be the sums"),
            || counts(s, peer),
            |c| c.sent.total == sum(&c.sent) && c.received.total == sum(&c.received),
        )
        .await;
    }
}
