//! Speaker liveness by SWIM gossip (foca), for the Layer 2 election.
//!
//! Every speaker gossips with the others over UDP (`--memberlist-port`, 7946 as in MetalLB) at
//! the Nodes' InternalIPs. The live set (this node plus every alive or suspect member) goes out
//! on a `watch`; [`crate::l2::election::compute_l2`] takes it as `live_speakers`. `None` on that
//! watch means "not known": gossip is disabled, cannot run (no address of our own), or has not
//! settled yet after start, and the election then trusts the Nodes' Ready conditions, which
//! every speaker reads alike.
//!
//! ```text
//!  nodes: watch<NodeAddrs> ──▶ ┌──────────── memberlist task ─────────────┐
//!   (from each snapshot)       │ UdpSocket ──recv── auth::open ──▶ foca   │
//!                              │ TimerQueue ──due──────────────────▶ foca │
//!                              │ foca ──AccumulatingRuntime── sends: auth::seal ──▶ UdpSocket
//!                              │                               timers ──▶ TimerQueue
//!                              │                        notifications ──▶ live set
//!                              └───────────────────────────────────────────┘
//!                                      └──▶ live: watch<Option<BTreeSet<node>>>
//! ```
//!
//! *Guarantees*: the live set always contains this node; a speaker that stops gracefully
//! ([`Memberlist::leave`]) tells the others at once; one that dies is declared down within
//! about [`tuning::worst_case_detection`]. Datagrams that fail the envelope (bad magic, bad or
//! missing tag) or foca's decoding are dropped and counted, never fatal.
//!
//! *Assumptions*: every speaker uses the same port and the same secret (or none); Node
//! InternalIPs are reachable between speakers.
//!
//! *Caveats*: the envelope authenticates but does not prevent replay of a captured datagram;
//! SWIM's incarnation and probe numbers make a replay stale quickly. Until the first exchange
//! with another member (or [`MemberlistConfig::settle`]) the live set is `None` so a starting
//! speaker does not claim every VIP while it knows only itself.

// The pure pieces live in ferrolb-gossip (no Kubernetes, so it fuzzes cheaply); their old
// paths under this module keep working.
pub use ferrolb_gossip::{auth, identity, timers, tuning};

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_gossip::foca::{AccumulatingRuntime, OwnedNotification, Timer};
use ferrolb_gossip::{new_swim, Swim};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use auth::SecretKey;
use identity::{live_nodes, MemberId};
use timers::TimerQueue;

/// MetalLB's memberlist port.
pub const DEFAULT_PORT: u16 = 7946;

/// Node name → its InternalIPs, from the Node objects of the latest snapshot.
pub type NodeAddrs = BTreeMap<String, Vec<IpAddr>>;

/// The live set: `Some(nodes whose speaker runs)`, or `None` when unknown (see the module doc).
pub type Liveness = Option<BTreeSet<String>>;

/// Settings of the gossip.
#[derive(Debug, Clone)]
pub struct MemberlistConfig {
    /// This node's name.
    pub node: String,
    /// UDP port every speaker gossips on.
    pub port: u16,
    /// Bind here instead of the wildcard address of our InternalIP's family.
    pub bind: Option<SocketAddr>,
    /// Authenticate every datagram with this secret.
    pub secret: Option<SecretKey>,
    /// Longest wait after start before the live set is published even if no member answered
    /// (a lone speaker, or the others not yet running).
    pub settle: Duration,
}

impl MemberlistConfig {
    /// Defaults for `node`: port 7946, no secret, 1 s to settle.
    pub fn new(node: impl Into<String>) -> Self {
        Self {
            node: node.into(),
            port: DEFAULT_PORT,
            bind: None,
            secret: None,
            settle: Duration::from_secs(1),
        }
    }
}

/// The address this node gossips on: the first InternalIP of its Node, IPv4 preferred (the
/// lowest, as the list is sorted), so every speaker derives the same address for every node.
pub fn gossip_addr(addrs: &[IpAddr], port: u16) -> Option<SocketAddr> {
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .map(|ip| SocketAddr::new(*ip, port))
}

