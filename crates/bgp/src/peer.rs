//! The tokio driver of one peer: executes the pure [`crate::fsm`]'s actions over
//! `Framed<TcpStream, BgpCodec>`.
//!
//! One task per peer owns its connection, timers, FSM state and Adj-RIB-Out:
//!
//! ```text
//!  Speaker ──watch<Arc<Routes>>──▶ ┐
//!  Speaker ──mpsc<Notification>──▶ ├─ peer task ──mpsc<SpeakerEvent>──▶ caller
//!  listener ─mpsc<TcpStream>─────▶ ┘     │ ▲
//!                                        ▼ │ Framed<TcpStream, BgpCodec>
//! ```
//!
//! It connects at once on start (no initial delay), then backs off exponentially with jitter
//! (1 s doubling up to 30 s) after each failure; incoming connections are taken whenever no
//! session is past Active, and collisions are resolved by [`crate::fsm::resolve_collision`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ipnet::IpNet;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tracing::{info, warn, Instrument};

use crate::codec::{BgpCodec, CodecError};
use crate::event::{EventKind, SpeakerEvent};
use crate::fsm::{self, resolve_collision, Action, CollisionWinner, Event, State, Timer};
use crate::net::{self, NetError, SocketOptions};
use crate::packer::{Packer, RouteAttributes};
use crate::rib::{AdjRibOut, AttrCache, Change, Routes, SessionView};
use crate::wire::{
    Capability, DecodeCtx, ErrorCode, Family, GracefulRestart, GracefulRestartFamily, HoldTime,
    Message, MessageError, Notification, Open,
};

/// One peer's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's address.
    pub addr: IpAddr,
    /// The peer's TCP port (179 by default).
    pub port: u16,
    /// The peer's ASN; `None` accepts any (passive collectors only).
    pub peer_as: Option<u32>,
    /// Source address of our connection.
    pub local_address: Option<IpAddr>,
    /// Hold time we propose, seconds (0 or at least 3).
    pub hold_time: u16,
    /// Keepalive interval; `None` = a third of the negotiated hold time.
    pub keepalive: Option<u16>,
    /// TCP-MD5 password (RFC 2385).
    pub md5_password: Option<String>,
    /// eBGP multihop TTL; `None` = TTL 1 for eBGP (directly connected).
    pub ebgp_multihop: Option<u8>,
    /// GTSM (RFC 5082) with this many hops; overrides the TTL.
    pub gtsm_hops: Option<u8>,
    /// Never connect; only accept.
    pub passive: bool,
    /// Carry IPv4 unicast.
    pub ipv4: bool,
    /// Carry IPv6 unicast (MP-BGP, RFC 4760), on the same session.
    pub ipv6: bool,
    /// Hand every received UPDATE over in [`EventKind::UpdateReceived`] (collectors).
    pub deliver_updates: bool,
}

impl PeerConfig {
    /// A peer with defaults: port 179, hold 90 s, IPv4 and IPv6, active.
    pub fn new(addr: IpAddr, peer_as: u32) -> Self {
        PeerConfig {
            addr,
            port: 179,
            peer_as: Some(peer_as),
            local_address: None,
            hold_time: 90,
            keepalive: None,
            md5_password: None,
            ebgp_multihop: None,
            gtsm_hops: None,
            passive: false,
            ipv4: true,
            ipv6: true,
            deliver_updates: false,
        }
    }
}

/// Graceful Restart as the restarting speaker (RFC 4724).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Restart Time advertised, seconds (at most 4095).
    pub restart_time: u16,
    /// We are coming back from a restart: set the Restart State bit (and the Forwarding State
    /// bits) in the first OPEN to each peer (RFC 4724 §3).
    pub restarted: bool,
}

/// What all peer tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub local_as: u32,
    pub router_id: Option<Ipv4Addr>,
    pub graceful_restart: Option<GracefulRestartConfig>,
    pub events: mpsc::Sender<SpeakerEvent>,
    /// False between `Speaker::defer_routes` and the next `set_routes`.
    pub routes_ready: AtomicBool,
    /// The next [`PeerTask::id`].
    pub next_task_id: AtomicU64,
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s ... capped at 30 s, each ±25 %.
#[derive(Debug)]
struct Backoff {
    attempt: u32,
    seed: u64,
}

impl Backoff {
    const BASE_MS: u64 = 1000;
    const CAP_MS: u64 = 30_000;

    fn next(&mut self) -> Duration {
        let base = (Self::BASE_MS << self.attempt.min(5)).min(Self::CAP_MS);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64: jitter only, so a cheap generator is enough.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let quarter = base / 4;
        let jitter = self.seed % (2 * quarter + 1);
        Duration::from_millis(base - quarter + jitter)
    }

    fn reset(&mut self) {
        self.attempt = 0;
    }
}

type Connecting = Pin<Box<dyn Future<Output = Result<TcpStream, NetError>> + Send>>;
type Conn = Framed<TcpStream, BgpCodec>;
type Frame = Option<Result<Result<Message, MessageError>, CodecError>>;
/// The incoming connection of a collision (RFC 4271 §6.8), waiting for its OPEN in a future of
/// its own while the existing connection keeps being served.
type PendingOpen = Pin<Box<dyn Future<Output = Option<(Conn, Open)>> + Send>>;

