//! The Responder driver on a test double link, under paused tokio time: announcement rounds,
//! multicast group membership, answers following the desired state, counters and reopen.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrolb_arp::link::{LinkOpener, LinkSocket};
use ferrolb_arp::wire::{
    encode_frame, parse_frame, solicited_node_address, ArpOp, ArpPacket, EtherType, EthernetHeader,
    Frame, MacAddr, NdpMessage,
};
use ferrolb_arp::{InterfaceState, Responder, ResponderConfig, VipCounts};
use tokio::sync::mpsc;
use tokio::time::Instant;

const OUR_MAC: MacAddr = MacAddr([0x02, 0xfe, 0, 0, 0, 1]);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0xc1, 0, 0, 0, 2]);
const IFACE: &str = "eth0";

/// Test double: a link whose received frames are injected by the test and whose sent frames
/// and multicast changes are recorded. Opens fail while `fail_opens` is above zero.
struct FakeLink {
    fail_opens: AtomicU32,
    opens: AtomicU32,
    inject: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    sent: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    groups: Arc<Mutex<Vec<(MacAddr, bool)>>>,
}

/// Test double socket made by [`FakeLink`].
struct FakeSocket {
    incoming: tokio::sync::Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    sent: mpsc::UnboundedSender<(Instant, Vec<u8>)>,
    groups: Arc<Mutex<Vec<(MacAddr, bool)>>>,
}

/// Test double opener sharing a [`FakeLink`] with the test.
struct FakeOpener(Arc<FakeLink>);

impl LinkOpener for FakeOpener {
    type Socket = FakeSocket;

    fn open(&self, _iface: &str) -> io::Result<FakeSocket> {
        let link = &self.0;
        link.opens.fetch_add(1, Ordering::SeqCst);
        if link
            .fail_opens
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(io::Error::other("fake open failure"));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        *link.inject.lock().expect("lock") = Some(tx);
        Ok(FakeSocket {
            incoming: tokio::sync::Mutex::new(rx),
            sent: link.sent.clone(),
            groups: link.groups.clone(),
        })
    }
}

impl LinkSocket for FakeSocket {
    fn mac(&self) -> MacAddr {
        OUR_MAC
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let frame = self.incoming.lock().await.recv().await;
        match frame {
            Some(frame) => {
                let n = frame.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), frame.get(..n)) {
                    dst.copy_from_slice(src);
                }
                Ok(frame.len())
            }
            None => Err(io::Error::other("fake link closed")),
        }
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let _ = self.sent.send((Instant::now(), frame.to_vec()));
        Ok(())
    }

    fn set_multicast(&self, group: MacAddr, join: bool) -> io::Result<()> {
        self.groups.lock().expect("lock").push((group, join));
        Ok(())
    }
}

struct Harness {
    link: Arc<FakeLink>,
    sent: mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    responder: Responder,
}

impl Harness {
    fn new(config: ResponderConfig, fail_opens: u32) -> Self {
        let (sent_tx, sent) = mpsc::unbounded_channel();
        let link = Arc::new(FakeLink {
            fail_opens: AtomicU32::new(fail_opens),
            opens: AtomicU32::new(0),
            inject: Mutex::new(None),
            sent: sent_tx,
            groups: Arc::default(),
        });
        let responder = Responder::spawn_with(config, FakeOpener(link.clone()));
        Harness {
            link,
            sent,
            responder,
        }
    }

    /// Sets the VIPs on eth0 and waits until the interface task serves exactly them.
    async fn set(&self, vips: &[IpAddr]) {
        let vips: BTreeSet<IpAddr> = vips.iter().copied().collect();
        let mut states = self.responder.interfaces();
        self.responder
            .set_vips([(IFACE.to_string(), vips.clone())].into());
        tokio::time::timeout(
            Duration::from_secs(60),
            states.wait_for(|m| {
                matches!(m.get(IFACE), Some(InterfaceState::Serving { vips: v, .. }) if *v == vips)
            }),
        )
        .await
        .expect("served in time")
        .expect("responder alive");
    }

    fn inject(&self, frame: Vec<u8>) {
        let inject = self.link.inject.lock().expect("lock");
        inject
            .as_ref()
            .expect("socket open")
            .send(frame)
            .expect("socket alive");
    }