/// Where to bind for `own`: `--memberlist-bind`, else the wildcard of `own`'s family.
pub fn bind_addr(config: &MemberlistConfig, own: SocketAddr) -> SocketAddr {
    config.bind.unwrap_or_else(|| match own {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), own.port()),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), own.port()),
    })
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    dropped_unauthenticated: AtomicU64,
    dropped_malformed: AtomicU64,
    send_errors: AtomicU64,
}

/// A copy of the gossip counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemberlistCounters {
    /// Datagrams accepted by the envelope and foca.
    pub received: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// Dropped: missing, unexpected or bad authentication tag.
    pub dropped_unauthenticated: u64,
    /// Dropped: bad envelope or foca could not decode or refused it.
    pub dropped_malformed: u64,
    /// Failed sends.
    pub send_errors: u64,
}

impl Counters {
    fn snapshot(&self) -> MemberlistCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MemberlistCounters {
            received: get(&self.received),
            sent: get(&self.sent),
            dropped_unauthenticated: get(&self.dropped_unauthenticated),
            dropped_malformed: get(&self.dropped_malformed),
            send_errors: get(&self.send_errors),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Handle to the running gossip.
#[derive(Debug)]
pub struct Memberlist {
    live: watch::Receiver<Liveness>,
    bound: watch::Receiver<Option<SocketAddr>>,
    counters: Arc<Counters>,
    leave: CancellationToken,
    task: JoinHandle<()>,
}

impl Memberlist {
    /// Starts the gossip task. It binds once `nodes` names this node with an address.
    pub fn spawn(config: MemberlistConfig, nodes: watch::Receiver<NodeAddrs>) -> Self {
        let (live_tx, live) = watch::channel(None);
        let (bound_tx, bound) = watch::channel(None);
        let counters = Arc::new(Counters::default());
        let leave = CancellationToken::new();
        let task = tokio::spawn(run(
            config,
            nodes,
            live_tx,
            bound_tx,
            counters.clone(),
            leave.clone(),
        ));
        Memberlist {
            live,
            bound,
            counters,
            leave,
            task,
        }
    }

    /// The live set, updated on every membership change.
    pub fn live(&self) -> watch::Receiver<Liveness> {
        self.live.clone()
    }

    /// The local address once bound (tests gossip on loopback ports).
    pub fn bound(&self) -> watch::Receiver<Option<SocketAddr>> {
        self.bound.clone()
    }

    /// The current counters.
    pub fn counters(&self) -> MemberlistCounters {
        self.counters.snapshot()
    }

    /// A reader of the counters that outlives this handle's borrow (for `/metrics`).
    pub fn counters_reader(&self) -> impl Fn() -> MemberlistCounters + Send + Sync + 'static {
        let counters = Arc::clone(&self.counters);
        move || counters.snapshot()
    }

    /// Graceful stop: tells a few members we leave (so they move our VIPs at once instead of
    /// after the suspicion timeout), then ends the task.
    pub async fn leave(self) {
        self.leave.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, bug = true, "memberlist task failed");
        }
    }

    /// Stops without a word, as a crash would (tests of failure detection).
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Upper bound on datagrams read per wake-up before timers get a turn.
const RECV_BUDGET: usize = 64;
/// Receive buffer: foca's 1400-octet packets plus the envelope; larger datagrams arrive
/// truncated and fail decoding (counted).
const RECV_BUF: usize = 2048;
/// How often configured Nodes that are not active members are announced to again.
const REANNOUNCE_PERIOD: Duration = Duration::from_secs(1);

