//! The tokio driver of one peer: executes the pure [`crate::fsm`]'s actions over
//! `Framed<TcpStream, BgpCodec>`.
//!
//! One task per peer owns its connection, timers, FSM state and Adj-RIB-Out:
//!
//! ```text
//!  Speaker ──watch<Arc<Routes>>──▶ ┐
//!  Speaker ──mpsc<Notification>──▶ ├─ peer task ──mpsc<SpeakerEvent>──▶ caller
//!  Speaker ──reset: mpsc<Notif.>─▶ │     (stop ends the task; reset closes the session and
//!                                  │      lets it restart after the backoff)
//!  listener ─mpsc<TcpStream>─────▶ ┘     │ ▲
//!                                        ▼ │ Framed<TcpStream, BgpCodec>
//! ```
//!
//! It connects at once on start (no initial delay), then backs off exponentially with jitter
//! (1 s doubling up to 30 s) after each failure; incoming connections are taken whenever no
//! session is past Active, and collisions are resolved by [`crate::fsm::resolve_collision`].
//!
//! The task is one [`Driver`]; its methods live by concern:
//!
//! - this module: spawning, the run loop (`select!` over channels, frames and timers) and the
//!   FSM round (`feed` → `step` → `execute`);
//! - [`connection`]: connecting with backoff, socket options, our OPEN, bounded writes;
//! - [`route_sync`]: Adj-RIB-Out diffs packed into UPDATEs, End-of-RIB, ROUTE-REFRESH;
//! - [`collision`]: incoming connections and RFC 4271 §6.8 collision resolution.

mod collision;
mod connection;
mod route_sync;

use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::SinkExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tracing::{info, Instrument};

use self::collision::{pending_open, PendingOpen};
use self::connection::{
    connecting, event_from_frame, log_notification, next_frame, sleep_opt, Backoff, Conn,
    Connecting, NOTIFICATION_SEND_LIMIT,
};
use crate::codec::BgpCodec;
use crate::counters::{MessageCounters, MessageType};
use crate::event::{EventKind, SpeakerEvent};
use crate::fsm::{self, Action, Event, State, Timer};
use crate::net;
use crate::rib::{AdjRibOut, Routes, SessionView};
use crate::wire::{DecodeCtx, HoldTime, Message, Notification, Open, Update};

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
    /// eBGP multihop TTL; `None` = TTL 1 for eBGP (directly connected), or the system default
    /// with `ebgp_system_ttl`.
    pub ebgp_multihop: Option<u8>,
    /// Without `ebgp_multihop`, send eBGP with the system's default TTL instead of 1 (no
    /// `IP_TTL` set), as MetalLB's native speaker does, so an eBGP peer a few hops away still
    /// connects. See [`crate::net::session_ttl`].
    pub ebgp_system_ttl: bool,
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
    /// The AS this session speaks as, instead of the speaker's: FRR's `neighbor X local-as N
    /// no-prepend replace-as`. The OPEN carries it, the AS_PATH of our routes is this AS alone
    /// (replace-as: the speaker's AS is not prepended), and the session is iBGP when the peer is
    /// in it. `None` = the speaker's AS.
    pub local_as: Option<u32>,
    /// The ConnectRetry timer (RFC 4271 §8.1.2 ConnectRetryTime): a fixed wait between connect
    /// attempts, as FRR's `timers connect`. `None` = exponential backoff with jitter (1 s
    /// doubling up to 30 s).
    pub connect_retry: Option<Duration>,
    /// Bind the session's sockets to this device (SO_BINDTODEVICE): a Linux VRF device, so the
    /// connection, its source address and its routes are the VRF's. `None` = the default VRF.
    pub bind_device: Option<String>,
    /// The interface a link-local peer address is on (its scope, RFC 4007 §6): unnumbered BGP.
    pub interface: Option<String>,
    /// Offer Extended Next Hop Encoding for IPv4 unicast over IPv6 (RFC 8950, [`crate::enh`]);
    /// when the peer offers it too, IPv4 prefixes take the session's IPv6 address as next hop.
    pub extended_next_hop: bool,
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
            ebgp_system_ttl: false,
            gtsm_hops: None,
            passive: false,
            ipv4: true,
            ipv6: true,
            deliver_updates: false,
            local_as: None,
            connect_retry: None,
            bind_device: None,
            interface: None,
            extended_next_hop: false,
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
    /// Set by `Speaker::shutdown_for_restart`: stops are [`Event::RestartStop`], which keep
    /// Graceful Restart where both sides support it.
    pub restarting: AtomicBool,
    /// The next [`PeerTask::id`].
    pub next_task_id: AtomicU64,
}

