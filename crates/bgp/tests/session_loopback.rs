//! Two instances of our own speaker over loopback (127.0.0.1 <-> 127.0.0.2): session setup,
//! IPv4 + IPv6 over one session, only-the-difference, idempotence, graceful shutdown with an
//! RFC 9003 message, TCP-MD5 and connection collisions (forced on both sides through a relay).
//! No root needed.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_bgp::event::{EventKind, SpeakerEvent};
use ferrolb_bgp::fsm::DownReason;
use ferrolb_bgp::rib::{NextHop, Route, Routes};
use ferrolb_bgp::speaker::{PeerConfig, Speaker, SpeakerConfig};
use ferrolb_bgp::wire::{Community, LargeCommunity};
use ipnet::IpNet;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const DEADLINE: Duration = Duration::from_secs(15);

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

fn net(s: &str) -> IpNet {
    s.parse().expect("prefix")
}

struct Pair {
    a: Speaker,
    a_rx: Receiver<SpeakerEvent>,
    b: Speaker,
    b_rx: Receiver<SpeakerEvent>,
}

/// A (AS 65001, router ID 10.0.0.1) and B (AS 65002, 10.0.0.2) started with no peers, each
/// listening on its own loopback address; and their listening ports.
async fn start_pair() -> (Pair, u16, u16) {
    let mut a_cfg = SpeakerConfig::new(65001);
    a_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    a_cfg.listen = vec![SocketAddr::new(A, 0)];
    let mut b_cfg = SpeakerConfig::new(65002);
    b_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 2));
    b_cfg.listen = vec![SocketAddr::new(B, 0)];
    let (a, a_rx) = Speaker::start(a_cfg).await.expect("start A");
    let (b, b_rx) = Speaker::start(b_cfg).await.expect("start B");
    let a_port = a.listen_addrs().first().expect("A listens").port();
    let b_port = b.listen_addrs().first().expect("B listens").port();
    (Pair { a, a_rx, b, b_rx }, a_port, b_port)
}

/// A (AS 65001) announces; B (AS 65002) collects. Both listen; `b_passive` decides whether B
/// also connects (a collision when both do).
async fn pair(password: (Option<&str>, Option<&str>), b_passive: bool) -> Pair {
    let (Pair { a, a_rx, b, b_rx }, a_port, b_port) = start_pair().await;

    let mut b_peer = PeerConfig::new(A, 65001);
    b_peer.port = a_port;
    b_peer.local_address = Some(B);
    b_peer.passive = b_passive;
    b_peer.deliver_updates = true;
    b_peer.md5_password = password.1.map(str::to_owned);
    b.set_peers(vec![b_peer]).expect("B peers");

    let mut a_peer = PeerConfig::new(B, 65002);
    a_peer.port = b_port;
    a_peer.local_address = Some(A);
    a_peer.md5_password = password.0.map(str::to_owned);
    a.set_peers(vec![a_peer]).expect("A peers");
    Pair { a, a_rx, b, b_rx }
}

fn routes() -> Routes {
    let mut r = Routes::new();
    r.insert(
        net("198.51.100.1/32"),
        Arc::new(Route {
            communities: [Community::new(65000, 1)].into(),
            large_communities: [LargeCommunity {
                global_admin: 65000,
                local_data_1: 1,
                local_data_2: 2,
            }]
            .into(),
            med: Some(10),
            ..Route::default()
        }),
    );
    r.insert(net("198.51.100.2/32"), Arc::new(Route::default()));
    r.insert(
        net("2001:db8::1/128"),
        Arc::new(Route {
            next_hop: NextHop::Explicit("2001:db8::ff".parse().expect("addr")),
            ..Route::default()
        }),
    );
    r
}

/// Collects the prefixes B receives until End-of-RIB for both families.
async fn received_table(rx: &mut Receiver<SpeakerEvent>) -> BTreeSet<IpNet> {
    let mut got = BTreeSet::new();
    let mut eors = 0;
    wait_for(rx, "the table and two End-of-RIBs", |e| {
        match &e.kind {
            EventKind::UpdateReceived {
                update: Some(u), ..
            } => {
                got.extend(u.announced());
                for w in u.withdrawn_prefixes() {
                    got.remove(&w);
                }
            }
            EventKind::EndOfRibReceived => eors += 1,
            _ => {}
        }
        (eors == 2).then_some(())
    })
    .await;
    got
}