async fn run(
    config: MemberlistConfig,
    mut nodes: watch::Receiver<NodeAddrs>,
    live_tx: watch::Sender<Liveness>,
    bound_tx: watch::Sender<Option<SocketAddr>>,
    counters: Arc<Counters>,
    leave: CancellationToken,
) {
    // 1. Our own gossip address comes from our Node object.
    let own = loop {
        let own = nodes
            .borrow_and_update()
            .get(&config.node)
            .and_then(|addrs| gossip_addr(addrs, config.port));
        if let Some(own) = own {
            break own;
        }
        tokio::select! {
            changed = nodes.changed() => if changed.is_err() { return },
            () = leave.cancelled() => return,
        }
    };
    let bind = bind_addr(&config, own);
    let socket = match UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(error) => {
            // The live set stays `None`: the election falls back to Node readiness.
            tracing::error!(%error, %bind, "memberlist cannot bind; using Node readiness for liveness");
            leave.cancelled().await;
            return;
        }
    };
    let local = socket.local_addr().ok();
    bound_tx.send_replace(local);
    // With `--memberlist-bind 127.0.0.1:0` (tests) the identity must carry the real port.
    let own = match local {
        Some(l) if config.port == 0 || config.bind.is_some_and(|b| b.port() == 0) => {
            SocketAddr::new(own.ip(), l.port())
        }
        _ => own,
    };
    let generation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let identity = MemberId {
        node: config.node.clone(),
        addr: own,
        generation,
    };
    tracing::info!(node = %config.node, addr = %own, %bind, authenticated = config.secret.is_some(),
        "memberlist started");
    let seed = generation ^ u64::from(std::process::id()).rotate_left(32);
    let size = nodes.borrow().len().max(1);
    let mut driver = Driver {
        swim: new_swim(identity, size, seed),
        runtime: AccumulatingRuntime::new(),
        timers: TimerQueue::default(),
        socket,
        secret: config.secret.clone(),
        counters,
        own_node: config.node.clone(),
        port: own.port(),
        settled: false,
        live_tx,
    };
    driver.announce_to_inactive(&nodes.borrow_and_update());
    driver.flush().await;

    let settle_at = Instant::now() + config.settle;
    let mut reannounce = tokio::time::interval(REANNOUNCE_PERIOD);
    reannounce.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let next_timer = driver.timers.next_deadline();
        tokio::select! {
            received = driver.socket.recv_from(&mut buf) => {
                driver.on_datagram(received, &buf);
                // Drain what else is queued without waiting, bounded.
                for _ in 0..RECV_BUDGET {
                    match driver.socket.try_recv_from(&mut buf) {
                        Ok(r) => driver.on_datagram(Ok(r), &buf),
                        Err(_) => break,
                    }
                }
            }
            () = ferrolb_runtime::sleep_until(next_timer) => {
                let now = Instant::now();
                while let Some(timer) = driver.timers.pop_due(now) {
                    driver.on_timer(timer);
                }
            }
            () = tokio::time::sleep_until(settle_at), if !driver.settled => {
                driver.settled = true;
                let others = nodes.borrow().len().saturating_sub(1);
                if others > 0 && driver.swim.num_members() == 0 {
                    // Alone by choice of the others (all dead) or by mistake (port, secret,
                    // firewall): both look the same from here, and this speaker now answers
                    // for every VIP it is eligible for.
                    tracing::warn!(others, counters = ?driver.counters.snapshot(),
                        "memberlist: no other speaker answered; acting as the only live one");
                }
            }
            changed = nodes.changed() => {
                if changed.is_err() {
                    break;
                }
                let nodes = nodes.borrow_and_update().clone();
                driver.resize(nodes.len());
                driver.announce_to_inactive(&nodes);
            }
            _ = reannounce.tick() => {
                driver.announce_to_inactive(&nodes.borrow());
            }
            () = leave.cancelled() => break,
        }
        driver.flush().await;
    }
    if let Err(error) = driver.swim.leave_cluster(&mut driver.runtime) {
        tracing::warn!(%error, "memberlist leave failed");
    }
    driver.flush().await;
    tracing::info!("memberlist stopped");
}

/// The state of the gossip task apart from its select loop.
struct Driver {
    swim: Swim,
    runtime: AccumulatingRuntime<MemberId>,
    timers: TimerQueue<Instant, Timer<MemberId>>,
    socket: UdpSocket,
    secret: Option<SecretKey>,
    counters: Arc<Counters>,
    own_node: String,
    port: u16,
    settled: bool,
    live_tx: watch::Sender<Liveness>,
}

