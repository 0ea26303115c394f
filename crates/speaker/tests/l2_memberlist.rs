//! The gossip between speakers on loopback: three members find each other, a member that
//! vanishes (as under SIGKILL) or leaves is dropped from the others' live sets, and a member
//! with another secret never gets in (its datagrams are counted as unauthenticated).
//!
//! Each member gets its own loopback address (127.0.0.1-3) and all share one port, as speakers
//! on real nodes do.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferrolb_speaker::l2::memberlist::auth::SecretKey;
use ferrolb_speaker::l2::memberlist::{Liveness, Memberlist, MemberlistConfig, NodeAddrs};
use tokio::sync::watch;

/// Every wait in these tests: generous, as the machine may be loaded.
const DEADLINE: Duration = Duration::from_secs(20);

fn free_port(ips: &[IpAddr]) -> u16 {
    // Bounded: a port free on the first address is nearly always free on the others.
    for _ in 0..50 {
        let probe = std::net::UdpSocket::bind((ips[0], 0)).expect("bind probe");
        let port = probe.local_addr().expect("addr").port();
        drop(probe);
        if ips
            .iter()
            .all(|ip| std::net::UdpSocket::bind((*ip, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no common free UDP port on {ips:?}");
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn nodes(names: &[&str]) -> NodeAddrs {
    names
        .iter()
        .zip(1u8..)
        .map(|(n, i)| (n.to_string(), vec![ip(i)]))
        .collect()
}

fn member(
    name: &str,
    last: u8,
    port: u16,
    secret: Option<&str>,
    nodes: &watch::Sender<NodeAddrs>,
) -> Memberlist {
    let mut config = MemberlistConfig::new(name);
    config.port = port;
    config.bind = Some(SocketAddr::new(ip(last), port));
    config.secret = secret.map(|s| SecretKey::from_bytes(s.as_bytes(), "test").expect("secret"));
    Memberlist::spawn(config, nodes.subscribe())
}

fn set(names: &[&str]) -> Liveness {
    Some(names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>())
}

async fn wait_live(m: &Memberlist, want: &Liveness) {
    let mut rx = m.live();
    let got = tokio::time::timeout(DEADLINE, rx.wait_for(|l| l == want))
        .await
        .is_ok();
    let now = rx.borrow().clone();
    assert!(got, "live set stayed {now:?}, want {want:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_join_and_a_vanished_one_is_declared_down() {
    let port = free_port(&[ip(1), ip(2), ip(3)]);
    let (tx, _) = watch::channel(nodes(&["a", "b", "c"]));
    let a = member("a", 1, port, None, &tx);
    let b = member("b", 2, port, None, &tx);
    let c = member("c", 3, port, None, &tx);
    let all = set(&["a", "b", "c"]);
    for m in [&a, &b, &c] {
        wait_live(m, &all).await;
    }
    // SIGKILL-like: no leave message, the others must detect it by probing.
    c.abort();
    let survivors = set(&["a", "b"]);
    wait_live(&a, &survivors).await;
    wait_live(&b, &survivors).await;
    assert!(a.counters().received > 0);
    assert_eq!(a.counters().dropped_unauthenticated, 0);
    a.leave().await;
    b.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_leaves_is_dropped_at_once() {
    let port = free_port(&[ip(1), ip(2)]);
    let (tx, _) = watch::channel(nodes(&["a", "b"]));
    let a = member("a", 1, port, Some("s3cret"), &tx);
    let b = member("b", 2, port, Some("s3cret"), &tx);
    wait_live(&a, &set(&["a", "b"])).await;
    b.leave().await;
    wait_live(&a, &set(&["a"])).await;
    a.leave().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_another_secret_never_joins_and_its_datagrams_are_counted() {
    let port = free_port(&[ip(1), ip(2)]);
    let (tx, _) = watch::channel(nodes(&["a", "b"]));
    let a = member("a", 1, port, Some("right"), &tx);
    let b = member("b", 2, port, Some("wrong"), &tx);
    // Each settles alone (after MemberlistConfig::settle) and drops the other's datagrams.
    wait_live(&a, &set(&["a"])).await;
    wait_live(&b, &set(&["b"])).await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    // Bounded wait for b's announcements (sent every second) to reach a.
    while a.counters().dropped_unauthenticated == 0 && tokio::time::Instant::now() < deadline {
        let mut rx = a.live();
        let _ = tokio::time::timeout(Duration::from_millis(100), rx.changed()).await;
    }
    assert!(
        a.counters().dropped_unauthenticated > 0,
        "{:?}",
        a.counters()
    );
    assert_eq!(a.live().borrow().clone(), set(&["a"]));
    a.leave().await;
    b.leave().await;
}

#[tokio::test(start_paused = true)]
async fn without_an_own_address_the_live_set_stays_unknown() {
    let (tx, _) = watch::channel(nodes(&["b"]));
    let mut config = MemberlistConfig::new("a");
    config.settle = Duration::from_millis(10);
    let a = Memberlist::spawn(config, tx.subscribe());
    // Paused clock: this runs the task until idle and moves virtual time well past `settle`.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(*a.live().borrow(), None);
    assert_eq!(*a.bound().borrow(), None);
    a.leave().await;
}
