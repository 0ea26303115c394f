//! Unnumbered BGP (a BGPPeer with `interface` and no `peerAddress`): finding the router's IPv6
//! link-local address on the link, and being found by it, as FRR's `neighbor IF interface`
//! does.
//!
//! FRR learns an unnumbered neighbour's link-local address from the Router Advertisements
//! (ICMPv6 type 134, RFC 4861 §4.2) it receives on the interface, and sends its own there. So
//! one thread per interface, for as long as a peer uses it:
//!
//! ```text
//!   every RA_INTERVAL: send an RA to ff02::1 on IF (router lifetime 0: "not a default
//!                      router", RFC 4861 §4.2, so hosts do not route through us), and a
//!                      Router Solicitation to ff02::2 while no router is known
//!   always:            read ICMPv6 on IF; an RA from a link-local source names the router
//!                      ──▶ Discovery::router(IF) and a wake-up of the BGP backend
//! ```
//!
//! *Guarantees*: the thread ends within [`RECV_TIMEOUT`] after its interface is no longer
//! wanted; a router that changes its link-local address is followed. *Caveats*: the first RA
//! heard wins until another router's arrives (a point-to-point link has one); the RA's hop
//! limit is not checked (RFC 4861 §6.1.2 wants 255) since the socket is bound to the link and
//! only its source address is used; a missing interface is retried every [`RA_INTERVAL`].

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferrolb_api::model::BgpPeer;
use ferrolb_bgp::speaker::PeerConfig;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::sync::Notify;

/// How often we send our RA (FRR sends every 10 s on unnumbered interfaces; less keeps the
/// first session prompt).
pub const RA_INTERVAL: Duration = Duration::from_secs(3);
/// The longest a read waits, and so how long a thread outlives its interface.
pub const RECV_TIMEOUT: Duration = Duration::from_millis(500);

/// ICMPv6 Router Advertisement (RFC 4861 §4.2).
const ROUTER_ADVERTISEMENT: u8 = 134;
/// ICMPv6 Router Solicitation (RFC 4861 §4.1).
const ROUTER_SOLICITATION: u8 = 133;
/// ff02::2, all routers on the link.
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// ff02::1, all nodes on the link.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Our Router Advertisement: type 134, code 0, checksum (the kernel fills it for ICMPv6 raw
/// sockets, RFC 3542 §3.1), Cur Hop Limit 0 and flags 0 (unspecified), Router Lifetime 0 (not
/// a default router), Reachable Time and Retrans Timer 0 (unspecified); no options.
pub fn router_advertisement() -> [u8; 16] {
    let mut ra = [0u8; 16];
    ra[0] = ROUTER_ADVERTISEMENT;
    ra
}

/// A Router Solicitation (RFC 4861 §4.1): type 133, code 0, checksum (kernel), reserved. Sent
/// while no router is known, so a router answers at once instead of at its next periodic RA.
pub fn router_solicitation() -> [u8; 8] {
    let mut rs = [0u8; 8];
    rs[0] = ROUTER_SOLICITATION;
    rs
}

/// The router named by an ICMPv6 message `icmp` from `source`: `source` when the message is a
/// Router Advertisement (at least its 16 fixed octets) and `source` is link-local (RFC 4861
/// §6.1.2: "IP Source Address is a link-local address"). Pure.
pub fn router_of(icmp: &[u8], source: Ipv6Addr) -> Option<Ipv6Addr> {
    (icmp.len() >= 16
        && icmp.first() == Some(&ROUTER_ADVERTISEMENT)
        && icmp.get(1) == Some(&0)
        && source.is_unicast_link_local())
    .then_some(source)
}

/// The session settings of an unnumbered `peer` once its router is known: `cfg` (from the
/// BGPPeer) aimed at `router` on the interface, both families, IPv4 with the IPv6 next hop
/// (RFC 8950). `None` while no router was heard; `cfg` unchanged for a numbered peer. Pure.
pub fn session_config(
    mut cfg: PeerConfig,
    peer: &BgpPeer,
    router: Option<Ipv6Addr>,
) -> Option<PeerConfig> {
    let Some(ifname) = &peer.interface else {
        return Some(cfg);
    };
    cfg.addr = std::net::IpAddr::V6(router?);
    cfg.interface = Some(ifname.clone());
    cfg.extended_next_hop = true;
    // The link carries both families whatever disableMP says: there is no peer address whose
    // family could choose one.
    cfg.ipv4 = true;
    cfg.ipv6 = true;
    Some(cfg)
}