/// How long a NOTIFICATION may take to go out before we close anyway.
const NOTIFICATION_SEND_LIMIT: Duration = Duration::from_secs(3);
/// How long an incoming connection has to show its OPEN during collision detection.
const COLLISION_OPEN_LIMIT: Duration = Duration::from_secs(5);
/// FSM events run per round of the run loop; follow-ups beyond this wait in the queue for the
/// next round (after the timers and channels were looked at), never dropped.
const MAX_CHAINED_EVENTS: usize = 16;

/// Prefixes packed per round: bounds the transient copy of attributes while packing.
const CHUNK: usize = 2048;

/// What is waiting to be sent, and what went out so far in this pass.
#[derive(Debug, Default)]
struct Outgoing {
    announce: BTreeMap<IpNet, Arc<RouteAttributes>>,
    withdraw: BTreeSet<IpNet>,
    announced: usize,
    withdrawn: usize,
    updates: usize,
}

/// The FSM events waiting to run: the input of one round and the follow-ups its actions
/// produced (a failed send yields TcpConnectionFails, and so on).
#[derive(Debug, Default)]
struct EventQueue {
    queue: VecDeque<Event>,
}

impl EventQueue {
    fn push(&mut self, event: Event) {
        self.queue.push_back(event);
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The next event of this round, or `None` when the round's budget is spent or nothing
    /// waits; what is left stays queued.
    fn next_in_round(&mut self, ran: usize) -> Option<Event> {
        if ran >= MAX_CHAINED_EVENTS {
            return None;
        }
        self.queue.pop_front()
    }
}

/// The handles the speaker keeps for a running peer task.
#[derive(Debug)]
pub(crate) struct PeerTask {
    pub cfg: PeerConfig,
    pub inbound: mpsc::Sender<TcpStream>,
    pub stop: mpsc::Sender<Notification>,
    pub handle: tokio::task::JoinHandle<()>,
    /// Tells this task from a later one at the same address.
    pub id: u64,
    /// Accepted from an address that is not a configured peer (collector mode).
    pub unknown: bool,
}

/// Runs once, with the task's [`PeerTask::id`], when a peer task ends by itself (see
/// [`spawn`]'s `on_exit`).
pub(crate) type OnExit = Box<dyn FnOnce(u64) + Send>;

/// Starts a peer task. With `on_exit` the peer is one accepted from an unknown address: it never
/// connects out, ends with its first connection, and calls `on_exit` when it does.
pub(crate) fn spawn(
    cfg: PeerConfig,
    shared: Arc<Shared>,
    routes: watch::Receiver<Arc<Routes>>,
    on_exit: Option<OnExit>,
) -> PeerTask {
    let (inbound_tx, inbound_rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = mpsc::channel(1);
    let id = shared.next_task_id.fetch_add(1, Ordering::Relaxed);
    let seed = {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(cfg.addr) | 1
    };
    let unknown = on_exit.is_some();
    let driver = Driver {
        fsm: fsm::Config {
            local_open: Open::new(
                shared.local_as,
                HoldTime::DEFAULT,
                Ipv4Addr::LOCALHOST,
                vec![],
            ),
            peer_as: cfg.peer_as,
            keepalive: cfg.keepalive,
        },
        cfg: cfg.clone(),
        shared,
        routes,
        inbound: inbound_rx,
        stop: stop_rx,
        state: State::Idle,
        conn: None,
        connecting: None,
        collision: None,
        hold: None,
        keepalive: None,
        connect_retry: None,
        restart_at: None,
        backoff: Backoff { attempt: 0, seed },
        rib: AdjRibOut::default(),
        local_addr: None,
        restarted: false,
        initial_pending: false,
        stopping: false,
        on_exit,
        id,
        had_connection: false,
        queue: EventQueue::default(),
        received: 0,
        sent: 0,
        notifications_unsent: 0,
        prefixes_received: 0,
        prefixes_withdrawn: 0,
    };
    // RFC-free but fixed (STYLE §5): every log line of this task sits in `peer{addr, asn}`.
    let span = tracing::info_span!("peer", addr = %cfg.addr, asn = cfg.peer_as);
    let handle = tokio::spawn(driver.run().instrument(span));
    PeerTask {
        cfg,
        inbound: inbound_tx,
        stop: stop_tx,
        handle,
        id,
        unknown,
    }
}

/// The peer task's state. The FSM state (`state`, with the negotiated session inside) is the
/// only record of where the session is: the session view, codec context and hold time are
/// read from it, never copied.
struct Driver {
    cfg: PeerConfig,
    fsm: fsm::Config,
    shared: Arc<Shared>,
    routes: watch::Receiver<Arc<Routes>>,
    inbound: mpsc::Receiver<TcpStream>,
    stop: mpsc::Receiver<Notification>,
    state: State,
    conn: Option<Conn>,
    connecting: Option<Connecting>,
    collision: Option<PendingOpen>,
    hold: Option<Instant>,
    keepalive: Option<Instant>,
    connect_retry: Option<Instant>,
    restart_at: Option<Instant>,
    backoff: Backoff,
    rib: AdjRibOut,
    local_addr: Option<IpAddr>,
    /// Set the Restart State bit in the next OPEN (cleared after the first Established).
    restarted: bool,
    /// Established, but the initial UPDATEs and End-of-RIB wait for the first routes.
    initial_pending: bool,
    stopping: bool,
    /// Set for a peer accepted from an unknown address: it ends with its connection.
    on_exit: Option<OnExit>,
    id: u64,
    had_connection: bool,
    queue: EventQueue,
    received: u64,
    sent: u64,
    notifications_unsent: u64,
    prefixes_received: u64,
    prefixes_withdrawn: u64,
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_frame(conn: &mut Option<Conn>) -> Frame {
    match conn {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

async fn connecting(c: &mut Option<Connecting>) -> Result<TcpStream, NetError> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn pending_open(c: &mut Option<PendingOpen>) -> Option<(Conn, Open)> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Why a bounded write did not finish.
#[derive(Debug)]
enum Interrupted {
    /// The write itself failed.
    Failed,
    /// The HoldTimer expired while the write waited.
    HoldExpired,
    /// The write took longer than its deadline.
    Deadline,
    /// A stop request came in (`None`: the speaker dropped the handle).
    Stop(Option<Notification>),
}

/// Runs a write on the connection while still watching the HoldTimer, a deadline and stop
/// requests, so a peer that stops reading (its TCP window full) cannot stall the peer task: the
/// write is abandoned and the session fails as RFC 4271 §8 says for Event 10 (HoldTimer_Expires)
/// or Event 18 (TcpConnectionFails). An abandoned write leaves its bytes in `Framed`'s buffer,
/// so a NOTIFICATION sent after it still follows whole messages.
async fn bounded<T, E>(
    io: impl Future<Output = Result<T, E>>,
    deadline: Instant,
    hold: Option<Instant>,
    stop: &mut mpsc::Receiver<Notification>,
    watch_stop: bool,
) -> Result<T, Interrupted> {
    tokio::select! {
        r = io => r.map_err(|_| Interrupted::Failed),
        n = stop.recv(), if watch_stop => Err(Interrupted::Stop(n)),
        () = sleep_opt(hold), if hold.is_some() => Err(Interrupted::HoldExpired),
        () = tokio::time::sleep_until(deadline) => Err(Interrupted::Deadline),
    }
}

/// Maps what the framing produced to an FSM event (RFC 4271 §8.1.5).
fn event_from_frame(frame: Frame) -> Event {
    match frame {
        None | Some(Err(CodecError::Io(_))) | Some(Err(CodecError::Encoding(_))) => {
            Event::TcpConnectionFails
        }
        Some(Err(CodecError::Frame(e))) | Some(Ok(Err(e))) => Event::MessageError(e),
        Some(Ok(Ok(m))) => match m {
            Message::Open(o) => Event::BgpOpen(o),
            Message::Update(u) => Event::UpdateMsg(u),
            Message::Notification(n) => Event::NotifMsg(n),
            Message::Keepalive => Event::KeepAliveMsg,
            Message::RouteRefresh(r) => Event::RouteRefreshMsg(r),
        },
    }
}

/// Logs a NOTIFICATION with its numbers and decoded name (STYLE §5: every NOTIFICATION sent
/// or received), plus the RFC 9003 Shutdown Communication when it carries one.
fn log_notification(direction: &'static str, n: &Notification) {
    let text = match n.shutdown_communication() {
        Some(Ok(t)) => Some(t),
        _ => None,
    };
    // A Cease is how sessions normally end; anything else is an error worth a warning.
    if n.code == ErrorCode::CEASE {
        info!(direction, code = n.code.0, subcode = n.subcode, name = %n.name(),
            shutdown_communication = text, "notification");
    } else {
        warn!(direction, code = n.code.0, subcode = n.subcode, name = %n.name(),
            shutdown_communication = text, "notification");
    }
}

/// Logs a NOTIFICATION that could not be sent, and why.
fn log_notification_unsent(n: &Notification, why: &'static str) {
    warn!(code = n.code.0, subcode = n.subcode, name = %n.name(), why, "notification not sent");
}

/// Closes a connection that lost collision detection, or met an Established session (§6.8),
/// with Cease 6/7 (RFC 4486 §4). In a task of its own under [`NOTIFICATION_SEND_LIMIT`], so a
/// peer that does not read cannot hold up the peer task.
fn refuse(mut conn: Conn) {
    let n = fsm::collision_cease();
    let task = async move {
        let sent = tokio::time::timeout(
            NOTIFICATION_SEND_LIMIT,
            conn.send(Message::Notification(n.clone())),
        )
        .await;
        match sent {
            Ok(Ok(())) => log_notification("sent", &n),
            Ok(Err(_)) => log_notification_unsent(&n, "write failed"),
            Err(_) => log_notification_unsent(&n, "timed out"),
        }
    };
    tokio::spawn(task.in_current_span());
}

impl Driver {
    fn emit_kind(&self, kind: EventKind) -> SpeakerEvent {
        SpeakerEvent {
            peer: self.cfg.addr,
            kind,
        }
    }

    /// The returned future borrows nothing from `self`, so the driver need not be `Sync`.
    fn emit(&self, kind: EventKind) -> impl Future<Output = ()> + Send + 'static {
        let tx = self.shared.events.clone();
        let event = self.emit_kind(kind);
        async move {
            // A closed receiver means nobody listens; the session goes on.
            let _ = tx.send(event).await;
        }
    }

    fn ibgp(&self) -> bool {
        self.cfg.peer_as == Some(self.shared.local_as)
    }

    /// What the two OPENs agreed on, from OpenConfirm on.
    fn negotiated(&self) -> Option<&fsm::Negotiated> {
        match &self.state {
            State::OpenConfirm(n) | State::Established(n) => Some(n),
            _ => None,
        }
    }

    /// The codec context of the session (the default before the OPENs are exchanged).
    fn ctx(&self) -> DecodeCtx {
        self.negotiated().map_or_else(DecodeCtx::default, |n| n.ctx)
    }

    /// What the attributes of our routes depend on; `None` unless Established.
    fn session_view(&self) -> Option<SessionView> {
        let State::Established(n) = &self.state else {
            return None;
        };
        Some(SessionView {
            local_as: self.shared.local_as,
            ibgp: n.remote.asn() == self.shared.local_as,
            local_addr: self.local_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            families: n.ctx.families,
        })
    }

    /// How long one write may take: the negotiated hold time (a peer that reads nothing for that
    /// long is as dead as one that sends nothing), else the OpenSent hold time (RFC 4271 §8.2.2).
    fn write_deadline(&self) -> Instant {
        let limit = match self.negotiated() {
            Some(n) if n.hold_time > 0 => Duration::from_secs(u64::from(n.hold_time)),
            _ => fsm::OPEN_SENT_HOLD_TIME,
        };
        Instant::now() + limit
    }

    /// The FSM event for a write that did not finish.
    fn interrupted(&mut self, i: Interrupted) -> Event {
        match i {
            Interrupted::Failed => Event::TcpConnectionFails,
            Interrupted::HoldExpired => {
                self.hold = None;
                Event::HoldTimerExpired
            }
            Interrupted::Deadline => {
                warn!("write deadline passed: the peer reads nothing");
                Event::TcpConnectionFails
            }
            Interrupted::Stop(n) => {
                self.stopping = true;
                Event::ManualStop(n.unwrap_or_else(|| {
                    Notification::cease(crate::wire::error::cease_subcode::PEER_DECONFIGURED)
                }))
            }
        }
    }

    fn socket_options(&self) -> SocketOptions {
        SocketOptions {
            local_address: self.cfg.local_address,
            // RFC 4271 §5.1.3 / common practice: eBGP peers are directly connected unless
            // multihop is configured, so TTL 1 keeps the session from crossing a router.
            ttl: if self.ibgp() {
                None
            } else {
                Some(self.cfg.ebgp_multihop.unwrap_or(1))
            },
            gtsm_hops: self.cfg.gtsm_hops,
            md5_password: self.cfg.md5_password.clone(),
        }
    }

    fn router_id(&self) -> Ipv4Addr {
        if let Some(id) = self.shared.router_id {
            return id;
        }
        match self.local_addr {
            Some(IpAddr::V4(a)) => a,
            // An IPv6-only transport has no IPv4 address to borrow: use its low 32 bits.
            Some(IpAddr::V6(a)) => {
                let low = u32::from_be_bytes(
                    a.octets()
                        .get(12..16)
                        .and_then(|s| <[u8; 4]>::try_from(s).ok())
                        .unwrap_or([0, 0, 0, 1]),
                );
                Ipv4Addr::from(low.max(1))
            }
            None => Ipv4Addr::new(0, 0, 0, 1),
        }
    }

    fn families(&self) -> Vec<Family> {
        let mut f = Vec::new();
        if self.cfg.ipv4 {
            f.push(Family::IPV4_UNICAST);
        }
        if self.cfg.ipv6 {
            f.push(Family::IPV6_UNICAST);
        }
        f
    }

    /// Our OPEN for the connection at hand.
    fn local_open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families()
            .into_iter()
            .map(Capability::Multiprotocol)
            .collect();
        caps.push(Capability::RouteRefresh);
        if let Some(gr) = self.shared.graceful_restart {
            // RFC 4724 §3: R after our own restart; F per family, since the nodes keep
            // forwarding to the VIPs while this process restarts.
            let restarted = self.restarted;
            caps.push(Capability::GracefulRestart(GracefulRestart {
                restart_flags: if restarted {
                    GracefulRestart::RESTART_STATE
                } else {
                    0
                },
                restart_time: gr.restart_time.min(4095),
                families: self
                    .families()
                    .into_iter()
                    .map(|family| GracefulRestartFamily {
                        family,
                        flags: if restarted {
                            GracefulRestartFamily::FORWARDING_STATE
                        } else {
                            0
                        },
                    })
                    .collect(),
            }));
        }
        Open::new(
            self.shared.local_as,
            HoldTime::new(self.cfg.hold_time).unwrap_or(HoldTime::DEFAULT),
            self.router_id(),
            caps,
        )
    }

    fn adopt(&mut self, conn: Conn) {
        let stream = conn.get_ref();
        let peer = stream
            .peer_addr()
            .unwrap_or(SocketAddr::new(self.cfg.addr, self.cfg.port));
        // Best effort on accepted sockets: the SYN already came in, but our segments get the
        // TTL and GTSM checks from here on.
        let _ = net::apply_ttl(
            &socket2::SockRef::from(stream),
            peer,
            &self.socket_options(),
        );
        let _ = stream.set_nodelay(true);
        self.local_addr = stream.local_addr().ok().map(|a| a.ip());
        self.connecting = None;
        self.had_connection = true;
        self.conn = Some(conn);
        self.fsm.local_open = self.local_open();
    }

    /// Whether the task is done: stopped, or an unknown peer whose connection is gone.
    fn finished(&self) -> bool {
        if !self.queue.is_empty() {
            return false;
        }
        let stopped = self.stopping && self.state == State::Idle;
        let unknown_done = self.on_exit.is_some()
            && self.had_connection
            && self.conn.is_none()
            && self.collision.is_none()
            && !matches!(
                self.state,
                State::OpenSent | State::OpenConfirm(_) | State::Established(_)
            );
        stopped || unknown_done
    }

    async fn run(mut self) {
        self.restarted = self.shared.graceful_restart.is_some_and(|gr| gr.restarted);
        if self.on_exit.is_some() {
            // An unknown peer only has the connection it came with (Event 5: passive start).
            self.feed(Event::AutomaticStartPassive).await;
        } else {
            self.feed(Event::ManualStart).await;
        }
        // Ends when stopped; every wait below is an event, a timer or a channel, and every
        // write inside is bounded (see `bounded`).
        loop {
            if self.finished() {
                break;
            }
            if !self.queue.is_empty() {
                // Follow-ups left over from the last round's budget.
                self.drain().await;
                continue;
            }
            let established = matches!(self.state, State::Established(_));
            let event = tokio::select! {
                n = self.stop.recv() => {
                    self.stopping = true;
                    Event::ManualStop(n.unwrap_or_else(|| Notification::cease(
                        crate::wire::error::cease_subcode::PEER_DECONFIGURED,
                    )))
                }
                frame = next_frame(&mut self.conn) => {
                    if frame.as_ref().is_some_and(|f| f.is_ok()) {
                        self.received += 1;
                    }
                    event_from_frame(frame)
                }
                res = connecting(&mut self.connecting) => {
                    self.connecting = None;
                    match res {
                        Ok(stream) => {
                            self.adopt(Framed::new(stream, BgpCodec::default()));
                            Event::TcpConnectionConfirmed
                        }
                        Err(e) => {
                            self.emit(EventKind::ConnectFailed { error: e.to_string() }).await;
                            Event::TcpConnectionFails
                        }
                    }
                }
                res = pending_open(&mut self.collision) => {
                    self.collision = None;
                    if let Some((conn, open)) = res {
                        self.on_collision_open(conn, open).await;
                    }
                    continue;
                }
                Some(stream) = self.inbound.recv() => {
                    self.on_inbound(stream).await;
                    continue;
                }
                () = sleep_opt(self.hold), if self.hold.is_some() => {
                    self.hold = None;
                    Event::HoldTimerExpired
                }
                () = sleep_opt(self.keepalive), if self.keepalive.is_some() => {
                    self.keepalive = None;
                    Event::KeepaliveTimerExpired
                }
                () = sleep_opt(self.connect_retry), if self.connect_retry.is_some() => {
                    self.connect_retry = None;
                    if self.connecting.is_some() {
                        // The attempt is dropped below; say why, since with TCP-MD5 a wrong
                        // password looks exactly like this (the SYNs are dropped unanswered).
                        self.emit(EventKind::ConnectFailed {
                            error: format!(
                                "connect {}:{}: no answer before ConnectRetry expired{}",
                                self.cfg.addr,
                                self.cfg.port,
                                if self.cfg.md5_password.is_some() {
                                    " (TCP-MD5 is on: check the password on both sides)"
                                } else {
                                    ""
                                }
                            ),
                        })
                        .await;
                    }
                    Event::ConnectRetryTimerExpired
                }
                () = sleep_opt(self.restart_at), if self.restart_at.is_some() => {
                    self.restart_at = None;
                    Event::ManualStart
                }
                Ok(()) = self.routes.changed(), if established => {
                    let failed = self.sync_routes().await;
                    match failed {
                        Some(e) => e,
                        None if self.initial_pending => {
                            self.initial_pending = false;
                            match self.send_end_of_rib().await {
                                Some(e) => e,
                                None => continue,
                            }
                        }
                        None => continue,
                    }
                }
            };
            self.feed(event).await;
        }
        if let Some(on_exit) = self.on_exit.take() {
            on_exit(self.id);
        }
        self.emit(EventKind::Messages {
            received: self.received,
            sent: self.sent,
            notifications_unsent: self.notifications_unsent,
            prefixes_received: self.prefixes_received,
            prefixes_withdrawn: self.prefixes_withdrawn,
        })
        .await;
    }

    /// Queues `event` for the FSM and runs a round of the queue.
    async fn feed(&mut self, event: Event) {
        self.queue.push(event);
        self.drain().await;
    }

    /// Runs queued events through the FSM, at most [`MAX_CHAINED_EVENTS`] per round; the rest
    /// stay queued and run next round (`run` takes them before waiting for anything else).
    async fn drain(&mut self) {
        let mut ran = 0;
        while let Some(event) = self.queue.next_in_round(ran) {
            ran += 1;
            self.step(event).await;
        }
        if self.queue.is_empty()
            && self.state == State::Idle
            && !self.stopping
            && self.on_exit.is_none()
            && self.restart_at.is_none()
        {
            // Automatic restart (RFC 4271 Event 3) after a backoff.
            self.restart_at = Some(Instant::now() + self.backoff.next());
        }
    }

    /// One FSM transition; the actions' follow-up events join the queue.
    async fn step(&mut self, event: Event) {
        let was_established = matches!(self.state, State::Established(_));
        let from = self.state.name();
        let event_name = event.name();
        if let Event::NotifMsg(n) = &event {
            log_notification("received", n);
        }
        let state = std::mem::replace(&mut self.state, State::Idle);
        let (next, actions) = fsm::step(&self.fsm, state, event);
        self.state = next;
        let to = self.state.name();
        if from != to {
            // The down reason says more than the event name when there is one.
            let down = actions.iter().find_map(|a| match a {
                Action::Down(r) => Some(r.to_string()),
                _ => None,
            });
            info!(
                from,
                to,
                reason = down.as_deref().unwrap_or(event_name),
                "state change"
            );
        }
        for action in actions {
            if let Some(follow) = self.execute(action, was_established).await {
                self.queue.push(follow);
            }
        }
    }

    async fn send(&mut self, m: Message) -> Option<Event> {
        if let Message::Notification(n) = m {
            self.send_notification(n).await;
            return None;
        }
        let deadline = self.write_deadline();
        let is_update = matches!(m, Message::Update(_));
        let conn = self.conn.as_mut()?;
        let result = bounded(
            conn.send(m),
            deadline,
            self.hold,
            &mut self.stop,
            !self.stopping,
        )
        .await;
        match result {
            Ok(()) => {
                self.sent += 1;
                if is_update {
                    self.update_sent();
                }
                None
            }
            Err(i) => Some(self.interrupted(i)),
        }
    }

    /// A NOTIFICATION is the last word on a connection: best effort under
    /// [`NOTIFICATION_SEND_LIMIT`], counted as sent only when it went out.
    async fn send_notification(&mut self, n: Notification) {
        let Some(conn) = self.conn.as_mut() else {
            self.notifications_unsent += 1;
            log_notification_unsent(&n, "no connection");
            return;
        };
        let deadline = Instant::now() + NOTIFICATION_SEND_LIMIT;
        let m = Message::Notification(n.clone());
        match bounded(conn.send(m), deadline, None, &mut self.stop, false).await {
            Ok(()) => {
                self.sent += 1;
                log_notification("sent", &n);
            }
            Err(i) => {
                self.notifications_unsent += 1;
                let why = match i {
                    Interrupted::Deadline => "timed out: the peer reads nothing",
                    _ => "write failed",
                };
                log_notification_unsent(&n, why);
            }
        }
    }

    async fn execute(&mut self, action: Action, was_established: bool) -> Option<Event> {
        match action {
            Action::Connect => {
                if !self.cfg.passive && self.conn.is_none() && self.connecting.is_none() {
                    let addr = SocketAddr::new(self.cfg.addr, self.cfg.port);
                    let opts = self.socket_options();
                    self.connecting = Some(Box::pin(async move {
                        net::connect(addr, &opts, Duration::from_secs(10)).await
                    }));
                }
                None
            }
            Action::Send(m) => self.send(m).await,
            Action::Close => {
                if let Some(mut c) = self.conn.take() {
                    // A write left stuck in the buffer (the peer reads nothing) is dropped with
                    // the socket; otherwise close politely.
                    if c.write_buffer().is_empty() {
                        let _ = tokio::time::timeout(
                            NOTIFICATION_SEND_LIMIT,
                            SinkExt::<Message>::close(&mut c),
                        )
                        .await;
                    }
                }
                self.connecting = None;
                None
            }
            Action::ArmTimer(t, d) => {
                let at = Some(Instant::now() + d);
                match t {
                    Timer::Hold => self.hold = at,
                    Timer::Keepalive => self.keepalive = at,
                    Timer::ConnectRetry => self.connect_retry = at,
                }
                None
            }
            Action::ArmConnectRetry => {
                self.connect_retry = Some(Instant::now() + self.backoff.next());
                None
            }
            Action::CancelTimer(t) => {
                match t {
                    Timer::Hold => self.hold = None,
                    Timer::Keepalive => self.keepalive = None,
                    Timer::ConnectRetry => self.connect_retry = None,
                }
                None
            }
            Action::Negotiated(ctx) => {
                if let Some(c) = self.conn.as_mut() {
                    c.codec_mut().set_ctx(ctx);
                }
                None
            }
            Action::Up => self.on_up().await,
            Action::Down(reason) => {
                self.initial_pending = false;
                self.rib.clear();
                self.emit(EventKind::Down {
                    was_established,
                    reason,
                })
                .await;
                None
            }
            Action::Received(update) => {
                let announced = update.announced().count();
                let withdrawn = update.withdrawn_prefixes().count();
                self.prefixes_received += announced as u64;
                self.prefixes_withdrawn += withdrawn as u64;
                if update.end_of_rib_family().is_some() {
                    self.emit(EventKind::EndOfRibReceived).await;
                } else if self.cfg.deliver_updates {
                    self.emit(EventKind::UpdateReceived {
                        announced,
                        withdrawn,
                        update: Some(update),
                    })
                    .await;
                }
                None
            }
            Action::RefreshRequested(_) => {
                // RFC 2918 §4: re-advertise the Adj-RIB-Out.
                let view = self.session_view()?;
                let all = Arc::clone(self.rib.sent());
                let empty = AdjRibOut::default();
                let mut cache = AttrCache::default();
                let mut out = Outgoing::default();
                let mut follow = None;
                for change in empty.diff(&all, &mut cache, view) {
                    if let Change::Announce(p, a) = change {
                        out.announce.insert(p, a);
                    }
                    if out.announce.len() >= CHUNK {
                        if let Err(e) = self.send_chunk(&mut out, false).await {
                            follow = Some(e);
                            break;
                        }
                    }
                }
                if follow.is_none() {
                    follow = self.send_chunk(&mut out, true).await.err();
                }
                self.emit(EventKind::RouteRefreshServed).await;
                follow
            }
        }
    }

    async fn on_up(&mut self) -> Option<Event> {
        self.backoff.reset();
        self.restarted = false;
        let State::Established(n) = &self.state else {
            return None;
        };
        let kind = EventKind::Up {
            peer_as: n.remote.asn(),
            router_id: n.remote.bgp_id,
            hold_time: n.hold_time,
            families: n.ctx.families,
        };
        self.emit(kind).await;
        if !self.shared.routes_ready.load(Ordering::Acquire) {
            // Speaker::defer_routes: the routes are still being read. The routes arm of the
            // run loop sends them and the End-of-RIB once they are set.
            self.initial_pending = true;
            return None;
        }
        if let Some(e) = self.sync_routes().await {
            return Some(e);
        }
        self.send_end_of_rib().await
    }

    /// RFC 4724 §2: End-of-RIB after the initial update, for each negotiated family.
    async fn send_end_of_rib(&mut self) -> Option<Event> {
        for u in Packer::end_of_rib(self.ctx().families) {
            if let Some(e) = self.send(Message::Update(u)).await {
                return Some(e);
            }
        }
        self.emit(EventKind::EndOfRibSent).await;
        None
    }

    /// Sends the difference between the desired routes and the Adj-RIB-Out, in chunks, so no
    /// second full copy of a 100k-prefix table is ever built: the diff walks the two snapshots
    /// in order and only a chunk of prefixes is packed at a time.
    async fn sync_routes(&mut self) -> Option<Event> {
        let view = self.session_view()?;
        let routes = Arc::clone(&self.routes.borrow_and_update());
        let old = self.rib.clone();
        let mut cache = AttrCache::default();
        let mut out = Outgoing::default();
        let (total, skipped) = {
            let mut diff = old.diff(&routes, &mut cache, view);
            for change in diff.by_ref() {
                match change {
                    Change::Announce(p, a) => {
                        out.announce.insert(p, a);
                    }
                    Change::Withdraw(p) => {
                        out.withdraw.insert(p);
                    }
                }
                if out.announce.len() + out.withdraw.len() >= CHUNK {
                    if let Err(e) = self.send_chunk(&mut out, false).await {
                        return Some(e);
                    }
                }
            }
            (diff.carried(), diff.skipped())
        };
        if let Err(e) = self.send_chunk(&mut out, true).await {
            return Some(e);
        }
        // Everything went out: the peer now holds what `routes` says for this session.
        self.rib.set(routes);
        if out.announced + out.withdrawn > 0 {
            self.emit(EventKind::PrefixesSent {
                announced: out.announced,
                withdrawn: out.withdrawn,
                updates: out.updates,
                total,
                skipped,
            })
            .await;
        }
        None
    }

    /// Packs and sends what `out` holds. Unless `last`, the final (probably part-filled)
    /// UPDATE is held back and its prefixes stay in `out` for the next chunk, so chunking
    /// costs no extra UPDATEs.
    async fn send_chunk(&mut self, out: &mut Outgoing, last: bool) -> Result<(), Event> {
        if out.announce.is_empty() && out.withdraw.is_empty() {
            return Ok(());
        }
        let plain: BTreeMap<IpNet, RouteAttributes> = out
            .announce
            .iter()
            .map(|(p, a)| (*p, RouteAttributes::clone(a)))
            .collect();
        let mut updates = match Packer::new(self.ctx()).pack(&plain, &out.withdraw) {
            Ok(u) => u,
            Err(e) => {
                // Our own attributes failed to encode: drop the chunk, keep the session.
                self.emit(EventKind::ConnectFailed {
                    error: format!("cannot pack routes: {e}"),
                })
                .await;
                out.announce.clear();
                out.withdraw.clear();
                return Ok(());
            }
        };
        drop(plain);
        let mut held_announce = BTreeSet::new();
        let mut held_withdraw = BTreeSet::new();
        if !last && updates.len() > 1 {
            if let Some(tail) = updates.pop() {
                held_announce.extend(tail.announced());
                held_withdraw.extend(tail.withdrawn_prefixes());
            }
        }
        let count = updates.len();
        let deadline = self.write_deadline();
        let Some(conn) = self.conn.as_mut() else {
            return Err(Event::TcpConnectionFails);
        };
        // Counted as they are handed to the framing, so an abandoned write still counts what
        // reached it (at most one buffer's worth of that may never leave).
        let mut fed: u64 = 0;
        let io = async {
            for u in updates {
                // feed() buffers and writes when the buffer fills; one flush at the end.
                conn.feed(Message::Update(u)).await?;
                fed += 1;
            }
            SinkExt::<Message>::flush(conn).await
        };
        let result = bounded(io, deadline, self.hold, &mut self.stop, !self.stopping).await;
        self.sent += fed;
        if let Err(i) = result {
            return Err(self.interrupted(i));
        }
        out.updates += count;
        if count > 0 {
            self.update_sent();
        }
        let announce = std::mem::take(&mut out.announce);
        for (p, a) in announce {
            if held_announce.contains(&p) {
                out.announce.insert(p, a);
            } else {
                out.announced += 1;
            }
        }
        let withdraw = std::mem::take(&mut out.withdraw);
        for p in withdraw {
            if held_withdraw.contains(&p) {
                out.withdraw.insert(p);
            } else {
                out.withdrawn += 1;
            }
        }
        Ok(())
    }

    /// Tells the FSM that UPDATEs went out, so it restarts the KeepaliveTimer (RFC 4271
    /// §8.2.2 Established). Its only possible action is (re)arming that timer.
    fn update_sent(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Idle);
        let (next, actions) = fsm::step(&self.fsm, state, Event::UpdateSent);
        self.state = next;
        for action in actions {
            match action {
                Action::ArmTimer(Timer::Keepalive, d) => self.keepalive = Some(Instant::now() + d),
                other => warn!(bug = true, action = ?other, "unexpected action for UpdateSent"),
            }
        }
    }

    /// An incoming connection from this peer (RFC 4271 §6.8 for collisions).
    async fn on_inbound(&mut self, stream: TcpStream) {
        if self.stopping {
            return;
        }
        match self.state {
            State::Idle | State::Connect | State::Active => {
                self.take_connection(Framed::new(stream, BgpCodec::default()), None)
                    .await;
            }
            State::OpenSent | State::OpenConfirm(_) => {
                if self.collision.is_some() {
                    // One collision at a time; the peer retries this one.
                    return;
                }
                // The peer sends its OPEN right after connecting: wait for it (its BGP
                // Identifier decides) in a future of its own, so the existing connection keeps
                // being served meanwhile.
                self.collision = Some(Box::pin(async move {
                    let mut incoming = Framed::new(stream, BgpCodec::default());
                    match tokio::time::timeout(COLLISION_OPEN_LIMIT, incoming.next()).await {
                        Ok(Some(Ok(Ok(Message::Open(o))))) => Some((incoming, o)),
                        _ => None,
                    }
                }));
            }
            State::Established(_) => {
                // §6.8: "collision with existing BGP connection that is in the Established
                // state causes closing of the newly created connection".
                refuse(Framed::new(stream, BgpCodec::default()));
            }
        }
    }

    /// The OPEN of a colliding connection arrived: keep the connection of the higher BGP
    /// Identifier (RFC 4271 §6.8), through the FSM (Event 23 for our losing connection).
    async fn on_collision_open(&mut self, conn: Conn, open: Open) {
        if self.stopping {
            return;
        }
        match self.state {
            // Our connection went away meanwhile: no collision left, take this one.
            State::Idle | State::Connect | State::Active => {
                self.take_connection(conn, Some(open)).await;
            }
            State::OpenSent | State::OpenConfirm(_) => {
                match resolve_collision(self.fsm.local_open.bgp_id, open.bgp_id) {
                    CollisionWinner::Ours => refuse(conn),
                    CollisionWinner::Theirs => {
                        self.feed(Event::OpenCollisionDump).await;
                        self.take_connection(conn, Some(open)).await;
                    }
                }
            }
            State::Established(_) => refuse(conn),
        }
    }

    /// Takes an accepted connection as the session, through the FSM: Event 5 out of Idle, then
    /// Event 17 (our OPEN goes out), then the peer's OPEN if collision detection read it.
    async fn take_connection(&mut self, conn: Conn, open: Option<Open>) {
        self.restart_at = None;
        if self.state == State::Idle {
            self.feed(Event::AutomaticStartPassive).await;
        }
        self.adopt(conn);
        self.feed(Event::TcpConnectionConfirmed).await;
        if let Some(open) = open {
            self.received += 1;
            self.feed(Event::BgpOpen(open)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Backoff, EventQueue, MAX_CHAINED_EVENTS};
    use crate::fsm::Event;
    use std::time::Duration;

    #[test]
    fn event_queue_defers_events_beyond_the_round_budget_and_drops_none() {
        let mut q = EventQueue::default();
        let total = 2 * MAX_CHAINED_EVENTS + 3;
        for _ in 0..total {
            q.push(Event::KeepAliveMsg);
        }
        let mut rounds = Vec::new();
        // Bounded: each round takes at least one event while any waits.
        for _ in 0..total {
            let mut ran = 0;
            while q.next_in_round(ran).is_some() {
                ran += 1;
            }
            if ran == 0 {
                break;
            }
            rounds.push(ran);
        }
        assert_eq!(rounds, vec![MAX_CHAINED_EVENTS, MAX_CHAINED_EVENTS, 3]);
        assert!(q.is_empty());
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_stays_bounded() {
        let mut b = Backoff {
            attempt: 0,
            seed: 12345,
        };
        let first = b.next();
        assert!(first >= Duration::from_millis(750) && first <= Duration::from_millis(1250));
        let second = b.next();
        assert!(second >= Duration::from_millis(1500) && second <= Duration::from_millis(2500));
        for _ in 0..100 {
            assert!(b.next() <= Duration::from_millis(37_500));
        }
        b.reset();
        assert!(b.next() <= Duration::from_millis(1250));
    }
}
