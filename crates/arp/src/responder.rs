//! The tokio shell around the pure core: one task per interface owns a [`LinkSocket`], answers
//! what [`decide`] says to answer, and announces newly gained VIPs.
//!
//! ```text
//!  Responder::set_vips(desired)            (whole desired state; latest wins)
//!        │ watch<BTreeMap<iface, BTreeSet<vip>>>
//!        ▼
//!  supervisor task ── spawns/ends ──► interface task (one per iface with ≥ 1 VIP)
//!        │ watch<BTreeSet<vip>> per iface    │ LinkSocket: recv → parse → decide → send
//!        └──────────────────────────────────►│ announce timer: gratuitous ARP / unsolicited NA
//!                                            └─► Counters (shared atomics; per VIP under a
//!                                                lock, entries kept by set_vips)
//! ```
//!
//! Dropping a watch sender ends its receiver's task, so shutdown is: drop the top sender, await
//! the supervisor, which drops every interface sender and awaits every interface task.
//!
//! Guarantees: a VIP absent from the desired state is never answered for after the interface
//! task has seen the change; sockets and multicast memberships of removed interfaces are closed.
//! Assumptions: the runtime's threads are in the network namespace whose interfaces are named
//! (sockets are opened in the calling thread's namespace). Caveats: the interface MAC is read
//! when the socket opens; a MAC change needs the interface removed and re-added.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::link::{LinkOpener, LinkSocket, PacketLink};
use crate::respond::{announcements, decide};
use crate::wire::{encode_frame, parse_frame, solicited_node_address, Frame, MacAddr, NdpMessage};

/// Desired state: interface name → VIPs answered on it.
pub type VipsByInterface = BTreeMap<String, BTreeSet<IpAddr>>;

/// What an interface task is doing, as reported by [`Responder::interfaces`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceState {
    /// Opening (or reopening after a failure) its socket.
    Opening,
    /// Socket open, filter attached, multicast groups joined: answering for `vips`.
    Serving {
        /// The interface MAC used in replies.
        mac: MacAddr,
        /// The VIPs answered for.
        vips: BTreeSet<IpAddr>,
    },
    /// The socket failed; it is reopened after a back-off.
    Failed {
        /// The error, for status reporting.
        error: String,
    },
}

type States = watch::Sender<BTreeMap<String, InterfaceState>>;

fn set_state(states: &States, name: &str, state: InterfaceState) {
    states.send_modify(|m| {
        m.insert(name.to_owned(), state);
    });
}

/// Tunables of a [`Responder`].
#[derive(Debug, Clone)]
pub struct ResponderConfig {
    /// How many times the gratuitous ARP / unsolicited NA is sent on gaining a VIP. RFC 5227 §2.3
    /// sends ANNOUNCE_NUM = 2 announcements; one more covers a lost frame.
    pub announce_count: u32,
    /// Spacing between announcement rounds (RFC 5227 ANNOUNCE_INTERVAL is 2 s; we want the
    /// failover to be sub-second, so short spacing with the first round sent at once).
    pub announce_interval: Duration,
    /// Initial delay before reopening a socket that failed; doubles up to `max_reopen_delay`.
    pub reopen_delay: Duration,
    /// Ceiling of the reopen back-off.
    pub max_reopen_delay: Duration,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        ResponderConfig {
            announce_count: 3,
            announce_interval: Duration::from_millis(250),
            reopen_delay: Duration::from_millis(100),
            max_reopen_delay: Duration::from_secs(10),
        }
    }
}

/// Counters shared by all interface tasks.
#[derive(Debug, Default)]
struct Counters {
    /// Per desired VIP (MetalLB's `metallb_layer2_*{ip}`): an entry per VIP of the desired
    /// state, made and dropped by [`Responder::set_vips`] only, so the map is bounded by what
    /// this node owns; a count for a VIP without an entry (an interface task that has not yet
    /// seen its removal) is not kept.
    per_vip: Mutex<BTreeMap<IpAddr, VipCounts>>,
    arp_replies: AtomicU64,
    na_replies: AtomicU64,
    announcements: AtomicU64,
    dropped_bad_frame: AtomicU64,
    ignored: AtomicU64,
    send_errors: AtomicU64,
    socket_errors: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// ARP replies sent.
    pub arp_replies: u64,
    /// Solicited (or DAD-defending) Neighbor Advertisements sent.
    pub na_replies: u64,
    /// Gratuitous ARP / unsolicited NA frames sent.
    pub announcements: u64,
    /// Frames that failed to parse as a malformed ARP/NDP frame.
    pub dropped_bad_frame: u64,
    /// Well-formed frames not answered (not for an owned VIP, not a request, ...).
    pub ignored: u64,
    /// Failed sends.
    pub send_errors: u64,
    /// Failed socket opens or receives (each followed by a reopen with back-off).
    pub socket_errors: u64,
}