    async fn next_sent(&mut self) -> (Instant, Frame) {
        let (at, bytes) = tokio::time::timeout(Duration::from_secs(60), self.sent.recv())
            .await
            .expect("a frame within 60 s")
            .expect("link alive");
        (at, parse_frame(&bytes).expect("sent frames parse"))
    }

    /// True when nothing more is sent for a long (paused-time) while.
    async fn quiet(&mut self) -> bool {
        tokio::time::timeout(Duration::from_secs(30), self.sent.recv())
            .await
            .is_err()
    }
}

fn arp_request(target: Ipv4Addr) -> Vec<u8> {
    encode_frame(&Frame::Arp {
        eth: EthernetHeader {
            dst: MacAddr::BROADCAST,
            src: CLIENT_MAC,
            ethertype: EtherType::ARP,
        },
        arp: ArpPacket {
            op: ArpOp::REQUEST,
            sender_mac: CLIENT_MAC,
            sender_ip: Ipv4Addr::new(192, 0, 2, 7),
            target_mac: MacAddr::ZERO,
            target_ip: target,
        },
    })
}

fn quiet_config() -> ResponderConfig {
    ResponderConfig {
        announce_count: 0,
        ..ResponderConfig::default()
    }
}

const VIP_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
const VIP_B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);

#[tokio::test(start_paused = true)]
async fn announcements_go_out_announce_count_times_at_the_configured_spacing() {
    let config = ResponderConfig {
        announce_count: 3,
        announce_interval: Duration::from_millis(250),
        ..ResponderConfig::default()
    };
    let mut h = Harness::new(config, 0);
    let vip6: Ipv6Addr = "2001:db8::100".parse().expect("addr");
    h.set(&[IpAddr::V4(VIP_A), IpAddr::V6(vip6)]).await;

    let mut rounds = Vec::new();
    for _ in 0..3 {
        let mut round = Vec::new();
        for _ in 0..3 {
            round.push(h.next_sent().await);
        }
        rounds.push(round);
    }
    let first = rounds
        .first()
        .and_then(|r| r.first())
        .map(|(at, _)| *at)
        .expect("sent");
    for (i, round) in rounds.iter().enumerate() {
        let kinds: Vec<String> = round
            .iter()
            .map(|(at, frame)| {
                // Paused time: the schedule is logical, so spacing is exact.
                assert_eq!(
                    *at - first,
                    Duration::from_millis(250) * i as u32,
                    "round {i}"
                );
                match frame {
                    Frame::Arp { arp, .. } => format!("arp-{}", arp.op.0),
                    Frame::Ndp {
                        msg: NdpMessage::NeighborAdvertisement(na),
                        ..
                    } => {
                        assert!(!na.solicited && na.override_flag);
                        "na".to_string()
                    }
                    other => panic!("unexpected {other:?}"),
                }
            })
            .collect();
        assert_eq!(kinds, ["arp-1", "arp-2", "na"], "round {i}");
    }
    assert!(h.quiet().await, "more than 3 rounds sent");
    assert_eq!(h.responder.counters().announcements, 9);
}

#[tokio::test(start_paused = true)]
async fn ipv6_vips_join_their_solicited_node_group_once_and_leave_it_with_the_last() {
    let mut h = Harness::new(quiet_config(), 0);
    // Same low 24 bits, so the same solicited-node group (RFC 4291 §2.7.1).
    let a: Ipv6Addr = "2001:db8::aa:100".parse().expect("addr");
    let b: Ipv6Addr = "2001:db8:1::aa:100".parse().expect("addr");
    let group = MacAddr::ipv6_multicast(solicited_node_address(a));
    let keep = IpAddr::V4(VIP_A);

    h.set(&[keep, IpAddr::V6(a), IpAddr::V6(b)]).await;
    assert_eq!(*h.link.groups.lock().expect("lock"), [(group, true)]);
    h.set(&[keep, IpAddr::V6(b)]).await;
    assert_eq!(*h.link.groups.lock().expect("lock"), [(group, true)]);
    h.set(&[keep]).await;
    assert_eq!(
        *h.link.groups.lock().expect("lock"),
        [(group, true), (group, false)]
    );
    assert!(h.quiet().await, "announcements were disabled");
}