impl Driver {
    fn on_datagram(&mut self, received: std::io::Result<(usize, SocketAddr)>, buf: &[u8]) {
        let (len, from) = match received {
            Ok(r) => r,
            Err(error) => {
                tracing::debug!(%error, "memberlist receive failed");
                return;
            }
        };
        let datagram = buf.get(..len).unwrap_or_default();
        let payload = match auth::open(self.secret.as_ref(), datagram) {
            Ok(p) => p,
            Err(error) => {
                if error.is_authentication() {
                    bump(&self.counters.dropped_unauthenticated);
                } else {
                    bump(&self.counters.dropped_malformed);
                }
                tracing::debug!(%from, %error, reason = error.metric_label(), "memberlist datagram dropped");
                return;
            }
        };
        match self.swim.handle_data(payload, &mut self.runtime) {
            Ok(()) => bump(&self.counters.received),
            Err(error) => {
                bump(&self.counters.dropped_malformed);
                tracing::debug!(%from, %error, "memberlist datagram refused by foca");
            }
        }
    }

    fn on_timer(&mut self, timer: Timer<MemberId>) {
        if let Err(error) = self.swim.handle_timer(timer, &mut self.runtime) {
            tracing::debug!(%error, "memberlist timer");
        }
    }

    fn resize(&mut self, nodes: usize) {
        if let Err(error) = self.swim.set_config(tuning::foca_config(nodes.max(1))) {
            tracing::warn!(%error, "memberlist config not updated");
        }
    }

    /// Announces to every configured Node whose address is not an active member. foca ignores
    /// the destination identity of what it receives, so a guessed one (generation 0) is fine.
    fn announce_to_inactive(&mut self, nodes: &NodeAddrs) {
        let active: BTreeSet<SocketAddr> = self.swim.iter_members().map(|m| m.id().addr).collect();
        for (name, addrs) in nodes {
            if *name == self.own_node {
                continue;
            }
            let Some(addr) = gossip_addr(addrs, self.port) else {
                continue;
            };
            if active.contains(&addr) {
                continue;
            }
            let guess = MemberId {
                node: name.clone(),
                addr,
                generation: 0,
            };
            if let Err(error) = self.swim.announce(guess, &mut self.runtime) {
                tracing::debug!(%error, node = %name, "memberlist announce");
            }
        }
    }

    /// Executes what foca asked for: sends, timers, and membership notifications.
    async fn flush(&mut self) {
        let now = Instant::now();
        // Bounded: foca produces a finite backlog per call; each pass drains it.
        while let Some((after, timer)) = self.runtime.to_schedule() {
            if let Err(error) = self.timers.push(now, after, timer) {
                tracing::error!(%error, bug = true, "memberlist timer dropped");
            }
        }
        let mut membership_changed = false;
        while let Some(n) = self.runtime.to_notify() {
            match &n {
                OwnedNotification::MemberUp(m) => {
                    tracing::info!(node = %m.node, addr = %m.addr, "memberlist: member up");
                }
                OwnedNotification::MemberDown(m) => {
                    tracing::info!(node = %m.node, addr = %m.addr, "memberlist: member down");
                }
                OwnedNotification::Rename(a, b) => {
                    tracing::info!(node = %b.node, from = a.generation, to = b.generation,
                        "memberlist: member restarted");
                }
                OwnedNotification::Active => {
                    tracing::info!("memberlist: joined");
                    self.settled = true;
                }
                OwnedNotification::Idle => tracing::info!("memberlist: no other member active"),
                OwnedNotification::Defunct => {
                    tracing::warn!("memberlist: declared down; rejoining");
                }
                OwnedNotification::Rejoin(id) => {
                    tracing::info!(generation = id.generation, "memberlist: rejoined");
                }
            }
            membership_changed = true;
        }
        while let Some((to, data)) = self.runtime.to_send() {
            let datagram = auth::seal(self.secret.as_ref(), &data);
            match self.socket.send_to(&datagram, to.addr).await {
                Ok(_) => bump(&self.counters.sent),
                Err(error) => {
                    bump(&self.counters.send_errors);
                    tracing::debug!(%error, to = %to.addr, "memberlist send failed");
                }
            }
        }
        if self.settled && (membership_changed || self.live_tx.borrow().is_none()) {
            let live = live_nodes(&self.own_node, self.swim.iter_members().map(|m| m.id()));
            self.live_tx.send_if_modified(|cur| {
                let changed = cur.as_ref() != Some(&live);
                if changed {
                    tracing::info!(live = ?live, "memberlist: live speakers");
                    *cur = Some(live);
                }
                changed
            });
        }
    }
}
