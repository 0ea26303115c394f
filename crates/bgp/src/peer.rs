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
use std::sync::atomic::{AtomicBool, Ordering};
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
use crate::rib::{AdjRibOut, AttrCache, Routes, SessionView};
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

/// How long a NOTIFICATION may take to go out before we close anyway.
const NOTIFICATION_SEND_LIMIT: Duration = Duration::from_secs(3);
/// How long an incoming connection has to show its OPEN during collision detection.
const COLLISION_OPEN_LIMIT: Duration = Duration::from_secs(5);
/// A bound on events chained by one input (each action yields at most one follow-up).
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

/// The handles the speaker keeps for a running peer task.
#[derive(Debug)]
pub(crate) struct PeerTask {
    pub cfg: PeerConfig,
    pub inbound: mpsc::Sender<TcpStream>,
    pub stop: mpsc::Sender<Notification>,
    pub handle: tokio::task::JoinHandle<()>,
}

/// Starts a peer task.
pub(crate) fn spawn(
    cfg: PeerConfig,
    shared: Arc<Shared>,
    routes: watch::Receiver<Arc<Routes>>,
) -> PeerTask {
    let (inbound_tx, inbound_rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = mpsc::channel(1);
    let seed = {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(cfg.addr) | 1
    };
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
        state: State::Idle,
        conn: None,
        connecting: None,
        hold: None,
        keepalive: None,
        connect_retry: None,
        restart_at: None,
        backoff: Backoff { attempt: 0, seed },
        rib: AdjRibOut::default(),
        session: None,
        ctx: DecodeCtx::default(),
        local_addr: None,
        restarted: false,
        initial_pending: false,
        stopping: false,
        received: 0,
        sent: 0,
        prefixes_received: 0,
        prefixes_withdrawn: 0,
    };
    // RFC-free but fixed (STYLE §5): every log line of this task sits in `peer{addr, asn}`.
    let span = tracing::info_span!("peer", addr = %cfg.addr, asn = cfg.peer_as);
    let handle = tokio::spawn(driver.run(inbound_rx, stop_rx).instrument(span));
    PeerTask {
        cfg,
        inbound: inbound_tx,
        stop: stop_tx,
        handle,
    }
}

struct Driver {
    cfg: PeerConfig,
    fsm: fsm::Config,
    shared: Arc<Shared>,
    routes: watch::Receiver<Arc<Routes>>,
    state: State,
    conn: Option<Conn>,
    connecting: Option<Connecting>,
    hold: Option<Instant>,
    keepalive: Option<Instant>,
    connect_retry: Option<Instant>,
    restart_at: Option<Instant>,
    backoff: Backoff,
    rib: AdjRibOut,
    session: Option<SessionView>,
    ctx: DecodeCtx,
    local_addr: Option<IpAddr>,
    /// Set the Restart State bit in the next OPEN (cleared after the first Established).
    restarted: bool,
    /// Established, but the initial UPDATEs and End-of-RIB wait for the first routes.
    initial_pending: bool,
    stopping: bool,
    received: u64,
    sent: u64,
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