impl Counters {
    fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            arp_replies: get(&self.arp_replies),
            na_replies: get(&self.na_replies),
            announcements: get(&self.announcements),
            dropped_bad_frame: get(&self.dropped_bad_frame),
            ignored: get(&self.ignored),
            send_errors: get(&self.send_errors),
            socket_errors: get(&self.socket_errors),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The counts of one VIP, summed over the interfaces answering for it: MetalLB's Layer 2
/// counters (`metallb_layer2_requests_received`, `_responses_sent`, `_gratuitous_sent`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VipCounts {
    /// ARP requests and Neighbor Solicitations for the VIP that this node answers.
    pub requests_received: u64,
    /// Replies (ARP reply, solicited NA) sent for the VIP.
    pub responses_sent: u64,
    /// Gratuitous ARP / unsolicited NA frames sent for the VIP.
    pub gratuitous_sent: u64,
}

impl Counters {
    fn per_vip(&self) -> std::sync::MutexGuard<'_, BTreeMap<IpAddr, VipCounts>> {
        self.per_vip.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds to `vip`'s counts, when it is desired.
    fn count_vip(&self, vip: IpAddr, f: impl FnOnce(&mut VipCounts)) {
        if let Some(c) = self.per_vip().get_mut(&vip) {
            f(c);
        }
    }

    /// Keeps an entry for exactly the VIPs of `desired`.
    fn track_vips(&self, desired: &VipsByInterface) {
        let wanted: BTreeSet<IpAddr> = desired.values().flatten().copied().collect();
        let mut map = self.per_vip();
        map.retain(|vip, _| wanted.contains(vip));
        for vip in wanted {
            map.entry(vip).or_default();
        }
    }
}

/// Reads the per-VIP counts of a [`Responder`]; cheap to clone, usable after the responder
/// moved into a task.
#[derive(Debug, Clone)]
pub struct VipCountsReader(Arc<Counters>);

impl VipCountsReader {
    /// The counts of every VIP in the desired state now.
    pub fn read(&self) -> BTreeMap<IpAddr, VipCounts> {
        self.0.per_vip().clone()
    }
}

/// Handle to the running responder. Takes the whole desired state, never per-VIP calls.
#[derive(Debug)]
pub struct Responder {
    desired: watch::Sender<VipsByInterface>,
    counters: Arc<Counters>,
    states: watch::Receiver<BTreeMap<String, InterfaceState>>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Responder {
    /// Starts the responder with no VIPs on AF_PACKET sockets. Must be called within a tokio
    /// runtime whose threads are in the node's network namespace.
    pub fn spawn(config: ResponderConfig) -> Self {
        Self::spawn_with(config, PacketLink)
    }

    /// Starts the responder on sockets from `opener` (a test double in tests).
    pub fn spawn_with(config: ResponderConfig, opener: impl LinkOpener) -> Self {
        let (desired, rx) = watch::channel(VipsByInterface::new());
        let counters = Arc::new(Counters::default());
        let (states_tx, states) = watch::channel(BTreeMap::new());
        let supervisor = tokio::spawn(supervise(
            rx,
            config,
            Arc::new(opener),
            counters.clone(),
            states_tx,
        ));
        Responder {
            desired,
            counters,
            states,
            supervisor,
        }
    }

    /// Replaces the desired state: from now on, answer on each interface for exactly these
    /// VIPs. Interfaces with an empty set (or absent) get no socket.
    pub fn set_vips(&self, desired: VipsByInterface) {
        let desired = desired.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        self.counters.track_vips(&desired);
        self.desired.send_if_modified(|current| {
            if *current == desired {
                false
            } else {
                *current = desired;
                true
            }
        });
    }

    /// The current counters.
    pub fn counters(&self) -> CounterSnapshot {
        self.counters.snapshot()
    }

    /// The per-VIP counts, readable at any time ([`VipCounts`]).
    pub fn vip_counts(&self) -> VipCountsReader {
        VipCountsReader(Arc::clone(&self.counters))
    }

    /// The state of every interface that has VIPs, updated as tasks open sockets and apply
    /// VIP changes; `wait_for` on it to know when a desired state is being served.
    pub fn interfaces(&self) -> watch::Receiver<BTreeMap<String, InterfaceState>> {
        self.states.clone()
    }

    /// Stops answering, closes every socket and waits for the tasks to end.
    pub async fn shutdown(self) {
        drop(self.desired);
        if let Err(e) = self.supervisor.await {
            tracing::error!(error = %e, bug = true, "l2 responder supervisor failed");
        }
    }
}

async fn supervise<O: LinkOpener>(
    mut desired: watch::Receiver<VipsByInterface>,
    config: ResponderConfig,
    opener: Arc<O>,
    counters: Arc<Counters>,
    states: States,
) {
    let states = Arc::new(states);
    let mut senders: BTreeMap<String, watch::Sender<BTreeSet<IpAddr>>> = BTreeMap::new();
    let mut tasks = JoinSet::new();
    loop {
        let want = desired.borrow_and_update().clone();
        // Interfaces no longer wanted: dropping the sender ends the task.
        senders.retain(|name, _| want.contains_key(name));
        states.send_modify(|m| m.retain(|name, _| want.contains_key(name)));
        for (name, vips) in want {
            match senders.get(&name) {
                Some(tx) => {
                    tx.send_if_modified(|cur| {
                        let changed = *cur != vips;
                        *cur = vips.clone();
                        changed
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(vips);
                    tasks.spawn(run_interface(
                        name.clone(),
                        rx,
                        config.clone(),
                        opener.clone(),
                        counters.clone(),
                        states.clone(),
                    ));
                    senders.insert(name, tx);
                }
            }
        }
        // Reap finished tasks without blocking, so the set does not grow without bound.
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, bug = true, "l2 interface task failed");
            }
        }
        if desired.changed().await.is_err() {
            break;
        }
    }
    senders.clear();
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, bug = true, "l2 interface task failed");
        }
    }
}