/// FSM events run per round of the run loop; follow-ups beyond this wait in the queue for the
/// next round (after the timers and channels were looked at), never dropped.
const MAX_CHAINED_EVENTS: usize = 16;

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
    /// Closes the session with this NOTIFICATION (RFC 4271 Event 8, AutomaticStop) and lets
    /// the task reconnect after its backoff.
    pub reset: mpsc::Sender<Notification>,
    pub handle: tokio::task::JoinHandle<()>,
    /// Tells this task from a later one at the same address.
    pub id: u64,
    /// Accepted from an address that is not a configured peer (collector mode).
    pub unknown: bool,
    /// Set once the peer's OPEN was accepted (OpenConfirm reached): the speaker evicts only
    /// unknown peers that have not got that far.
    pub opened: Arc<AtomicBool>,
    /// The task's message counters, read by [`crate::speaker::Speaker::message_counts`].
    pub counters: Arc<MessageCounters>,
}

/// Runs once, with the task's [`PeerTask::id`], when a peer task ends by itself (see
/// [`spawn`]'s `on_exit`).
pub(crate) type OnExit = Box<dyn FnOnce(u64) + Send>;

/// Starts a peer task. With `on_exit` the peer is one accepted from an unknown address: it never
/// connects out, ends with its first connection, and calls `on_exit` when it does. With
/// `open_deadline` the peer's OPEN must arrive within it (instead of the OpenSent hold time).
pub(crate) fn spawn(
    cfg: PeerConfig,
    shared: Arc<Shared>,
    routes: watch::Receiver<Arc<Routes>>,
    on_exit: Option<OnExit>,
    open_deadline: Option<Duration>,
) -> PeerTask {
    spawn_counted(cfg, shared, routes, on_exit, open_deadline, Arc::default())
}