#[tokio::test(start_paused = true)]
async fn answers_follow_the_desired_state() {
    let mut h = Harness::new(quiet_config(), 0);
    h.set(&[IpAddr::V4(VIP_A)]).await;
    h.inject(arp_request(VIP_A));
    match h.next_sent().await.1 {
        Frame::Arp { arp, .. } => {
            assert_eq!(
                (arp.op, arp.sender_ip, arp.sender_mac),
                (ArpOp::REPLY, VIP_A, OUR_MAC)
            )
        }
        other => panic!("unexpected {other:?}"),
    }

    // After VIP_A is withdrawn, a request for it goes unanswered: the next frame sent is the
    // answer to the request for VIP_B injected after it (frames are handled in order).
    h.set(&[IpAddr::V4(VIP_B)]).await;
    h.inject(arp_request(VIP_A));
    h.inject(arp_request(VIP_B));
    match h.next_sent().await.1 {
        Frame::Arp { arp, .. } => assert_eq!(arp.sender_ip, VIP_B),
        other => panic!("unexpected {other:?}"),
    }
    let counters = h.responder.counters();
    assert_eq!(
        (counters.arp_replies, counters.ignored),
        (2, 1),
        "{counters:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_frames_are_counted_and_dropped_without_stopping_the_interface() {
    let mut h = Harness::new(quiet_config(), 0);
    h.set(&[IpAddr::V4(VIP_A)]).await;
    let mut truncated = arp_request(VIP_A);
    truncated.truncate(30);
    h.inject(truncated);
    h.inject(vec![]);
    h.inject(arp_request(VIP_A));
    assert!(matches!(h.next_sent().await.1, Frame::Arp { .. }));
    let counters = h.responder.counters();
    assert_eq!(counters.dropped_bad_frame, 2, "{counters:?}");
    assert_eq!(counters.arp_replies, 1, "{counters:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_open_is_retried_with_doubling_back_off_and_reported() {
    let config = ResponderConfig {
        reopen_delay: Duration::from_millis(100),
        ..quiet_config()
    };
    let h = Harness::new(config, 2);
    let mut states = h.responder.interfaces();
    let start = Instant::now();
    h.responder
        .set_vips([(IFACE.to_string(), [IpAddr::V4(VIP_A)].into())].into());
    let mut saw_failed = false;
    // Bounded: every pass awaits a state change, and the test ends at Serving or the timeout.
    let served = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            states.changed().await.expect("responder alive");
            match states.borrow_and_update().get(IFACE) {
                Some(InterfaceState::Failed { .. }) => saw_failed = true,
                Some(InterfaceState::Serving { .. }) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(served.is_ok(), "never served");
    assert!(saw_failed, "failure not reported");
    // Two failures: back-off 100 ms then 200 ms (logical time).
    assert_eq!(start.elapsed(), Duration::from_millis(300));
    assert_eq!(h.link.opens.load(Ordering::SeqCst), 3);
    assert_eq!(h.responder.counters().socket_errors, 2);
    h.responder.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn counts_are_kept_per_vip_while_it_is_desired() {
    let config = ResponderConfig {
        announce_count: 1,
        ..ResponderConfig::default()
    };
    let mut h = Harness::new(config, 0);
    let reader = h.responder.vip_counts();
    h.set(&[IpAddr::V4(VIP_A)]).await;
    // One round: a gratuitous ARP request and reply (RFC 5227 §3, RFC 5944 §4.6).
    h.next_sent().await;
    h.next_sent().await;
    h.inject(arp_request(VIP_A));
    h.inject(arp_request(VIP_B));
    match h.next_sent().await.1 {
        Frame::Arp { arp, .. } => assert_eq!((arp.op, arp.sender_ip), (ArpOp::REPLY, VIP_A)),
        other => panic!("unexpected {other:?}"),
    }
    assert!(h.quiet().await, "only VIP_A is answered");
    let counts = reader.read();
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        [IpAddr::V4(VIP_A)],
        "no entry for a VIP not owned: {counts:?}"
    );
    assert_eq!(
        counts[&IpAddr::V4(VIP_A)],
        VipCounts {
            requests_received: 1,
            responses_sent: 1,
            gratuitous_sent: 2,
        }
    );

    // VIP_A withdrawn: its entry goes with it; VIP_B starts from zero.
    h.set(&[IpAddr::V4(VIP_B)]).await;
    let counts = reader.read();
    assert!(!counts.contains_key(&IpAddr::V4(VIP_A)), "{counts:?}");
    h.next_sent().await;
    h.next_sent().await;
    assert_eq!(
        reader.read()[&IpAddr::V4(VIP_B)],
        VipCounts {
            gratuitous_sent: 2,
            ..VipCounts::default()
        }
    );
}