/// Runs one interface until its sender is dropped, then removes its state. (The supervisor
/// prunes states of removed interfaces too; this catches a report made after that prune.)
async fn run_interface<O: LinkOpener>(
    name: String,
    vips: watch::Receiver<BTreeSet<IpAddr>>,
    config: ResponderConfig,
    opener: Arc<O>,
    counters: Arc<Counters>,
    states: Arc<States>,
) {
    let span = tracing::info_span!("l2", iface = %name);
    serve_until_unwanted(&name, vips, &config, &*opener, &counters, &states)
        .instrument(span)
        .await;
    states.send_modify(|m| {
        m.remove(&name);
    });
}

/// Serves the interface, reopening the socket with capped exponential back-off on error.
async fn serve_until_unwanted<O: LinkOpener>(
    name: &str,
    mut vips: watch::Receiver<BTreeSet<IpAddr>>,
    config: &ResponderConfig,
    opener: &O,
    counters: &Counters,
    states: &States,
) {
    let mut delay = config.reopen_delay;
    loop {
        set_state(states, name, InterfaceState::Opening);
        let outcome = match opener.open(name) {
            Ok(socket) => {
                tracing::info!(mac = %socket.mac(), "l2 socket open");
                delay = config.reopen_delay;
                serve(socket, &mut vips, config, counters, |state| {
                    set_state(states, name, state)
                })
                .await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => return,
            Err(e) => {
                bump(&counters.socket_errors);
                set_state(
                    states,
                    name,
                    InterfaceState::Failed {
                        error: e.to_string(),
                    },
                );
                tracing::warn!(error = %e, retry_in = ?delay, "l2 socket failed; reopening");
            }
        }
        // Wait out the back-off, but stop at once if the interface is no longer wanted.
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            r = vips.changed() => if r.is_err() { return },
        }
        delay = (delay * 2).min(config.max_reopen_delay);
    }
}

/// Receive buffer: a standard Ethernet frame; larger frames are truncated and fail to parse.
const FRAME_BUF: usize = 1600;

