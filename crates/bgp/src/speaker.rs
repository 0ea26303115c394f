//! The desired-state handle: set the peers and the routes at any time; each peer task keeps its
//! own Adj-RIB-Out and sends only the difference.
//!
//! ```text
//!                 set_routes ──watch──▶ every peer task
//!   Speaker ──┬── set_peers: spawn / stop (Cease 6/3) / restart changed peers only
//!             └── listener task(s): accept ──mpsc<TcpStream>──▶ the peer of that address
//!   peer tasks ──mpsc<SpeakerEvent>──▶ the receiver returned by Speaker::start
//! ```
//!
//! *Guarantees*: setting the same routes twice sends nothing; changing one peer does not touch
//! the others' sessions; received routes are counted, never stored. *Assumptions*: the caller
//! drains the event receiver (peer tasks wait on a full channel). *Caveats*: one session per
//! peer address; a peer's port or options changing restarts that session.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::counters::{MessageCounters, MessageCounts};
use crate::event::SpeakerEvent;
use crate::md5::set_md5_key;
use crate::net::{self, NetError};
use crate::peer::{self, PeerTask, Shared};
use crate::rib::Routes;
use crate::wire::error::cease_subcode;
use crate::wire::Notification;

pub use crate::peer::{GracefulRestartConfig, PeerConfig};

/// The default of [`SpeakerConfig::max_unknown_peers`]: a collector's worth of routers, while
/// a flood of connections from random addresses cannot grow the peer map without bound.
pub const DEFAULT_MAX_UNKNOWN_PEERS: usize = 64;

/// The default of [`SpeakerConfig::open_deadline`]: a router answers a connection with its OPEN
/// at once; ten seconds leave room for a slow one.
pub const DEFAULT_OPEN_DEADLINE: Duration = Duration::from_secs(10);

/// The speaker's own settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    /// Our ASN (4-octet capable, RFC 6793).
    pub local_as: u32,
    /// BGP Identifier; `None` = the local IPv4 address of each session.
    pub router_id: Option<Ipv4Addr>,
    /// Addresses to accept connections on (port 179 usually); empty = active only.
    pub listen: Vec<SocketAddr>,
    /// Graceful Restart as the restarting speaker.
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Accept sessions from unknown addresses with this template (its `addr` is ignored):
    /// a collector. `None` refuses them.
    pub accept_unknown: Option<PeerConfig>,
    /// Capacity of the event channel.
    pub event_capacity: usize,
    /// At most this many sessions from unknown addresses at once (with `accept_unknown`);
    /// further connections are closed unanswered until one ends. Each ends with its connection
    /// and leaves the peer map then. When all are taken, a new connection evicts the oldest
    /// one that has not yet sent an acceptable OPEN, so connections that never finish their OPEN
    /// cannot lock real peers out.
    pub max_unknown_peers: usize,
    /// How long a connection from an unknown address has to send its OPEN before it gets
    /// 4/0 (Hold Timer Expired) and is closed: the OpenSent hold time for collectors, far below
    /// RFC 4271 §8.2.2's suggested 4 minutes.
    pub open_deadline: Duration,
}

impl SpeakerConfig {
    /// Defaults: no listener, no GR, 1024 events.
    pub fn new(local_as: u32) -> Self {
        SpeakerConfig {
            local_as,
            router_id: None,
            listen: Vec::new(),
            graceful_restart: None,
            accept_unknown: None,
            event_capacity: 1024,
            max_unknown_peers: DEFAULT_MAX_UNKNOWN_PEERS,
            open_deadline: DEFAULT_OPEN_DEADLINE,
        }
    }
}

/// Why the speaker could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    /// A socket failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// TCP-MD5 could not be set on a listener for a peer.
    #[error("listener {listen}: {source}")]
    Md5 {
        /// The listener.
        listen: SocketAddr,
        /// The failure.
        source: crate::md5::Md5Error,
    },
    /// A peer's hold time is 1 or 2 (RFC 4271 §4.2).
    #[error("peer {peer}: hold time {value} is not allowed (0 or at least 3)")]
    BadHoldTime {
        /// The peer.
        peer: IpAddr,
        /// The value.
        value: u16,
    },
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    cfg: SpeakerConfig,
    peers: Mutex<HashMap<IpAddr, PeerTask>>,
    routes: watch::Sender<Arc<Routes>>,
    listeners: Vec<Arc<TcpListener>>,
    accept_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Speaker {
    inner: Arc<Inner>,
}