    fn adopt(&mut self, stream: TcpStream) {
        let peer = stream
            .peer_addr()
            .unwrap_or(SocketAddr::new(self.cfg.addr, self.cfg.port));
        // Best effort on accepted sockets: the SYN already came in, but our segments get the
        // TTL and GTSM checks from here on.
        let _ = net::apply_ttl(
            &socket2::SockRef::from(&stream),
            peer,
            &self.socket_options(),
        );
        let _ = stream.set_nodelay(true);
        self.local_addr = stream.local_addr().ok().map(|a| a.ip());
        self.connecting = None;
        self.conn = Some(Framed::new(stream, BgpCodec::default()));
        self.fsm.local_open = self.local_open();
    }

    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<TcpStream>,
        mut stop: mpsc::Receiver<Notification>,
    ) {
        self.restarted = self.shared.graceful_restart.is_some_and(|gr| gr.restarted);
        self.feed(Event::ManualStart).await;
        // Ends when stopped; every wait below is an event, a timer or a channel.
        loop {
            let established = matches!(self.state, State::Established(_));
            let event = tokio::select! {
                n = stop.recv() => {
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
                            self.adopt(stream);
                            Event::TcpConnectionConfirmed
                        }
                        Err(e) => {
                            self.emit(EventKind::ConnectFailed { error: e.to_string() }).await;
                            Event::TcpConnectionFails
                        }
                    }
                }
                Some(stream) = inbound.recv() => {
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
            if self.stopping && self.state == State::Idle {
                self.emit(EventKind::Messages {
                    received: self.received,
                    sent: self.sent,
                    prefixes_received: self.prefixes_received,
                    prefixes_withdrawn: self.prefixes_withdrawn,
                })
                .await;
                return;
            }
        }
    }

    /// Runs the FSM on `event` and everything its actions trigger.
    async fn feed(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        let mut budget = MAX_CHAINED_EVENTS;
        while let Some(event) = queue.pop_front() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                break;
            }
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
                    queue.push_back(follow);
                }
            }
        }
        if self.state == State::Idle && !self.stopping && self.restart_at.is_none() {
            // Automatic restart (RFC 4271 Event 3) after a backoff.
            self.restart_at = Some(Instant::now() + self.backoff.next());
        }
    }

    async fn send(&mut self, m: Message) -> Option<Event> {
        let conn = self.conn.as_mut()?;
        if let Message::Notification(n) = &m {
            log_notification("sent", n);
        }
        let is_update = matches!(m, Message::Update(_));
        let result = if matches!(m, Message::Notification(_)) {
            tokio::time::timeout(NOTIFICATION_SEND_LIMIT, conn.send(m))
                .await
                .unwrap_or(Ok(()))
        } else {
            conn.send(m).await
        };
        match result {
            Ok(()) => {
                self.sent += 1;
                if is_update {
                    self.update_sent();
                }
                None
            }
            Err(_) => Some(Event::TcpConnectionFails),
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
                    let _ = tokio::time::timeout(
                        NOTIFICATION_SEND_LIMIT,
                        SinkExt::<Message>::close(&mut c),
                    )
                    .await;
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
                self.ctx = ctx;
                if let Some(c) = self.conn.as_mut() {
                    c.codec_mut().set_ctx(ctx);
                }
                None
            }
            Action::Up => self.on_up().await,
            Action::Down(reason) => {
                self.initial_pending = false;
                self.rib.clear();
                self.session = None;
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
                let all: Vec<(IpNet, Arc<RouteAttributes>)> = self
                    .rib
                    .routes()
                    .iter()
                    .map(|(p, a)| (*p, Arc::clone(a)))
                    .collect();
                let mut out = Outgoing::default();
                let mut follow = None;
                for (p, a) in all {
                    out.announce.insert(p, a);
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
        let view = SessionView {
            local_as: self.shared.local_as,
            ibgp: n.remote.asn() == self.shared.local_as,
            local_addr: self.local_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            families: n.ctx.families,
        };
        let kind = EventKind::Up {
            peer_as: n.remote.asn(),
            router_id: n.remote.bgp_id,
            hold_time: n.hold_time,
            families: n.ctx.families,
        };
        self.session = Some(view);
        self.emit(kind).await;
        if !self.shared.routes_ready.load(Ordering::Acquire) {
            // Speaker::defer_routes: the routes are still being read. The routes arm of the
            // run loop sends them and the End-of-RIB once they are set.
            self.initial_pending = true;
            return None;
        }
        self.routes.borrow_and_update();
        if let Some(e) = self.sync_routes().await {
            return Some(e);
        }
        self.send_end_of_rib().await
    }

    /// RFC 4724 §2: End-of-RIB after the initial update, for each negotiated family.
    async fn send_end_of_rib(&mut self) -> Option<Event> {
        for u in Packer::end_of_rib(self.ctx.families) {
            if let Some(e) = self.send(Message::Update(u)).await {
                return Some(e);
            }
        }
        self.emit(EventKind::EndOfRibSent).await;
        None
    }

    /// Sends the difference between the desired routes and the Adj-RIB-Out, in chunks so
    /// that a 100k-prefix table never exists as a second full copy (the Adj-RIB-Out holds
    /// shared attributes, one pointer per prefix).
    async fn sync_routes(&mut self) -> Option<Event> {
        let view = self.session?;
        let routes = self.routes.borrow_and_update().clone();
        let mut cache = AttrCache::default();
        let mut out = Outgoing::default();
        let mut skipped = 0;
        for (p, r) in routes.iter() {
            let Some(a) = cache.get(p, r, &view) else {
                skipped += 1;
                continue;
            };
            if self.rib.has(p, &a) {
                continue;
            }
            out.announce.insert(*p, a);
            if out.announce.len() >= CHUNK {
                if let Err(e) = self.send_chunk(&mut out, false).await {
                    return Some(e);
                }
            }
        }
        for p in self.rib.stale(&routes, &mut cache, &view) {
            out.withdraw.insert(p);
            if out.withdraw.len() >= CHUNK {
                if let Err(e) = self.send_chunk(&mut out, false).await {
                    return Some(e);
                }
            }
        }
        if let Err(e) = self.send_chunk(&mut out, true).await {
            return Some(e);
        }
        if out.announced + out.withdrawn > 0 {
            self.emit(EventKind::PrefixesSent {
                announced: out.announced,
                withdrawn: out.withdrawn,
                updates: out.updates,
                total: self.rib.len(),
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
        let mut updates = match Packer::new(self.ctx).pack(&plain, &out.withdraw) {
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
        let Some(conn) = self.conn.as_mut() else {
            return Err(Event::TcpConnectionFails);
        };
        let count = updates.len();
        for u in updates {
            // feed() buffers and writes when the buffer fills; one flush at the end.
            if conn.feed(Message::Update(u)).await.is_err() {
                return Err(Event::TcpConnectionFails);
            }
        }
        if SinkExt::<Message>::flush(conn).await.is_err() {
            return Err(Event::TcpConnectionFails);
        }
        self.sent += count as u64;
        out.updates += count;
        if count > 0 {
            self.update_sent();
        }
        let announce = std::mem::take(&mut out.announce);
        let mut sent = BTreeMap::new();
        for (p, a) in announce {
            if held_announce.contains(&p) {
                out.announce.insert(p, a);
            } else {
                sent.insert(p, a);
            }
        }
        out.announced += sent.len();
        self.rib.insert_batch(&mut sent);
        let withdraw = std::mem::take(&mut out.withdraw);
        for p in withdraw {
            if held_withdraw.contains(&p) {
                out.withdraw.insert(p);
            } else {
                self.rib.remove(&p);
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
                self.restart_at = None;
                self.state = State::Active;
                self.adopt(stream);
                self.feed(Event::TcpConnectionConfirmed).await;
            }
            State::OpenSent | State::OpenConfirm(_) => {
                // The peer sends its OPEN right after connecting; read it to learn its BGP
                // Identifier, then keep the connection of the higher identifier.
                let mut incoming = Framed::new(stream, BgpCodec::default());
                let open = match tokio::time::timeout(COLLISION_OPEN_LIMIT, incoming.next()).await {
                    Ok(Some(Ok(Ok(Message::Open(o))))) => o,
                    _ => return,
                };
                let local_id = self.fsm.local_open.bgp_id;
                match resolve_collision(local_id, open.bgp_id) {
                    CollisionWinner::Ours => {
                        log_notification("sent", &fsm::collision_cease());
                        let _ = tokio::time::timeout(
                            NOTIFICATION_SEND_LIMIT,
                            incoming.send(Message::Notification(fsm::collision_cease())),
                        )
                        .await;
                    }
                    CollisionWinner::Theirs => {
                        let _ = self
                            .send(Message::Notification(fsm::collision_cease()))
                            .await;
                        self.conn = None;
                        self.hold = None;
                        self.keepalive = None;
                        self.state = State::Active;
                        self.adopt(incoming.into_inner());
                        self.feed(Event::TcpConnectionConfirmed).await;
                        self.received += 1;
                        self.feed(Event::BgpOpen(open)).await;
                    }
                }
            }
            State::Established(_) => {
                // §6.8: a collision with an Established session closes the new connection.
                log_notification("sent", &fsm::collision_cease());
                let mut incoming = Framed::new(stream, BgpCodec::default());
                let _ = tokio::time::timeout(
                    NOTIFICATION_SEND_LIMIT,
                    incoming.send(Message::Notification(fsm::collision_cease())),
                )
                .await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

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