/// One interface's thread and what it found.
struct Link {
    router: Arc<Mutex<Option<Ipv6Addr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Not joined: it ends by itself within RECV_TIMEOUT, and the backend need not wait.
        drop(self.thread.take());
    }
}

/// The routers found on the interfaces of unnumbered peers.
#[derive(Default)]
pub struct Discovery {
    links: BTreeMap<String, Link>,
    changed: Arc<Notify>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("interfaces", &self.links.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Discovery {
    /// Nothing watched yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Watches exactly `interfaces`: starts a thread for each new one, stops those no longer
    /// listed.
    pub fn watch(&mut self, interfaces: &BTreeSet<String>) {
        self.links.retain(|name, _| interfaces.contains(name));
        for name in interfaces {
            if self.links.contains_key(name) {
                continue;
            }
            let router = Arc::new(Mutex::new(None));
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let (ifname, router, stop, changed) = (
                    name.clone(),
                    Arc::clone(&router),
                    Arc::clone(&stop),
                    Arc::clone(&self.changed),
                );
                std::thread::Builder::new()
                    .name(format!("ra-{name}"))
                    .spawn(move || run_link(&ifname, &router, &stop, &changed))
                    .map_err(|error| {
                        tracing::error!(interface = %name, %error,
                            "unnumbered BGP: cannot start the neighbour discovery thread");
                    })
                    .ok()
            };
            self.links.insert(
                name.clone(),
                Link {
                    router,
                    stop,
                    thread,
                },
            );
        }
    }

    /// The router's link-local address on `interface`, once one was heard.
    pub fn router(&self, interface: &str) -> Option<Ipv6Addr> {
        let link = self.links.get(interface)?;
        *link.router.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves when a router was found or changed on any watched interface.
    pub fn changed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let changed = Arc::clone(&self.changed);
        async move { changed.notified().await }
    }
}

/// The thread of one interface: (re)opens the socket, sends RAs, records the router. Ends when
/// `stop` is set; every wait in it is bounded by [`RECV_TIMEOUT`] or [`RA_INTERVAL`].
fn run_link(name: &str, router: &Mutex<Option<Ipv6Addr>>, stop: &AtomicBool, changed: &Notify) {
    let mut said_error = false;
    while !stop.load(Ordering::Acquire) {
        let socket = match open(name) {
            Ok(s) => s,
            Err(error) => {
                if !said_error {
                    tracing::warn!(interface = %name, %error,
                        "unnumbered BGP: no neighbour discovery on this interface yet; retrying");
                    said_error = true;
                }
                sleep_unless_stopped(RA_INTERVAL, stop);
                continue;
            }
        };
        said_error = false;
        let mut next_ra = Instant::now();
        let mut buf = [0u8; 1500];
        while !stop.load(Ordering::Acquire) {
            if Instant::now() >= next_ra {
                if let Err(error) = send_ra(&socket, name) {
                    tracing::debug!(interface = %name, %error, "router advertisement not sent");
                }
                let known = router
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some();
                if !known {
                    if let Err(error) = send(&socket, name, &router_solicitation(), ALL_ROUTERS) {
                        tracing::debug!(interface = %name, %error, "router solicitation not sent");
                    }
                }
                next_ra = Instant::now() + RA_INTERVAL;
            }
            let (len, from) = match recv_from(&socket, &mut buf) {
                Ok(x) => x,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // The interface went away, say: reopen after a pause.
                    tracing::debug!(interface = %name, %error, "neighbour discovery read failed");
                    sleep_unless_stopped(RA_INTERVAL, stop);
                    break;
                }
            };
            let Some(source) = from.as_socket_ipv6().map(|a| *a.ip()) else {
                continue;
            };
            let Some(found) = router_of(buf.get(..len).unwrap_or_default(), source) else {
                continue;
            };
            let mut current = router.lock().unwrap_or_else(PoisonError::into_inner);
            if *current != Some(found) {
                tracing::info!(interface = %name, router = %found,
                    "unnumbered BGP: router found from its router advertisement");
                *current = Some(found);
                drop(current);
                // A stored permit if the backend is busy: the wake-up is never lost.
                changed.notify_one();
            }
        }
    }
}