/// Strips the IPv4-mapped form a dual-stack listener reports.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Speaker {
    /// Binds the listeners and returns the handle with the receiver of events. Must be called
    /// inside a tokio runtime.
    pub async fn start(
        cfg: SpeakerConfig,
    ) -> Result<(Speaker, mpsc::Receiver<SpeakerEvent>), SpeakerError> {
        let (events_tx, events_rx) = mpsc::channel(cfg.event_capacity.max(1));
        let shared = Arc::new(Shared {
            local_as: cfg.local_as,
            router_id: cfg.router_id,
            graceful_restart: cfg.graceful_restart,
            events: events_tx,
            routes_ready: AtomicBool::new(true),
            restarting: AtomicBool::new(false),
            next_task_id: AtomicU64::new(0),
        });
        let mut listeners = Vec::new();
        for addr in &cfg.listen {
            listeners.push(Arc::new(net::listen(*addr)?));
        }
        let (routes, _) = watch::channel(Arc::new(Routes::new()));
        let inner = Arc::new(Inner {
            shared,
            cfg,
            peers: Mutex::new(HashMap::new()),
            routes,
            listeners,
            accept_tasks: Mutex::new(Vec::new()),
        });
        let speaker = Speaker { inner };
        let tasks: Vec<_> = speaker
            .inner
            .listeners
            .iter()
            .map(|l| tokio::spawn(accept_loop(Arc::clone(l), Arc::downgrade(&speaker.inner))))
            .collect();
        *speaker
            .inner
            .accept_tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = tasks;
        Ok((speaker, events_rx))
    }

    /// The addresses the listeners are bound to (port 0 resolved).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.inner
            .listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The addresses of the peers that have a task now: the configured ones and the sessions
    /// accepted from unknown addresses that are still up.
    pub fn peer_addrs(&self) -> Vec<IpAddr> {
        let mut addrs: Vec<IpAddr> = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        addrs.sort();
        addrs
    }

    /// The message counts of the peer at `addr` (configured, or accepted from an unknown
    /// address and still up): since it was configured (a restart for a configuration change
    /// keeps counting), or since it connected (unknown peers); `None` when it has no task.
    pub fn message_counts(&self, addr: IpAddr) -> Option<MessageCounts> {
        self.inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&canonical(addr))
            .map(|task| task.counters.snapshot())
    }

    /// Sets the peer list. New peers start at once; removed ones get Cease 6/3 (Peer
    /// De-configured); changed ones get Cease 6/6 (Other Configuration Change) and restart;
    /// unchanged ones are not touched (RFC 4486 §4).
    pub fn set_peers(&self, peers: Vec<PeerConfig>) -> Result<(), SpeakerError> {
        for p in &peers {
            if p.hold_time == 1 || p.hold_time == 2 {
                return Err(SpeakerError::BadHoldTime {
                    peer: p.addr,
                    value: p.hold_time,
                });
            }
        }
        let mut map = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let wanted: HashMap<IpAddr, PeerConfig> =
            peers.into_iter().map(|p| (canonical(p.addr), p)).collect();
        let gone: Vec<IpAddr> = map
            .iter()
            .filter(|(addr, task)| wanted.get(addr) != Some(&task.cfg))
            .map(|(addr, _)| *addr)
            .collect();
        // The counters of restarted peers, carried over to their new tasks.
        let mut counters: HashMap<IpAddr, Arc<MessageCounters>> = HashMap::new();
        for addr in gone {
            if let Some(task) = map.remove(&addr) {
                let subcode = if wanted.contains_key(&addr) {
                    if !task.unknown {
                        counters.insert(addr, Arc::clone(&task.counters));
                    }
                    cease_subcode::OTHER_CONFIGURATION_CHANGE
                } else {
                    cease_subcode::PEER_DECONFIGURED
                };
                let _ = task.stop.try_send(Notification::cease(subcode));
                self.set_listener_md5(addr, None)?;
            }
        }
        for (addr, cfg) in wanted {
            if map.contains_key(&addr) {
                continue;
            }
            self.set_listener_md5(addr, cfg.md5_password.as_deref())?;
            if cfg.gtsm_hops.is_some() {
                // RFC 5082 §3: a GTSM peer drops our SYN-ACK unless it leaves with TTL 255,
                // and an accepted socket inherits the listener's TTL only for later segments.
                // The minimum-TTL check stays per accepted socket, so other peers are unaffected.
                for l in &self.inner.listeners {
                    if let Ok(local) = l.local_addr() {
                        let opts = net::SocketOptions {
                            ttl: Some(255),
                            ..net::SocketOptions::default()
                        };
                        net::apply_ttl(&socket2::SockRef::from(l.as_ref()), local, &opts)?;
                    }
                }
            }
            let task = peer::spawn_counted(
                cfg,
                Arc::clone(&self.inner.shared),
                self.inner.routes.subscribe(),
                None,
                None,
                counters.remove(&addr).unwrap_or_default(),
            );
            map.insert(addr, task);
        }
        Ok(())
    }

    /// Closes the session with `peer` by sending `notification` (RFC 4271 Event 8,
    /// AutomaticStop; the BFD coupling sends Cease 6/10, RFC 9384) and lets it reconnect after
    /// the usual backoff; the peer stays configured. Returns false when `peer` has no task or
    /// a reset is already pending for it.
    pub fn reset_peer(&self, peer: IpAddr, notification: Notification) -> bool {
        let map = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        map.get(&canonical(peer))
            .is_some_and(|t| t.reset.try_send(notification).is_ok())
    }

    fn set_listener_md5(&self, peer: IpAddr, password: Option<&str>) -> Result<(), SpeakerError> {
        for l in &self.inner.listeners {
            let listen = l
                .local_addr()
                .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
            // A v4 listener cannot hold a v6 peer's key and the other way round.
            if listen.is_ipv4() != peer.is_ipv4() && !listen.ip().is_unspecified() {
                continue;
            }
            match password {
                Some(pw) => set_md5_key(l.as_ref(), peer, pw.as_bytes()),
                // Deleting a key that was never set fails with ENOENT: nothing to undo.
                None => set_md5_key(l.as_ref(), peer, b"").or(Ok(())),
            }
            .map_err(|source| SpeakerError::Md5 { listen, source })?;
        }
        Ok(())
    }

    /// Lets sessions come up before the routes are known (e.g. while a large file is read):
    /// a session that reaches Established before the next [`Speaker::set_routes`] waits for it
    /// before sending its initial UPDATEs and End-of-RIB, so a Graceful Restart receiver never
    /// sees an End-of-RIB for an empty table (RFC 4724 §4.2 would purge its stale routes).
    /// Call before [`Speaker::set_peers`].
    pub fn defer_routes(&self) {
        self.inner
            .shared
            .routes_ready
            .store(false, Ordering::Release);
    }

    /// Sets the routes every peer should have. Idempotent: the same set again sends nothing,
    /// except that the first call after [`Speaker::defer_routes`] always wakes the peers.
    pub fn set_routes(&self, routes: Routes) {
        let deferred = !self.inner.shared.routes_ready.load(Ordering::Acquire);
        self.inner.routes.send_if_modified(|current| {
            if **current == routes && !deferred {
                false
            } else {
                *current = Arc::new(routes);
                true
            }
        });
        // After the new value is in the watch: a peer that still reads `false` defers, and
        // then sees the change (it has not marked it seen), so none misses its End-of-RIB.
        self.inner
            .shared
            .routes_ready
            .store(true, Ordering::Release);
    }

    /// Graceful shutdown: Cease / Administrative Shutdown (6/2) with the RFC 9003 message to
    /// every peer, so routers withdraw our routes at once; waits up to `limit` for the
    /// NOTIFICATIONs to go out.
    pub async fn shutdown(&self, message: &str, limit: Duration) {
        self.stop_all(message, limit).await;
    }

    /// Shutdown for a restart of this process (an upgrade): where Graceful Restart was
    /// negotiated the session closes so that the peer keeps our routes as stale for the
    /// advertised Restart Time (a Cease other than Hard Reset when both sides set the N bit,
    /// RFC 8538 §4; else the TCP connection closes without a NOTIFICATION, RFC 4724 §4.2);
    /// elsewhere as [`Speaker::shutdown`]. See `fsm::restart_close`.
    pub async fn shutdown_for_restart(&self, message: &str, limit: Duration) {
        self.inner.shared.restarting.store(true, Ordering::Release);
        self.stop_all(message, limit).await;
    }

    async fn stop_all(&self, message: &str, limit: Duration) {
        let notification =
            Notification::cease_with_communication(cease_subcode::ADMINISTRATIVE_SHUTDOWN, message)
                .unwrap_or_else(|_| Notification::cease(cease_subcode::ADMINISTRATIVE_SHUTDOWN));
        let tasks: Vec<PeerTask> = self
            .inner
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, t)| t)
            .collect();
        for t in &tasks {
            let _ = t.stop.try_send(notification.clone());
        }
        let _ = tokio::time::timeout(limit, async {
            for t in tasks {
                let _ = t.handle.await;
            }
        })
        .await;
        for t in self
            .inner
            .accept_tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
    }
}