/// [`spawn`], counting its messages into `counters` (those of the task it replaces, so a
/// peer's counts go on across a restart for a configuration change).
pub(crate) fn spawn_counted(
    cfg: PeerConfig,
    shared: Arc<Shared>,
    routes: watch::Receiver<Arc<Routes>>,
    on_exit: Option<OnExit>,
    open_deadline: Option<Duration>,
    counters: Arc<MessageCounters>,
) -> PeerTask {
    let opened = Arc::new(AtomicBool::new(false));
    let (inbound_tx, inbound_rx) = mpsc::channel(4);
    let (stop_tx, stop_rx) = mpsc::channel(1);
    let (reset_tx, reset_rx) = mpsc::channel(1);
    let id = shared.next_task_id.fetch_add(1, Ordering::Relaxed);
    let seed = {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(cfg.addr) | 1
    };
    let unknown = on_exit.is_some();
    let driver = Driver {
        fsm: fsm::Config {
            local_open: Open::new(
                cfg.local_as.unwrap_or(shared.local_as),
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
        reset: reset_rx,
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
        open_deadline,
        opened: Arc::clone(&opened),
        counters: Arc::clone(&counters),
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
        reset: reset_tx,
        handle,
        id,
        unknown,
        opened,
        counters,
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
    reset: mpsc::Receiver<Notification>,
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
    /// How long a connection has for its OPEN (unknown peers of a collector).
    open_deadline: Option<Duration>,
    /// Shared with [`PeerTask::opened`].
    opened: Arc<AtomicBool>,
    /// Shared with [`PeerTask::counters`].
    counters: Arc<MessageCounters>,
    id: u64,
    had_connection: bool,
    queue: EventQueue,
    received: u64,
    sent: u64,
    notifications_unsent: u64,
    prefixes_received: u64,
    prefixes_withdrawn: u64,
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

    /// The AS this session speaks as ([`PeerConfig::local_as`], else the speaker's).
    fn local_as(&self) -> u32 {
        self.cfg.local_as.unwrap_or(self.shared.local_as)
    }

    fn ibgp(&self) -> bool {
        self.cfg.peer_as == Some(self.local_as())
    }

    /// How long to wait before the next connect attempt: the configured ConnectRetry time, or
    /// the backoff's next step.
    fn retry_delay(&mut self) -> Duration {
        retry_delay(self.cfg.connect_retry, &mut self.backoff)
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
            local_as: self.local_as(),
            ibgp: n.remote.asn() == self.local_as(),
            local_addr: self.local_addr.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            families: n.ctx.families,
            ipv4_via_ipv6: self.cfg.extended_next_hop && crate::enh::ipv4_over_ipv6(&n.remote),
        })
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
                    self.stop_event(n)
                }
                Some(n) = self.reset.recv() => Event::AutomaticStop(n),
                frame = next_frame(&mut self.conn) => {
                    if let Some(Ok(m)) = &frame {
                        self.received += 1;
                        self.counters
                            .count_received(m.as_ref().ok().map(MessageType::of));
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
            self.restart_at = Some(Instant::now() + self.retry_delay());
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
        if matches!(self.state, State::OpenConfirm(_) | State::Established(_)) {
            self.opened.store(true, Ordering::Release);
        }
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
                let d = match (t, &self.state, self.open_deadline) {
                    // RFC 4271 §8.2.2 only suggests 4 minutes for the OpenSent HoldTimer ("a
                    // large value"); a collector open to any address gives a connection less,
                    // so ones that trickle their OPEN cannot hold a slot for that long.
                    (Timer::Hold, State::OpenSent, Some(limit)) => d.min(limit),
                    _ => d,
                };
                let at = Some(Instant::now() + d);
                match t {
                    Timer::Hold => self.hold = at,
                    Timer::Keepalive => self.keepalive = at,
                    Timer::ConnectRetry => self.connect_retry = at,
                }
                None
            }
            Action::ArmConnectRetry => {
                self.connect_retry = Some(Instant::now() + self.retry_delay());
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
            Action::Received(mut update) => {
                // RFC 7606 §3 d: a missing well-known mandatory attribute (ORIGIN, AS_PATH,
                // NEXT_HOP) is found apart from syntax; its treat-as-withdraw joins the
                // decoder's, so every consumer of the UPDATE sees one verdict.
                let findings = update.missing_mandatory_attributes();
                if !findings.is_empty() {
                    update.treat_as_withdraw = true;
                }
                update.attribute_errors.extend(findings);
                let (announced, withdrawn) = received_counts(&update);
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
            // RFC 2918 §4: re-advertise the Adj-RIB-Out.
            Action::RefreshRequested(_) => self.serve_route_refresh().await,
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
            local_addr: self.local_addr,
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
}

/// The wait before the next connect attempt: `fixed` (the peer's ConnectRetry time, as FRR's
/// `timers connect`) when set, leaving the backoff untouched; else the backoff's next step.
fn retry_delay(fixed: Option<Duration>, backoff: &mut Backoff) -> Duration {
    match fixed {
        Some(d) => d,
        None => backoff.next(),
    }
}

/// The (announced, withdrawn) prefix counts of a received UPDATE. RFC 7606 §2: with
/// treat-as-withdraw, the prefixes it announces are withdrawn, and counted so.
fn received_counts(update: &Update) -> (usize, usize) {
    let announced = update.announced().count();
    let withdrawn = update.withdrawn_prefixes().count();
    if update.treat_as_withdraw {
        (0, announced + withdrawn)
    } else {
        (announced, withdrawn)
    }
}

#[cfg(test)]
mod tests {
    use super::{retry_delay, Backoff, EventQueue, MAX_CHAINED_EVENTS};
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
    fn a_configured_connect_retry_time_is_used_as_is_every_time() {
        let mut b = Backoff {
            attempt: 0,
            seed: 7,
        };
        let fixed = Some(Duration::from_secs(5));
        for _ in 0..10 {
            assert_eq!(retry_delay(fixed, &mut b), Duration::from_secs(5));
        }
        // The backoff did not advance: without the fixed time it starts at about 1 s.
        assert!(retry_delay(None, &mut b) <= Duration::from_millis(1250));
        assert!(retry_delay(None, &mut b) >= Duration::from_millis(1500));
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
