//! The driver over loopback, no root needed: two of our sessions against each other, and
//! our session against a hand-driven fake peer (a plain UDP socket) for the detection timer
//! and the RFC 5881 TTL rule. Each test uses its own 127.0.0.x pair so parallel runs do not
//! share port 3784. Waits are on the status `watch`, each under a deadline.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrolb_bfd::packet::{decode, encode};
use ferrolb_bfd::{Bfd, BfdProfile, BfdSession, ControlPacket, Diag, SessionConfig, State};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(15);

fn addr(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Quick enough for a test, with a Detection Time (250 ms) that survives a loaded machine.
fn fast() -> BfdProfile {
    BfdProfile {
        receive_interval: Duration::from_millis(50),
        transmit_interval: Duration::from_millis(50),
        detect_multiplier: 5,
        ..BfdProfile::default()
    }
}

async fn session(bfd: &Bfd, local: u8, peer: u8, profile: BfdProfile) -> BfdSession {
    bfd.add_session(SessionConfig {
        peer: addr(peer),
        local: addr(local),
        device: None,
        multihop: false,
        profile,
    })
    .await
    .expect("session starts")
}

async fn wait_state(s: &BfdSession, state: State) -> ferrolb_bfd::SessionStatus {
    let mut rx = s.watch();
    let r = timeout(DEADLINE, rx.wait_for(|st| st.state == state)).await;
    let st = *r
        .unwrap_or_else(|_| panic!("no {state:?} within {DEADLINE:?}; last {:?}", s.status()))
        .expect("session task alive");
    st
}

#[tokio::test]
async fn two_sessions_over_loopback_come_up_and_count_packets() {
    let bfd = Bfd::new();
    let a = session(&bfd, 11, 12, fast()).await;
    let b = session(&Bfd::new(), 12, 11, fast()).await;
    let sa = wait_state(&a, State::UP).await;
    wait_state(&b, State::UP).await;
    assert_eq!(sa.remote_discr, b.status().local_discr);
    let c = a.counters();
    assert!(
        c.control_packet_input > 0 && c.control_packet_output > 0,
        "{c:?}"
    );
    assert_eq!((c.session_up, c.echo_packet_output), (1, 0));
    assert!(c.session_up_events >= 1, "{c:?}");
    assert!(
        bfd.drops().iter().all(|(_, n)| *n == 0),
        "{:?}",
        bfd.drops()
    );
}

#[tokio::test]
async fn shutting_one_side_down_takes_the_other_down_with_diag_3() {
    let a = session(&Bfd::new(), 21, 22, fast()).await;
    let b = session(&Bfd::new(), 22, 21, fast()).await;
    wait_state(&a, State::UP).await;
    wait_state(&b, State::UP).await;
    let down = b.down();
    a.shutdown().await;
    let st = timeout(DEADLINE, down)
        .await
        .expect("Down in time")
        .expect("task alive");
    assert_eq!(st.state, State::DOWN);
    assert_eq!(st.local_diag, Diag::NEIGHBOR_SIGNALED_SESSION_DOWN);
    assert_eq!(st.remote_state, State::ADMIN_DOWN);
    assert!(
        !st.is_path_failure(),
        "RFC 5882 §3.2: the peer's AdminDown is no path failure"
    );
    assert_eq!(b.counters().session_down_events, 1);
}

#[tokio::test]
async fn a_profile_change_while_up_renegotiates_without_a_flap() {
    let mut a = session(&Bfd::new(), 31, 32, fast()).await;
    let b = session(&Bfd::new(), 32, 31, fast()).await;
    wait_state(&a, State::UP).await;
    wait_state(&b, State::UP).await;
    let slower = BfdProfile {
        receive_interval: Duration::from_millis(300),
        transmit_interval: Duration::from_millis(200),
        ..fast()
    };
    let before = (a.status().down_events, b.status().down_events);
    a.set_profile(slower).await.expect("valid profile");
    // b now transmits at max(its 50 ms, our RequiredMinRx 300 ms) and detects after
    // 5 × max(50 ms, our DesiredMinTx 200 ms).
    let mut rx = b.watch();
    let st = timeout(
        DEADLINE,
        rx.wait_for(|s| s.detection_time == Some(Duration::from_millis(1000))),
    )
    .await
    .expect("renegotiated in time")
    .map(|s| *s)
    .expect("task alive");
    assert_eq!(st.tx_interval, Duration::from_millis(300));
    assert_eq!(st.state, State::UP);
    assert_eq!((a.status().down_events, st.down_events), before, "no flap");
}

#[tokio::test]
async fn a_bad_profile_is_refused_naming_the_field() {
    let r = Bfd::new()
        .add_session(SessionConfig {
            peer: addr(42),
            local: addr(41),
            device: None,
            multihop: false,
            profile: BfdProfile {
                detect_multiplier: 1,
                ..BfdProfile::default()
            },
        })
        .await;
    let e = r
        .expect_err("detectMultiplier 1 is below MetalLB's minimum")
        .to_string();
    assert!(e.contains("detectMultiplier"), "{e}");
}

/// A fake peer: a socket on the peer address, port 3784 (where our session sends), and a
/// sender with a chosen TTL and a source port in 49152-65535.
struct FakePeer {
    rx: UdpSocket,
    tx: UdpSocket,
    to: SocketAddr,
}

impl FakePeer {
    async fn new(me: u8, session: u8, ttl: u32) -> FakePeer {
        let rx = UdpSocket::bind((addr(me), 3784))
            .await
            .expect("bind fake peer 3784");
        let tx = UdpSocket::bind((addr(me), 0))
            .await
            .expect("bind fake peer source");
        tx.set_ttl(ttl).expect("set TTL");
        FakePeer {
            rx,
            tx,
            to: SocketAddr::new(addr(session), 3784),
        }
    }

    async fn recv(&self) -> ControlPacket {
        let mut buf = [0u8; 64];
        let (n, from) = timeout(DEADLINE, self.rx.recv_from(&mut buf))
            .await
            .expect("a packet from our session in time")
            .expect("recv");
        assert!(
            (49152..=65535).contains(&from.port()),
            "RFC 5881 §4 source port {from}"
        );
        decode(&buf[..n]).expect("our session sends valid packets")
    }

    async fn send(&self, state: State, your_discr: u32) {
        let p = ControlPacket {
            diag: Diag::NONE,
            state,
            poll: false,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 2,
            my_discr: 0xabcd,
            your_discr,
            desired_min_tx_us: 50_000,
            required_min_rx_us: 50_000,
            required_min_echo_rx_us: 0,
        };
        self.tx
            .send_to(&encode(&p).expect("encodes"), self.to)
            .await
            .expect("send");
    }
}

#[tokio::test]
async fn a_silent_peer_takes_the_session_down_with_diag_1() {
    let peer = FakePeer::new(52, 51, 255).await;
    let s = session(&Bfd::new(), 51, 52, fast()).await;
    let first = peer.recv().await;
    assert_eq!((first.state, first.your_discr), (State::DOWN, 0));
    // The three-way handshake by hand: Init, then Up.
    peer.send(State::INIT, first.my_discr).await;
    wait_state(&s, State::UP).await;
    let down = s.down();
    // Silence: the Detection Time (2 × 50 ms) expires.
    let st = timeout(DEADLINE, down)
        .await
        .expect("Down in time")
        .expect("task alive");
    assert_eq!(st.local_diag, Diag::CONTROL_DETECTION_TIME_EXPIRED);
    assert_eq!(st.remote_discr, 0, "RFC 5880 §6.8.1");
    assert!(st.is_path_failure());
}

#[tokio::test]
async fn packets_with_ttl_below_255_are_dropped_and_counted() {
    let peer = FakePeer::new(62, 61, 64).await;
    let bfd = Bfd::new();
    let s = session(&bfd, 61, 62, fast()).await;
    let first = peer.recv().await;
    peer.send(State::INIT, first.my_discr).await;
    let drops = || {
        bfd.drops()
            .into_iter()
            .find(|(l, _)| *l == "bad_ttl")
            .map_or(0, |(_, n)| n)
    };
    // The receive task counts the drop; poll the counter (no event to await) with a deadline.
    let start = std::time::Instant::now();
    while drops() == 0 {
        assert!(
            start.elapsed() < DEADLINE,
            "bad_ttl not counted: {:?}",
            bfd.drops()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        s.status().state,
        State::DOWN,
        "RFC 5881 §5: the packet was discarded"
    );
    assert_eq!(s.counters().control_packet_input, 0);
}

#[tokio::test]
async fn a_second_session_to_the_same_peer_is_refused() {
    let bfd = Bfd::new();
    let _a = session(&bfd, 71, 72, fast()).await;
    let r = bfd
        .add_session(SessionConfig {
            peer: addr(72),
            local: addr(71),
            device: None,
            multihop: false,
            profile: fast(),
        })
        .await;
    assert!(
        matches!(r, Err(ferrolb_bfd::DriverError::Duplicate { .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn multihop_sessions_come_up_on_port_4784() {
    let cfg = |local, peer| SessionConfig {
        peer: addr(peer),
        local: addr(local),
        device: None,
        multihop: true,
        profile: BfdProfile {
            minimum_ttl: 250,
            ..fast()
        },
    };
    let a = Bfd::new().add_session(cfg(81, 82)).await.expect("a starts");
    let b = Bfd::new().add_session(cfg(82, 81)).await.expect("b starts");
    wait_state(&a, State::UP).await;
    wait_state(&b, State::UP).await;
    // Port 4784 is taken by b's receive socket (RFC 5883 §5), not 3784.
    assert!(std::net::UdpSocket::bind((addr(82), 4784)).is_err());
    assert!(std::net::UdpSocket::bind((addr(82), 3784)).is_ok());
}

#[tokio::test]
async fn a_peer_removed_and_added_again_comes_back_up() {
    let bfd = Bfd::new();
    let b = session(&Bfd::new(), 92, 91, fast()).await;
    let a = session(&bfd, 91, 92, fast()).await;
    wait_state(&a, State::UP).await;
    a.shutdown().await;
    let a = session(&bfd, 91, 92, fast()).await;
    wait_state(&a, State::UP).await;
    wait_state(&b, State::UP).await;
}

#[test]
fn handles_can_move_between_tasks() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Bfd>();
    send_sync::<BfdSession>();
}