/// Accepts connections and hands each to the task of its peer; unknown addresses are refused
/// unless the speaker accepts them (collector mode). Ends when the speaker is dropped.
async fn accept_loop(listener: Arc<TcpListener>, inner: std::sync::Weak<Inner>) {
    let mut failures: u32 = 0;
    loop {
        let accepted = listener.accept().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let (stream, remote) = match accepted {
            Ok(x) => {
                failures = 0;
                x
            }
            Err(_) => {
                // EMFILE and friends: back off (bounded) instead of spinning.
                failures = failures.saturating_add(1).min(10);
                tokio::time::sleep(Duration::from_millis(10u64 << failures)).await;
                continue;
            }
        };
        let addr = canonical(remote.ip());
        let mut map = inner.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = map.get(&addr) {
            let _ = task.inbound.try_send(stream);
            continue;
        }
        let Some(template) = inner.cfg.accept_unknown.clone() else {
            continue; // dropped: not a configured peer
        };
        let unknown = map.values().filter(|t| t.unknown).count();
        if unknown >= inner.cfg.max_unknown_peers {
            // The oldest (lowest id) connection still waiting for its OPEN makes room, so a
            // flood of connections that trickle bytes cannot keep real peers out until their
            // deadline; sessions past the OPEN are never evicted.
            let oldest = map
                .iter()
                .filter(|(_, t)| t.unknown && !t.opened.load(Ordering::Acquire))
                .min_by_key(|(_, t)| t.id)
                .map(|(a, _)| *a);
            let Some(evicted) = oldest.and_then(|a| map.remove(&a)) else {
                tracing::warn!(peer = %addr, limit = inner.cfg.max_unknown_peers,
                    "connection refused: too many sessions from unknown addresses");
                continue;
            };
            // It sent no OPEN, so it gets no NOTIFICATION either: the connection is dropped.
            evicted.handle.abort();
            tracing::warn!(peer = %addr, evicted = %evicted.cfg.addr,
                limit = inner.cfg.max_unknown_peers,
                "too many sessions from unknown addresses: evicted the oldest without an OPEN");
        }
        let cfg = PeerConfig {
            addr,
            passive: true,
            ..template
        };
        // The task leaves the map when its connection ends, unless a newer task took its place.
        let weak = Arc::downgrade(&inner);
        let on_exit: peer::OnExit = Box::new(move |id| {
            if let Some(inner) = weak.upgrade() {
                let mut map = inner.peers.lock().unwrap_or_else(PoisonError::into_inner);
                if map.get(&addr).is_some_and(|t| t.id == id) {
                    map.remove(&addr);
                }
            }
        });
        let task = peer::spawn(
            cfg,
            Arc::clone(&inner.shared),
            inner.routes.subscribe(),
            Some(on_exit),
            Some(inner.cfg.open_deadline),
        );
        let _ = task.inbound.try_send(stream);
        map.insert(addr, task);
    }
}