/// `Socket::recv_from` into an initialised buffer.
#[allow(unsafe_code)]
fn recv_from(socket: &Socket, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
    // SAFETY: `u8` and `MaybeUninit<u8>` have the same layout, and recv_from only writes into
    // the buffer (never de-initialises it), so the bytes stay valid `u8`s (socket2's own
    // documented way to read into an initialised buffer).
    let uninit = unsafe { &mut *(std::ptr::from_mut::<[u8]>(buf) as *mut [MaybeUninit<u8>]) };
    socket.recv_from(uninit)
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let end = Instant::now() + total;
    while !stop.load(Ordering::Acquire) && Instant::now() < end {
        std::thread::sleep(RECV_TIMEOUT.min(end.saturating_duration_since(Instant::now())));
    }
}

/// A raw ICMPv6 socket bound to `name`, sending with hop limit 255 (RFC 4861 §4.2 wants it on
/// every RA) and not looping its own multicast back (our RA must not name us).
fn open(name: &str) -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind_device(Some(name.as_bytes()))?;
    let index = ferrolb_bgp::net::ifindex(name)?;
    socket.set_multicast_if_v6(index)?;
    socket.set_multicast_hops_v6(255)?;
    socket.set_unicast_hops_v6(255)?;
    socket.set_multicast_loop_v6(false)?;
    socket.set_read_timeout(Some(RECV_TIMEOUT))?;
    Ok(socket)
}

fn send_ra(socket: &Socket, name: &str) -> io::Result<()> {
    send(socket, name, &router_advertisement(), ALL_NODES)
}

fn send(socket: &Socket, name: &str, message: &[u8], to: Ipv6Addr) -> io::Result<()> {
    let index = ferrolb_bgp::net::ifindex(name)?;
    let to = SockAddr::from(SocketAddrV6::new(to, 0, 0, index));
    socket.send_to(message, &to).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ll() -> Ipv6Addr {
        "fe80::2".parse().expect("addr")
    }

    #[test]
    fn an_ra_from_a_link_local_source_names_the_router() {
        assert_eq!(router_of(&router_advertisement(), ll()), Some(ll()));
    }

    #[test]
    fn other_messages_and_sources_name_no_router() {
        assert_eq!(router_of(&router_solicitation(), ll()), None);
        let mut rs = router_advertisement();
        rs[0] = 133; // a Router Solicitation with an RA's length
        assert_eq!(router_of(&rs, ll()), None);
        assert_eq!(
            router_of(&router_advertisement()[..15], ll()),
            None,
            "truncated"
        );
        let global: Ipv6Addr = "2001:db8::2".parse().expect("addr");
        assert_eq!(router_of(&router_advertisement(), global), None);
        let mut bad_code = router_advertisement();
        bad_code[1] = 1;
        assert_eq!(router_of(&bad_code, ll()), None);
    }

    fn peer(spec: &str) -> BgpPeer {
        let yaml = format!(
            "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: p, namespace: m}}\n\
             spec: {spec}\n"
        );
        let res =
            ferrolb_api::source::files::load_str(&yaml, std::path::Path::new("t")).expect("yaml");
        let cfg = ferrolb_api::validate::validate(&res).expect("valid");
        cfg.bgp_peers.get("p").cloned().expect("peer")
    }

    #[test]
    fn an_unnumbered_peer_waits_for_its_router_then_aims_at_it_on_the_link() {
        let p = peer("{myASN: 64500, dynamicASN: external, interface: eth1, disableMP: true}");
        let base = crate::backend::bgp::peer_config(&p);
        assert_eq!(session_config(base.clone(), &p, None), None);
        let cfg = session_config(base, &p, Some(ll())).expect("router known");
        assert_eq!(cfg.addr, std::net::IpAddr::V6(ll()));
        assert_eq!(cfg.interface.as_deref(), Some("eth1"));
        assert!(cfg.extended_next_hop && cfg.ipv4 && cfg.ipv6);
        assert_eq!(cfg.peer_as, None, "dynamicASN external");
    }

    #[test]
    fn a_numbered_peer_is_left_as_it_is() {
        let p = peer("{myASN: 64500, peerASN: 64512, peerAddress: 192.0.2.1}");
        let base = crate::backend::bgp::peer_config(&p);
        assert_eq!(session_config(base.clone(), &p, Some(ll())), Some(base));
    }

    #[test]
    fn our_ra_says_we_are_not_a_default_router() {
        let ra = router_advertisement();
        assert_eq!(ra[0], 134);
        // Router Lifetime, octets 6-7 (RFC 4861 §4.2): 0.
        assert_eq!(&ra[6..8], &[0, 0]);
    }
}