/// Serves one open socket. `Ok(())` when the interface is no longer wanted; `Err` when the
/// socket failed and should be reopened.
async fn serve<S: LinkSocket>(
    socket: S,
    vips: &mut watch::Receiver<BTreeSet<IpAddr>>,
    config: &ResponderConfig,
    counters: &Counters,
    report: impl Fn(InterfaceState),
) -> io::Result<()> {
    let mac = socket.mac();
    let mut owned: BTreeSet<IpAddr> = BTreeSet::new();
    // Solicited-node group MAC → number of owned VIPs mapping to it.
    let mut groups: BTreeMap<MacAddr, usize> = BTreeMap::new();
    // VIP → announcement rounds left.
    let mut announce: BTreeMap<IpAddr, u32> = BTreeMap::new();
    let mut next_round: Option<Instant> = None;
    let mut buf = vec![0u8; FRAME_BUF];
    // Force the first iteration to apply the current VIPs.
    vips.mark_changed();
    loop {
        if vips.has_changed().unwrap_or(false) {
            let want = vips.borrow_and_update().clone();
            for gained in want.difference(&owned) {
                tracing::info!(vip = %gained, event = "vip_gained", "answering for VIP");
                if let IpAddr::V6(v6) = gained {
                    let group = MacAddr::ipv6_multicast(solicited_node_address(*v6));
                    let count = groups.entry(group).or_insert(0);
                    if *count == 0 {
                        socket.set_multicast(group, true)?;
                    }
                    *count += 1;
                }
                if config.announce_count > 0 {
                    announce.insert(*gained, config.announce_count);
                    next_round = Some(Instant::now());
                }
            }
            for lost in owned.difference(&want) {
                tracing::info!(vip = %lost, event = "vip_lost", "no longer answering for VIP");
                announce.remove(lost);
                if let IpAddr::V6(v6) = lost {
                    let group = MacAddr::ipv6_multicast(solicited_node_address(*v6));
                    if let Some(count) = groups.get_mut(&group) {
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            groups.remove(&group);
                            socket.set_multicast(group, false)?;
                        }
                    }
                }
            }
            owned = want;
            report(InterfaceState::Serving {
                mac,
                vips: owned.clone(),
            });
        }

        let round_due = async {
            match next_round {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = socket.recv(&mut buf) => {
                let len = received?;
                let frame = buf.get(..len.min(buf.len())).unwrap_or_default();
                handle_frame(&socket, frame, &owned, mac, counters);
            }
            changed = vips.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                // Re-marked so the top of the loop applies it.
                vips.mark_changed();
            }
            () = round_due => {
                for (vip, left) in announce.iter_mut() {
                    for frame in announcements(*vip, mac) {
                        if send(&socket, &frame, counters, &counters.announcements) {
                            counters.count_vip(*vip, |c| c.gratuitous_sent += 1);
                        }
                    }
                    *left = left.saturating_sub(1);
                }
                announce.retain(|_, left| *left > 0);
                next_round = (!announce.is_empty())
                    .then(|| Instant::now() + config.announce_interval);
            }
        }
    }
}

fn handle_frame(
    socket: &impl LinkSocket,
    bytes: &[u8],
    owned: &BTreeSet<IpAddr>,
    mac: MacAddr,
    counters: &Counters,
) {
    let frame = match parse_frame(bytes) {
        Ok(frame) => frame,
        Err(e) => {
            if e.is_malformed() {
                bump(&counters.dropped_bad_frame);
                tracing::debug!(error = %e, reason = e.metric_label(), "dropped bad frame");
            } else {
                bump(&counters.ignored);
            }
            return;
        }
    };
    match decide(&frame, owned, mac) {
        Ok(reply) => {
            let (counter, vip) = match &reply {
                Frame::Arp { arp, .. } => (&counters.arp_replies, IpAddr::V4(arp.sender_ip)),
                Frame::Ndp { msg, .. } => (&counters.na_replies, ndp_target(msg)),
            };
            // MetalLB counts a request once it is for a VIP it answers, then the reply if sent.
            counters.count_vip(vip, |c| c.requests_received += 1);
            tracing::trace!(?reply, "answering");
            if send(socket, &reply, counters, counter) {
                counters.count_vip(vip, |c| c.responses_sent += 1);
            }
        }
        Err(reason) => {
            bump(&counters.ignored);
            tracing::trace!(reason = reason.metric_label(), "ignored frame");
        }
    }
}

/// The VIP an NA reply is about: its target (RFC 4861 §4.4).
fn ndp_target(msg: &NdpMessage) -> IpAddr {
    match msg {
        NdpMessage::NeighborSolicitation(ns) => IpAddr::V6(ns.target),
        NdpMessage::NeighborAdvertisement(na) => IpAddr::V6(na.target),
    }
}

/// Sends `frame`; whether it went out.
fn send(
    socket: &impl LinkSocket,
    frame: &Frame,
    counters: &Counters,
    on_success: &AtomicU64,
) -> bool {
    // A failed send is counted and dropped rather than retried: the neighbour retransmits its
    // request (RFC 4861 §7.2.2 MAX_MULTICAST_SOLICIT), and announcements repeat anyway.
    match socket.send(&encode_frame(frame)) {
        Ok(()) => {
            bump(on_success);
            true
        }
        Err(e) => {
            bump(&counters.send_errors);
            tracing::warn!(error = %e, "send failed");
            false
        }
    }
}