#[tokio::test]
async fn routes_arrive_with_attributes_and_only_the_difference_is_sent() {
    let mut p = pair((None, None), true).await;
    p.a.set_routes(routes());
    let up = wait_for(&mut p.b_rx, "B up", |e| match &e.kind {
        EventKind::Up { peer_as, .. } => Some(*peer_as),
        _ => None,
    })
    .await;
    assert_eq!(up, 65001);
    let got = received_table(&mut p.b_rx).await;
    assert_eq!(got, routes().keys().copied().collect());

    // Idempotent: the same set again sends nothing, so the next PrefixesSent A reports is
    // the one-prefix withdrawal below, not a re-send.
    p.a.set_routes(routes());
    let mut fewer = routes();
    fewer.remove(&net("198.51.100.2/32"));
    p.a.set_routes(fewer);
    let sent = wait_for(&mut p.a_rx, "A sends the difference", |e| match &e.kind {
        EventKind::PrefixesSent {
            announced,
            withdrawn,
            ..
        } if (*announced, *withdrawn) != (3, 0) => Some((*announced, *withdrawn)),
        _ => None,
    })
    .await;
    assert_eq!(sent, (0, 1));
    let withdrawn = wait_for(&mut p.b_rx, "the withdrawal at B", |e| match &e.kind {
        EventKind::UpdateReceived {
            update: Some(u), ..
        } => Some(u.withdrawn_prefixes().collect::<Vec<_>>()),
        _ => None,
    })
    .await;
    assert_eq!(withdrawn, vec![net("198.51.100.2/32")]);

    // Graceful shutdown: B sees Cease 6/2 with our RFC 9003 text.
    p.a.shutdown("maintenance", Duration::from_secs(5)).await;
    let reason = wait_for(&mut p.b_rx, "B down", |e| match &e.kind {
        EventKind::Down { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    let DownReason::NotificationReceived(n) = reason else {
        panic!("expected a NOTIFICATION, got {reason:?}");
    };
    assert_eq!((n.code.0, n.subcode), (6, 2));
    assert_eq!(
        n.shutdown_communication().and_then(Result::ok),
        Some("maintenance")
    );
    p.b.shutdown("test over", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn attributes_reach_the_peer_as_set() {
    let mut p = pair((None, None), true).await;
    p.a.set_routes(routes());
    let attrs = wait_for(
        &mut p.b_rx,
        "the IPv4 UPDATE with communities",
        |e| match &e.kind {
            EventKind::UpdateReceived {
                update: Some(u), ..
            } if u.nlri.contains(&"198.51.100.1/32".parse().expect("net")) => Some(u.attrs.clone()),
            _ => None,
        },
    )
    .await;
    assert_eq!(attrs.communities, Some(vec![Community::new(65000, 1)]));
    assert_eq!(attrs.med, Some(10));
    assert_eq!(attrs.next_hop, Some(Ipv4Addr::new(127, 0, 0, 1)));
    assert_eq!(
        attrs.local_pref, None,
        "no LOCAL_PREF towards eBGP (RFC 4271 §5.1.5)"
    );
    assert_eq!(
        attrs.as_path.map(|p| p
            .segments
            .into_iter()
            .flat_map(|s| s.asns)
            .collect::<Vec<_>>()),
        Some(vec![65001])
    );
    p.a.shutdown("done", Duration::from_secs(5)).await;
    p.b.shutdown("done", Duration::from_secs(5)).await;
}

/// Test double: a TCP relay standing in for the network between A and B. It holds each
/// speaker's outgoing connection until both exist, so both are in OpenSent, then joins each to
/// the other speaker's listener from the connecting speaker's own address. Each speaker then
/// sees an incoming connection from its peer while its own is in OpenSent: a collision on both
/// sides (RFC 4271 §6.8), every time. Returns the relay tasks of the A-initiated and the
/// B-initiated connection; each ends when its connection closes.
async fn colliding_pair() -> (Pair, JoinHandle<()>, JoinHandle<()>) {
    let (Pair { a, a_rx, b, b_rx }, a_port, b_port) = start_pair().await;
    // The relay listens on each speaker's address (another port), where the other one dials.
    let to_a = TcpListener::bind(SocketAddr::new(A, 0))
        .await
        .expect("relay to A");
    let to_b = TcpListener::bind(SocketAddr::new(B, 0))
        .await
        .expect("relay to B");

    let mut b_peer = PeerConfig::new(A, 65001);
    b_peer.port = to_a.local_addr().expect("addr").port();
    b_peer.local_address = Some(B);
    b_peer.deliver_updates = true;
    let mut a_peer = PeerConfig::new(B, 65002);
    a_peer.port = to_b.local_addr().expect("addr").port();
    a_peer.local_address = Some(A);
    a.set_peers(vec![a_peer]).expect("A peers");
    b.set_peers(vec![b_peer]).expect("B peers");

    let accept = |l: TcpListener| async move {
        tokio::time::timeout(DEADLINE, l.accept())
            .await
            .expect("a speaker connects")
            .expect("accept")
            .0
    };
    let from_a = accept(to_b).await;
    let from_b = accept(to_a).await;
    let join = |from: IpAddr, to: SocketAddr| async move {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind(SocketAddr::new(from, 0)).expect("bind");
        socket.connect(to).await.expect("relay connect")
    };
    let a_out = join(A, SocketAddr::new(B, b_port)).await;
    let b_out = join(B, SocketAddr::new(A, a_port)).await;
    let pipe = |mut x: TcpStream, mut y: TcpStream| {
        tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut x, &mut y).await;
        })
    };
    let a_initiated = pipe(from_a, a_out);
    let b_initiated = pipe(from_b, b_out);
    (Pair { a, a_rx, b, b_rx }, a_initiated, b_initiated)
}

#[tokio::test]
async fn both_sides_connecting_end_with_one_established_session() {
    let (mut p, a_initiated, b_initiated) = colliding_pair().await;
    p.a.set_routes(routes());
    // B collects the table; meanwhile count its sessions.
    let mut got = BTreeSet::new();
    let (mut b_ups, mut b_downs, mut eors) = (0, 0, 0);
    wait_for(&mut p.b_rx, "the table and two End-of-RIBs", |e| {
        match &e.kind {
            EventKind::Up { .. } => b_ups += 1,
            EventKind::Down {
                was_established: true,
                ..
            } => b_downs += 1,
            EventKind::UpdateReceived {
                update: Some(u), ..
            } => got.extend(u.announced()),
            EventKind::EndOfRibReceived => eors += 1,
            _ => {}
        }
        (eors == 2).then_some(())
    })
    .await;
    assert_eq!(got.len(), 3);
    assert_eq!(
        (b_ups, b_downs),
        (1, 0),
        "B: exactly one session, never lost"
    );
    // A sent the table, so its Up and the collision's outcome are already queued.
    let mut a_ups = 0;
    let mut a_lost_by_collision = 0;
    while let Ok(e) = p.a_rx.try_recv() {
        match e.kind {
            EventKind::Up { .. } => a_ups += 1,
            EventKind::Down {
                was_established: false,
                reason: DownReason::NotificationSent(n),
            } if (n.code.0, n.subcode) == (6, 7) => a_lost_by_collision += 1,
            EventKind::Down {
                was_established: true,
                ..
            } => panic!("A lost an Established session"),
            _ => {}
        }
    }
    assert_eq!(a_ups, 1, "A: exactly one session");
    // §6.8: B has the higher BGP Identifier (10.0.0.2 > 10.0.0.1), so the connection B opened
    // survives; A closes its own with Cease 6/7 and B closes A's.
    assert_eq!(
        a_lost_by_collision, 1,
        "A's own connection lost the collision"
    );
    tokio::time::timeout(DEADLINE, a_initiated)
        .await
        .expect("the A-initiated connection closes")
        .expect("relay task");
    assert!(
        !b_initiated.is_finished(),
        "the B-initiated connection carries the session"
    );
    p.a.shutdown("done", Duration::from_secs(5)).await;
    p.b.shutdown("done", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn tcp_md5_with_the_same_password_comes_up() {
    let mut p = pair((Some("s3cret"), Some("s3cret")), true).await;
    p.a.set_routes(routes());
    let got = received_table(&mut p.b_rx).await;
    assert_eq!(got.len(), 3);
    p.a.shutdown("done", Duration::from_secs(5)).await;
    p.b.shutdown("done", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn tcp_md5_with_a_wrong_password_never_connects_and_says_so() {
    let mut p = pair((Some("right"), Some("wrong")), true).await;
    let error = wait_for(&mut p.a_rx, "a failed connect", |e| match &e.kind {
        EventKind::ConnectFailed { error } => Some(error.clone()),
        EventKind::Up { .. } => panic!("session came up with mismatched TCP-MD5 passwords"),
        _ => None,
    })
    .await;
    assert!(
        error.contains("no answer"),
        "unexpected error text: {error}"
    );
    p.a.shutdown("done", Duration::from_secs(5)).await;
    p.b.shutdown("done", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_large_table_is_counted_not_stored_and_the_session_survives() {
    // A announces 50k prefixes to B; B does not deliver updates, it only counts them.
    let mut a_cfg = SpeakerConfig::new(65001);
    a_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    let mut b_cfg = SpeakerConfig::new(65002);
    b_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 2));
    b_cfg.listen = vec![SocketAddr::new(B, 0)];
    let (a, mut a_rx) = Speaker::start(a_cfg).await.expect("start A");
    let (b, mut b_rx) = Speaker::start(b_cfg).await.expect("start B");
    let b_port = b.listen_addrs().first().expect("B listens").port();
    let mut b_peer = PeerConfig::new(A, 65001);
    b_peer.passive = true;
    b.set_peers(vec![b_peer]).expect("B peers");
    let shared = Arc::new(Route::default());
    let table: Routes = (0..50_000u32)
        .map(|i| {
            let addr = Ipv4Addr::from(0x0a00_0000 + i);
            (
                IpNet::from(ipnet::Ipv4Net::new(addr, 32).expect("net")),
                Arc::clone(&shared),
            )
        })
        .collect();
    a.set_routes(table);
    let mut a_peer = PeerConfig::new(B, 65002);
    a_peer.port = b_port;
    a_peer.local_address = Some(A);
    a.set_peers(vec![a_peer]).expect("A peers");
    let (announced, updates) = wait_for(&mut a_rx, "A sent the table", |e| match &e.kind {
        EventKind::PrefixesSent {
            announced, updates, ..
        } => Some((*announced, *updates)),
        _ => None,
    })
    .await;
    assert_eq!(announced, 50_000);
    // About 800 /32 per 4096-octet UPDATE.
    assert!(updates <= 65, "{updates} UPDATEs for 50k /32");
    wait_for(&mut b_rx, "End-of-RIB at B", |e| {
        matches!(e.kind, EventKind::EndOfRibReceived).then_some(())
    })
    .await;
    b.shutdown("done", Duration::from_secs(5)).await;
    let (received, withdrawn) = wait_for(&mut b_rx, "B's counters", |e| match &e.kind {
        EventKind::Messages {
            prefixes_received,
            prefixes_withdrawn,
            ..
        } => Some((*prefixes_received, *prefixes_withdrawn)),
        _ => None,
    })
    .await;
    assert_eq!((received, withdrawn), (50_000, 0));
    a.shutdown("done", Duration::from_secs(5)).await;
}

/// A passive speaker at `listen` with `peers` (each passive), and its events.
async fn passive_speaker(
    asn: u32,
    id: [u8; 4],
    listen: IpAddr,
    peers: Vec<PeerConfig>,
) -> (Speaker, Receiver<SpeakerEvent>, u16) {
    let mut cfg = SpeakerConfig::new(asn);
    cfg.router_id = Some(Ipv4Addr::from(id));
    cfg.listen = vec![SocketAddr::new(listen, 0)];
    let (s, rx) = Speaker::start(cfg).await.expect("start");
    s.set_peers(peers).expect("peers");
    let port = s.listen_addrs().first().expect("listening").port();
    (s, rx, port)
}

fn passive_peer(addr: IpAddr, asn: u32) -> PeerConfig {
    let mut p = PeerConfig::new(addr, asn);
    p.passive = true;
    p
}

#[tokio::test]
async fn removing_or_changing_one_peer_leaves_the_other_session_alone() {
    const C: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4));
    let (b, mut b_rx, b_port) =
        passive_speaker(65002, [10, 0, 0, 2], B, vec![passive_peer(A, 65001)]).await;
    let (c, mut c_rx, c_port) =
        passive_speaker(65003, [10, 0, 0, 3], C, vec![passive_peer(A, 65001)]).await;
    let mut a_cfg = SpeakerConfig::new(65001);
    a_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    let (a, mut a_rx) = Speaker::start(a_cfg).await.expect("start A");
    let to = |addr: IpAddr, asn: u32, port: u16| {
        let mut p = PeerConfig::new(addr, asn);
        p.port = port;
        p.local_address = Some(A);
        p
    };
    a.set_peers(vec![to(B, 65002, b_port), to(C, 65003, c_port)])
        .expect("A peers");
    let mut up = BTreeSet::new();
    wait_for(&mut a_rx, "both sessions up", |e| {
        if matches!(e.kind, EventKind::Up { .. }) {
            up.insert(e.peer);
        }
        (up.len() == 2).then_some(())
    })
    .await;

    // Remove C: C gets Cease 6/3 (Peer De-configured).
    a.set_peers(vec![to(B, 65002, b_port)]).expect("A peers");
    let n = wait_for(&mut c_rx, "C down", |e| match &e.kind {
        EventKind::Down {
            reason: DownReason::NotificationReceived(n),
            ..
        } => Some(n.clone()),
        _ => None,
    })
    .await;
    assert_eq!((n.code.0, n.subcode), (6, 3));

    // Change B's hold time: B gets 6/6 (Other Configuration Change) and comes back.
    let mut changed = to(B, 65002, b_port);
    changed.hold_time = 30;
    a.set_peers(vec![changed.clone()]).expect("A peers");
    let n = wait_for(&mut b_rx, "B reset by the change", |e| match &e.kind {
        EventKind::Down {
            reason: DownReason::NotificationReceived(n),
            ..
        } => Some(n.clone()),
        _ => None,
    })
    .await;
    assert_eq!((n.code.0, n.subcode), (6, 6));
    let hold = wait_for(&mut b_rx, "B up again", |e| match &e.kind {
        EventKind::Up { hold_time, .. } => Some(*hold_time),
        _ => None,
    })
    .await;
    assert_eq!(hold, 30);

    // Setting the same peers again touches nothing: B's session stays (no Down before the
    // shutdown's Cease 6/2).
    a.set_peers(vec![changed]).expect("A peers");
    a.shutdown("done", Duration::from_secs(5)).await;
    let n = wait_for(&mut b_rx, "B down at shutdown", |e| match &e.kind {
        EventKind::Down {
            reason: DownReason::NotificationReceived(n),
            ..
        } => Some(n.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        (n.code.0, n.subcode),
        (6, 2),
        "the identical set_peers must not reset B"
    );
    b.shutdown("done", Duration::from_secs(5)).await;
    c.shutdown("done", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn ipv6_transport_over_loopback_carries_both_families() {
    const V6: IpAddr = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
    let mut peer = passive_peer(V6, 65001);
    peer.deliver_updates = true;
    let (b, mut b_rx, b_port) = passive_speaker(65002, [10, 0, 0, 2], V6, vec![peer]).await;
    let mut a_cfg = SpeakerConfig::new(65001);
    a_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    let (a, _a_rx) = Speaker::start(a_cfg).await.expect("start A");
    let mut to_b = PeerConfig::new(V6, 65002);
    to_b.port = b_port;
    let mut r = Routes::new();
    r.insert(net("2001:db8::1/128"), Arc::new(Route::default()));
    r.insert(
        net("198.51.100.1/32"),
        Arc::new(Route {
            next_hop: NextHop::Explicit(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
            ..Route::default()
        }),
    );
    a.set_routes(r);
    a.set_peers(vec![to_b]).expect("A peers");
    let got = received_table(&mut b_rx).await;
    assert_eq!(
        got,
        [net("2001:db8::1/128"), net("198.51.100.1/32")]
            .into_iter()
            .collect()
    );
    a.shutdown("done", Duration::from_secs(5)).await;
    b.shutdown("done", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn gtsm_on_both_sides_comes_up() {
    let mut from_a = passive_peer(A, 65001);
    from_a.gtsm_hops = Some(1);
    from_a.deliver_updates = true;
    let (b, mut b_rx, b_port) = passive_speaker(65002, [10, 0, 0, 2], B, vec![from_a]).await;
    let mut a_cfg = SpeakerConfig::new(65001);
    a_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    let (a, _a_rx) = Speaker::start(a_cfg).await.expect("start A");
    let mut to_b = PeerConfig::new(B, 65002);
    to_b.port = b_port;
    to_b.local_address = Some(A);
    to_b.gtsm_hops = Some(1);
    a.set_routes(routes());
    a.set_peers(vec![to_b]).expect("A peers");
    assert_eq!(received_table(&mut b_rx).await.len(), 3);
    a.shutdown("done", Duration::from_secs(5)).await;
    b.shutdown("done", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn deferred_routes_hold_the_initial_updates_and_end_of_rib_until_set() {
    // Speaker::defer_routes: the session comes up first; the End-of-RIB (RFC 4724 §2) must
    // follow the routes set later, never come first for an empty table.
    let mut b_peer = passive_peer(A, 65001);
    b_peer.deliver_updates = true;
    let (b, mut b_rx, b_port) = passive_speaker(65002, [10, 0, 0, 2], B, vec![b_peer]).await;
    let mut a_cfg = SpeakerConfig::new(65001);
    a_cfg.router_id = Some(Ipv4Addr::new(10, 0, 0, 1));
    let (a, mut a_rx) = Speaker::start(a_cfg).await.expect("start A");
    a.defer_routes();
    let mut a_peer = PeerConfig::new(B, 65002);
    a_peer.port = b_port;
    a_peer.local_address = Some(A);
    a.set_peers(vec![a_peer]).expect("A peers");
    wait_for(&mut a_rx, "A established", |e| {
        matches!(e.kind, EventKind::Up { .. }).then_some(())
    })
    .await;
    a.set_routes(routes());
    let got = received_table(&mut b_rx).await;
    assert_eq!(got, routes().keys().copied().collect::<BTreeSet<_>>());
    a.shutdown("done", Duration::from_secs(5)).await;
    b.shutdown("done", Duration::from_secs(5)).await;
}

#[tokio::test]
async fn reset_peer_closes_with_the_given_cease_and_the_session_comes_back() {
    use ferrolb_bgp::wire::error::cease_subcode;
    use ferrolb_bgp::wire::Notification;
    let mut p = pair((None, None), true).await;
    let local = wait_for(&mut p.a_rx, "A established", |e| match &e.kind {
        EventKind::Up { local_addr, .. } => Some(*local_addr),
        _ => None,
    })
    .await;
    // The Up event names the session's own source address (the BFD coupling's source).
    assert_eq!(local, Some(A));
    wait_for(&mut p.b_rx, "B established", |e| {
        matches!(e.kind, EventKind::Up { .. }).then_some(())
    })
    .await;
    let cease = Notification::cease(cease_subcode::BFD_DOWN);
    assert!(p.a.reset_peer(B, cease.clone()), "A has a task for B");
    assert!(
        !p.a.reset_peer("127.0.0.9".parse().expect("ip"), cease.clone()),
        "no task for an unknown address"
    );
    let got = wait_for(&mut p.b_rx, "B told why", |e| match &e.kind {
        EventKind::Down {
            reason: DownReason::NotificationReceived(n),
            ..
        } => Some(n.clone()),
        _ => None,
    })
    .await;
    assert_eq!(got, cease);
    let ours = wait_for(&mut p.a_rx, "A down", |e| match &e.kind {
        EventKind::Down { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(ours, DownReason::NotificationSent(cease));
    // Unlike a stop, the peer stays configured and the session is made again (backoff ~1 s).
    wait_for(&mut p.a_rx, "A established again", |e| {
        matches!(e.kind, EventKind::Up { .. }).then_some(())
    })
    .await;
    assert_eq!(p.a.peer_addrs(), vec![B]);
}
