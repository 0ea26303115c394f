//! The BGP finite state machine of RFC 4271 §8 as a pure function.
//!
//! No tokio, no sockets, no clock reads: [`step`] takes the session [`Config`], the current
//! [`State`] and one [`Event`], and returns the next state with the [`Action`]s the driver
//! (`peer/`) must execute in order. Timers are actions ([`Action::ArmTimer`],
//! [`Action::CancelTimer`]); their expiry comes back as an event.
//!
//! ```text
//!                 ManualStart
//!   ┌──────┐ ───────────────────▶ ┌─────────┐  TcpConnectionFails   ┌────────┐
//!   │ Idle │                      │ Connect │ ────────────────────▶ │ Active │
//!   └──────┘ ◀── any error ──┐    └─────────┘ ◀── ConnectRetry ──── └────────┘
//!       ▲                    │         │ TcpConnectionConfirmed          │
//!       │                    │         ▼ (send OPEN)                     │
//!       │                    │   ┌──────────┐ ◀──────────────────────────┘
//!       │                    ├── │ OpenSent │
//!       │                    │   └──────────┘
//!       │                    │         │ OPEN ok (send KEEPALIVE)
//!       │                    │         ▼
//!       │                    │   ┌─────────────┐
//!       │                    ├── │ OpenConfirm │
//!       │                    │   └─────────────┘
//!       │                    │         │ KEEPALIVE
//!       │                    │         ▼
//!       │                    │   ┌─────────────┐
//!       └────────────────────┴── │ Established │
//!                                └─────────────┘
//! ```
//!
//! Simplifications against §8 (documented in `docs/bgp-sessions.md`): no DelayOpen, no
//! IdleHoldTimer (the driver backs off before the next [`Event::ManualStart`]), no damping;
//! the passive/active split is the driver's (it connects and accepts at once).
//! Connection collisions (§6.8) are decided by the pure [`resolve_collision`].

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::wire::error::{cease_subcode, fsm_subcode, open_subcode};
use crate::wire::{
    Capability, DecodeCtx, ErrorCode, GracefulRestart, Message, MessageError, MessageType,
    Notification, Open, RouteRefresh, Update,
};

/// The large hold time set when the OPEN goes out (RFC 4271 §8.2.2: "suggested value ... is 4
/// minutes").
pub const OPEN_SENT_HOLD_TIME: Duration = Duration::from_secs(240);

/// The six states of RFC 4271 §8.2.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Refuses connections; waits for a start event.
    Idle,
    /// Waiting for the outgoing TCP connection to complete.
    Connect,
    /// Waiting for a connection (incoming, or the next attempt after ConnectRetry).
    Active,
    /// Our OPEN is sent; waiting for the peer's.
    OpenSent,
    /// Both OPENs exchanged; waiting for the peer's KEEPALIVE.
    OpenConfirm(Negotiated),
    /// The session is up.
    Established(Negotiated),
}

impl State {
    /// The RFC name of the state, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm(_) => "OpenConfirm",
            State::Established(_) => "Established",
        }
    }

    /// The RFC 6608 §4 FSM error subcode for an unexpected message in this state.
    fn fsm_error_subcode(&self) -> u8 {
        match self {
            State::OpenSent => fsm_subcode::UNEXPECTED_MESSAGE_IN_OPEN_SENT,
            State::OpenConfirm(_) => fsm_subcode::UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM,
            State::Established(_) => fsm_subcode::UNEXPECTED_MESSAGE_IN_ESTABLISHED,
            _ => fsm_subcode::UNSPECIFIED,
        }
    }
}

/// What the two OPENs agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The peer's OPEN.
    pub remote: Open,
    /// The hold time in force: the smaller of both proposals (RFC 4271 §4.2); 0 = none.
    pub hold_time: u16,
    /// The keepalive interval; 0 when the hold time is 0 (RFC 4271 §10).
    pub keepalive: u16,
    /// The codec context for the rest of the session.
    pub ctx: DecodeCtx,
}

/// The session's fixed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The OPEN we send (carries our ASN, proposed hold time, BGP ID and capabilities).
    pub local_open: Open,
    /// The ASN the peer must present; `None` accepts any (a passive collector).
    pub peer_as: Option<u32>,
    /// Keepalive interval in seconds; `None` = a third of the negotiated hold time.
    pub keepalive: Option<u16>,
}

/// The FSM's timers (RFC 4271 §8.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// ConnectRetryTimer: its duration is the driver's backoff, not a fixed value.
    ConnectRetry,
    /// HoldTimer.
    Hold,
    /// KeepaliveTimer.
    Keepalive,
}

/// Input events, named after RFC 4271 §8.1.
// UPDATE is the common event; boxing it would cost an allocation per UPDATE.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Event 1, ManualStart (also used for Event 3, AutomaticStart, after the backoff).
    ManualStart,
    /// Event 2, ManualStop: carries the Cease NOTIFICATION to send (6/2 with RFC 9003 text,
    /// 6/3 when the peer was deconfigured).
    ManualStop(Notification),
    /// Not an RFC 4271 §8.1 event: a ManualStop because this process restarts (an upgrade).
    /// With Graceful Restart the session closes so that the peer keeps our routes as stale
    /// (RFC 4724 §4.2, RFC 8538 §4); see [`restart_close`]. The NOTIFICATION is the one sent
    /// when nothing can keep the routes (no Graceful Restart negotiated).
    RestartStop(Notification),
    /// Event 8, AutomaticStop: the local system closes the session on its own (BFD declared
    /// the path down: Cease 6/10, RFC 9384) and the driver restarts it after its backoff,
    /// unlike ManualStop. Carries the Cease NOTIFICATION to send.
    AutomaticStop(Notification),
    /// Event 5, AutomaticStart_with_PassiveTcpEstablishment: the driver accepted a connection
    /// while Idle (between automatic restarts); Idle → Active, where the connection is taken.
    AutomaticStartPassive,
    /// Event 9, ConnectRetryTimer_Expires.
    ConnectRetryTimerExpired,
    /// Event 10, HoldTimer_Expires.
    HoldTimerExpired,
    /// Event 11, KeepaliveTimer_Expires.
    KeepaliveTimerExpired,
    /// Events 16/17, Tcp_CR_Acked / TcpConnectionConfirmed: a connection is up.
    TcpConnectionConfirmed,
    /// Event 18, TcpConnectionFails (also a clean EOF from the peer).
    TcpConnectionFails,
    /// Event 19, BGPOpen.
    BgpOpen(Open),
    /// Events 21/22, BGPHeaderErr / BGPOpenMsgErr: the NOTIFICATION to send.
    MessageError(MessageError),
    /// Events 24/25, NotifMsgVerErr / NotifMsg.
    NotifMsg(Notification),
    /// Event 26, KeepAliveMsg.
    KeepAliveMsg,
    /// Event 23, OpenCollisionDump: collision detection (§6.8) decided that this connection
    /// loses to the one the peer opened; it is closed with Cease 6/7 (RFC 4486 §4).
    OpenCollisionDump,
    /// Event 27, UpdateMsg.
    UpdateMsg(Update),
    /// Event 28, UpdateMsgErr: an UPDATE that must reset the session (RFC 7606 session reset).
    UpdateMsgErr(Notification),
    /// A ROUTE-REFRESH message (RFC 2918 §4; not numbered in RFC 4271).
    RouteRefreshMsg(RouteRefresh),
    /// Not an RFC 4271 §8.1 event: the driver sent one or more UPDATEs (it sends them outside
    /// the FSM), so the KeepaliveTimer restarts (§8.2.2 Established: "Each time the local
    /// system sends a KEEPALIVE or UPDATE message, it restarts its KeepaliveTimer, unless the
    /// negotiated HoldTime value is zero").
    UpdateSent,
}

impl Event {
    /// The RFC 4271 §8.1 name of the event, for logs (a state change's `reason`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::ManualStart => "ManualStart",
            Event::ManualStop(_) => "ManualStop",
            Event::RestartStop(_) => "ManualStop (restart)",
            Event::AutomaticStop(_) => "AutomaticStop",
            Event::AutomaticStartPassive => "AutomaticStart_with_PassiveTcpEstablishment",
            Event::ConnectRetryTimerExpired => "ConnectRetryTimer_Expires",
            Event::HoldTimerExpired => "HoldTimer_Expires",
            Event::KeepaliveTimerExpired => "KeepaliveTimer_Expires",
            Event::TcpConnectionConfirmed => "TcpConnectionConfirmed",
            Event::TcpConnectionFails => "TcpConnectionFails",
            Event::BgpOpen(_) => "BGPOpen",
            Event::MessageError(_) => "BGPHeaderErr/BGPOpenMsgErr",
            Event::NotifMsg(_) => "NotifMsg",
            Event::KeepAliveMsg => "KeepAliveMsg",
            Event::OpenCollisionDump => "OpenCollisionDump",
            Event::UpdateMsg(_) => "UpdateMsg",
            Event::UpdateMsgErr(_) => "UpdateMsgErr",
            Event::RouteRefreshMsg(_) => "RouteRefreshMsg",
            Event::UpdateSent => "UpdateSent",
        }
    }
}

/// Why a session left OpenSent, OpenConfirm or Established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// Our hold timer expired (we sent 4/0).
    HoldTimerExpired,
    /// We sent this NOTIFICATION because of an error.
    NotificationSent(Notification),
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// The TCP connection closed or failed.
    ConnectionLost,
    /// Stopped by us (ManualStop), with the Cease sent.
    Stopped(Notification),
    /// Stopped by us for a restart, the TCP connection closed without a NOTIFICATION so that
    /// the peer keeps our routes (RFC 4724 §4.2; see [`RestartClose::Silent`]).
    StoppedForRestart,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // RFC 9003 §2: show the Shutdown Communication as text, not only as hex data.
        let text = |n: &Notification| match n.shutdown_communication() {
            Some(Ok(t)) => format!(" message {t:?}"),
            _ => String::new(),
        };
        match self {
            DownReason::HoldTimerExpired => write!(f, "hold timer expired (sent 4/0)"),
            DownReason::NotificationSent(n) => write!(f, "sent NOTIFICATION {n}{}", text(n)),
            DownReason::NotificationReceived(n) => {
                write!(f, "received NOTIFICATION {n}{}", text(n))
            }
            DownReason::ConnectionLost => write!(f, "connection lost"),
            DownReason::Stopped(n) => write!(f, "stopped (sent {n}{})", text(n)),
            DownReason::StoppedForRestart => write!(
                f,
                "stopped for a restart (closed without a NOTIFICATION: Graceful Restart kept)"
            ),
        }
    }
}

/// What the driver must do, in order.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open the outgoing TCP connection (the driver also keeps accepting incoming ones).
    Connect,
    /// Send a message.
    Send(Message),
    /// Close the TCP connection.
    Close,
    /// (Re)arm a timer for this long.
    ArmTimer(Timer, Duration),
    /// Arm ConnectRetry with the driver's backoff (exponential, with jitter, bounded).
    ArmConnectRetry,
    /// Stop a timer.
    CancelTimer(Timer),
    /// Switch the codec to this context (after the OPEN exchange).
    Negotiated(DecodeCtx),
    /// The session reached Established: send the Adj-RIB-Out and End-of-RIB.
    Up,
    /// The session left OpenSent/OpenConfirm/Established.
    Down(DownReason),
    /// An UPDATE arrived in Established (the driver counts it; nothing is installed).
    Received(Update),
    /// The peer asked for a ROUTE-REFRESH: re-send the Adj-RIB-Out (RFC 2918 §4).
    RefreshRequested(RouteRefresh),
}

fn hold(seconds: u16) -> Duration {
    Duration::from_secs(u64::from(seconds))
}

/// The timer actions for a negotiated session: hold 0 means neither timer runs (RFC 4271 §4.4:
/// "If the negotiated Hold Time interval is zero, then periodic KEEPALIVE messages MUST NOT be
/// sent").
fn session_timers(n: &Negotiated) -> Vec<Action> {
    if n.hold_time == 0 {
        vec![
            Action::CancelTimer(Timer::Hold),
            Action::CancelTimer(Timer::Keepalive),
        ]
    } else {
        vec![
            Action::ArmTimer(Timer::Hold, hold(n.hold_time)),
            Action::ArmTimer(Timer::Keepalive, hold(n.keepalive)),
        ]
    }
}

/// Restarts the hold timer on a KEEPALIVE or UPDATE (RFC 4271 §8.2.2, Established, Events
/// 26/27), unless the hold time is 0.
fn restart_hold(n: &Negotiated) -> Vec<Action> {
    if n.hold_time == 0 {
        Vec::new()
    } else {
        vec![Action::ArmTimer(Timer::Hold, hold(n.hold_time))]
    }
}

fn cancel_all() -> [Action; 3] {
    [
        Action::CancelTimer(Timer::ConnectRetry),
        Action::CancelTimer(Timer::Hold),
        Action::CancelTimer(Timer::Keepalive),
    ]
}

/// Sends `n`, closes, and goes Idle with the given reason.
fn fail_with(n: Notification, reason: DownReason) -> (State, Vec<Action>) {
    let mut actions = vec![Action::Send(Message::Notification(n)), Action::Close];
    actions.extend(cancel_all());
    actions.push(Action::Down(reason));
    (State::Idle, actions)
}

/// A stop: sends `n` if any, closes, and goes Idle as [`DownReason::Stopped`], or
/// [`DownReason::StoppedForRestart`] when the close is silent.
fn stop_with(n: Option<Notification>) -> (State, Vec<Action>) {
    let mut actions = Vec::new();
    let reason = match n {
        Some(n) => {
            actions.push(Action::Send(Message::Notification(n.clone())));
            DownReason::Stopped(n)
        }
        None => DownReason::StoppedForRestart,
    };
    actions.push(Action::Close);
    actions.extend(cancel_all());
    actions.push(Action::Down(reason));
    (State::Idle, actions)
}

/// The Graceful Restart capability of an OPEN, if it carries one.
pub fn graceful_restart(open: &Open) -> Option<&GracefulRestart> {
    open.capabilities.iter().find_map(|c| match c {
        Capability::GracefulRestart(gr) => Some(gr),
        _ => None,
    })
}

/// Whether both OPENs carry the Graceful Restart capability with the N bit: a NOTIFICATION
/// then keeps Graceful Restart unless it is a Hard Reset (RFC 8538 §2, §4).
pub fn graceful_notification(local: &Open, remote: &Open) -> bool {
    let n = |o: &Open| {
        graceful_restart(o).is_some_and(|gr| gr.restart_flags & GracefulRestart::NOTIFICATION != 0)
    };
    n(local) && n(remote)
}

/// A Cease / Hard Reset (6/9) wrapping `n`: its data is the code, subcode and data of the
/// reason (RFC 8538 §3). A Hard Reset stays as it is.
pub fn hard_reset(n: &Notification) -> Notification {
    if n.code == ErrorCode::CEASE && n.subcode == cease_subcode::HARD_RESET {
        return n.clone();
    }
    let mut data = Vec::with_capacity(2 + n.data.len());
    data.push(n.code.0);
    data.push(n.subcode);
    data.extend_from_slice(&n.data);
    Notification {
        code: ErrorCode::CEASE,
        subcode: cease_subcode::HARD_RESET,
        data,
    }
}

/// How an Established session closes when this process restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartClose {
    /// Both sides advertised the N bit: a Cease that is not a Hard Reset keeps Graceful
    /// Restart (RFC 8538 §4). The subcode is Other Configuration Change (6/6): RFC 8538 §5.1
    /// lists Administrative Shutdown (6/2) among the Hard Reset subcodes, and FRR treats a
    /// received 6/2 (and by default 6/4) as one, which would purge our routes.
    Notify(Notification),
    /// Both sides advertised Graceful Restart, the peer without the N bit: any NOTIFICATION
    /// would end Graceful Restart, so the TCP connection closes without one, which the peer
    /// treats as our restart and keeps the routes (RFC 4724 §4.2).
    Silent,
    /// No Graceful Restart on one side: nothing keeps the routes, so the usual Cease goes
    /// out and the peer withdraws at once.
    Withdraw(Notification),
}

/// The close of an Established session for a restart of this process (the rules of RFC 4724
/// §4.2 and RFC 8538 §4, as the table on [`RestartClose`]). `cease` is the NOTIFICATION sent
/// when Graceful Restart cannot keep the routes.
pub fn restart_close(local: &Open, remote: &Open, cease: Notification) -> RestartClose {
    if graceful_notification(local, remote) {
        RestartClose::Notify(Notification::cease(
            cease_subcode::OTHER_CONFIGURATION_CHANGE,
        ))
    } else if graceful_restart(local).is_some() && graceful_restart(remote).is_some() {
        RestartClose::Silent
    } else {
        RestartClose::Withdraw(cease)
    }
}

/// Closes without a NOTIFICATION and goes Idle.
fn drop_to_idle(reason: DownReason) -> (State, Vec<Action>) {
    let mut actions = vec![Action::Close];
    actions.extend(cancel_all());
    actions.push(Action::Down(reason));
    (State::Idle, actions)
}

/// Checks the peer's OPEN against the configuration and negotiates the hold time
/// (RFC 4271 §6.2, §4.2). The decoder already refused version != 4, AS 0, hold 1/2 and ID 0.
pub fn check_open(cfg: &Config, remote: &Open) -> Result<Negotiated, Notification> {
    if cfg.peer_as.is_some_and(|want| want != remote.asn()) {
        // RFC 4271 §6.2: "If the Autonomous System field of the OPEN message is unacceptable,
        // then the Error Subcode MUST be set to Bad Peer AS."
        return Err(Notification::new(
            ErrorCode::OPEN_MESSAGE,
            open_subcode::BAD_PEER_AS,
        ));
    }
    let local_asn = cfg.local_open.asn();
    if remote.asn() == local_asn && remote.bgp_id == cfg.local_open.bgp_id {
        // RFC 6286 §2.2: within one AS the BGP Identifiers must differ.
        return Err(Notification::new(
            ErrorCode::OPEN_MESSAGE,
            open_subcode::BAD_BGP_IDENTIFIER,
        ));
    }
    // RFC 4271 §4.2: "the calculated value ... MUST be the smaller of its configured Hold Time
    // and the Hold Time received in the OPEN message."
    let hold_time = cfg
        .local_open
        .hold_time
        .seconds()
        .min(remote.hold_time.seconds());
    let keepalive = if hold_time == 0 {
        0
    } else {
        // RFC 4271 §10: "suggested value for the KeepaliveTime is 1/3 of the HoldTime"; a
        // configured value never exceeds that third, and is at least 1 s.
        let third = (hold_time / 3).max(1);
        cfg.keepalive.map_or(third, |k| k.clamp(1, third))
    };
    Ok(Negotiated {
        remote: remote.clone(),
        hold_time,
        keepalive,
        ctx: DecodeCtx::negotiate(&cfg.local_open, remote),
    })
}

/// One FSM transition (RFC 4271 §8.2.2). Events that a state does not expect are answered as
/// the RFC says: before OpenSent by dropping to Idle, from OpenSent on with an FSM Error
/// NOTIFICATION carrying the RFC 6608 subcode of the state.
pub fn step(cfg: &Config, state: State, event: Event) -> (State, Vec<Action>) {
    use Event as E;
    use State as S;
    match (state, event) {
        // §8.2.2 Established: sending an UPDATE restarts the KeepaliveTimer (hold 0: none
        // runs). UPDATEs only go out in Established, so elsewhere this is a no-op, never an
        // "unexpected message".
        (S::Established(n), E::UpdateSent) => {
            let actions = if n.keepalive > 0 {
                vec![Action::ArmTimer(Timer::Keepalive, hold(n.keepalive))]
            } else {
                Vec::new()
            };
            (S::Established(n), actions)
        }
        (s, E::UpdateSent) => (s, Vec::new()),
        // Idle: only a start event moves on (§8.2.2 Idle: "any other event ... ignored").
        (S::Idle, E::ManualStart) => (S::Connect, vec![Action::ArmConnectRetry, Action::Connect]),
        // §8.2.2 Idle, Event 5: "changes its state to Active". The ConnectRetryTimer is not
        // started: the driver hands over the accepted connection (Event 17) right after.
        (S::Idle, E::AutomaticStartPassive) => (S::Active, Vec::new()),
        (S::Idle, _) => (S::Idle, Vec::new()),

        // Connect/Active (§8.2.2).
        (S::Connect | S::Active, E::TcpConnectionConfirmed) => (
            S::OpenSent,
            vec![
                Action::CancelTimer(Timer::ConnectRetry),
                Action::Send(Message::Open(cfg.local_open.clone())),
                Action::ArmTimer(Timer::Hold, OPEN_SENT_HOLD_TIME),
            ],
        ),
        // Connect + Event 18: "changes its state to Active" after restarting ConnectRetry.
        (S::Connect | S::Active, E::TcpConnectionFails) => {
            (S::Active, vec![Action::Close, Action::ArmConnectRetry])
        }
        // Event 9 in Connect/Active: drop the attempt, connect again.
        (S::Connect | S::Active, E::ConnectRetryTimerExpired) => (
            S::Connect,
            vec![Action::Close, Action::ArmConnectRetry, Action::Connect],
        ),
        (S::Connect | S::Active, E::ManualStop(_) | E::RestartStop(_)) => {
            let mut actions = vec![Action::Close];
            actions.extend(cancel_all());
            (S::Idle, actions)
        }
        (S::Connect | S::Active, E::ManualStart) => (S::Connect, Vec::new()),
        (s @ (S::Connect | S::Active), E::AutomaticStartPassive) => (s, Vec::new()),
        // Any other event in Connect/Active: "drops the TCP connection ... changes its state to
        // Idle" (§8.2.2). Stray timer expiries are ignored (the driver may race a cancel).
        (s @ (S::Connect | S::Active), E::HoldTimerExpired | E::KeepaliveTimerExpired) => {
            (s, Vec::new())
        }
        (S::Connect | S::Active, _) => {
            let mut actions = vec![Action::Close];
            actions.extend(cancel_all());
            (S::Idle, actions)
        }

        // Stop from OpenSent on: Cease (RFC 4486 §4, RFC 9003 text inside), close, Idle. When
        // both sides advertised the N bit, any other NOTIFICATION would keep Graceful Restart,
        // so a stop that means "withdraw" goes as a Hard Reset (RFC 8538 §3).
        (S::OpenSent, E::ManualStop(cease) | E::RestartStop(cease)) => stop_with(Some(cease)),
        (S::OpenConfirm(n) | S::Established(n), E::ManualStop(cease)) => {
            if graceful_notification(&cfg.local_open, &n.remote) {
                stop_with(Some(hard_reset(&cease)))
            } else {
                stop_with(Some(cease))
            }
        }
        (S::OpenConfirm(_), E::RestartStop(cease)) => stop_with(Some(cease)),
        (S::Established(n), E::RestartStop(cease)) => {
            match restart_close(&cfg.local_open, &n.remote, cease) {
                RestartClose::Notify(n) | RestartClose::Withdraw(n) => stop_with(Some(n)),
                RestartClose::Silent => stop_with(None),
            }
        }
        // §8.2.2 OpenSent/OpenConfirm/Established, Event 8: "sends the NOTIFICATION with a
        // Cease, ... drops the TCP connection, ... changes its state to Idle". In Connect and
        // Active the catch-all below drops the attempt the same way. The driver's automatic
        // restart (backoff) follows, as after any failure.
        (S::OpenSent | S::OpenConfirm(_) | S::Established(_), E::AutomaticStop(cease)) => {
            fail_with(cease.clone(), DownReason::NotificationSent(cease))
        }
        // Event 10 anywhere from OpenSent on: 4/0 (RFC 4271 §6.5).
        (S::OpenSent | S::OpenConfirm(_) | S::Established(_), E::HoldTimerExpired) => fail_with(
            Notification::hold_timer_expired(),
            DownReason::HoldTimerExpired,
        ),
        (S::OpenSent | S::OpenConfirm(_) | S::Established(_), E::TcpConnectionFails) => {
            drop_to_idle(DownReason::ConnectionLost)
        }
        (S::OpenSent | S::OpenConfirm(_) | S::Established(_), E::NotifMsg(n)) => {
            drop_to_idle(DownReason::NotificationReceived(n))
        }
        // Events 21/22/28: send the decoder's NOTIFICATION.
        (S::OpenSent | S::OpenConfirm(_) | S::Established(_), E::MessageError(e)) => {
            let n = e.notification;
            fail_with(n.clone(), DownReason::NotificationSent(n))
        }
        (S::OpenSent | S::OpenConfirm(_) | S::Established(_), E::UpdateMsgErr(n)) => {
            fail_with(n.clone(), DownReason::NotificationSent(n))
        }
        (
            s @ (S::OpenSent | S::OpenConfirm(_) | S::Established(_)),
            E::ManualStart | E::AutomaticStartPassive,
        ) => (s, Vec::new()),
        // §8.2.2 OpenSent/OpenConfirm, Event 23: "sends a NOTIFICATION with a Cease ... drops
        // the TCP connection ... changes its state to Idle". Against Established the driver
        // closes the new connection instead (§6.8), so this never reaches Established.
        (S::OpenSent | S::OpenConfirm(_), E::OpenCollisionDump) => {
            let n = collision_cease();
            fail_with(n.clone(), DownReason::NotificationSent(n))
        }
        (s @ S::Established(_), E::OpenCollisionDump) => (s, Vec::new()),
        (
            s @ (S::OpenSent | S::OpenConfirm(_) | S::Established(_)),
            E::ConnectRetryTimerExpired,
        ) => (s, Vec::new()),

        // OpenSent (§8.2.2).
        (S::OpenSent, E::BgpOpen(remote)) => match check_open(cfg, &remote) {
            Ok(n) => {
                let mut actions = vec![Action::Negotiated(n.ctx), Action::Send(Message::Keepalive)];
                actions.extend(session_timers(&n));
                (S::OpenConfirm(n), actions)
            }
            Err(notification) => fail_with(
                notification.clone(),
                DownReason::NotificationSent(notification),
            ),
        },
        (S::OpenSent, E::KeepaliveTimerExpired) => (S::OpenSent, Vec::new()),

        // OpenConfirm (§8.2.2).
        (S::OpenConfirm(n), E::KeepAliveMsg) => {
            let mut actions = restart_hold(&n);
            actions.push(Action::Up);
            (S::Established(n), actions)
        }
        (s @ (S::OpenConfirm(_) | S::Established(_)), E::KeepaliveTimerExpired) => {
            let actions = match &s {
                S::OpenConfirm(n) | S::Established(n) if n.keepalive > 0 => vec![
                    Action::Send(Message::Keepalive),
                    Action::ArmTimer(Timer::Keepalive, hold(n.keepalive)),
                ],
                _ => Vec::new(),
            };
            (s, actions)
        }

        // Established (§8.2.2).
        (S::Established(n), E::KeepAliveMsg) => {
            let actions = restart_hold(&n);
            (S::Established(n), actions)
        }
        (S::Established(n), E::UpdateMsg(update)) => {
            let mut actions = restart_hold(&n);
            actions.push(Action::Received(update));
            (S::Established(n), actions)
        }
        (S::Established(n), E::RouteRefreshMsg(rr)) => {
            // RFC 2918 §4: honour it only if we advertised the capability, which we always do.
            let mut actions = restart_hold(&n);
            actions.push(Action::RefreshRequested(rr));
            (S::Established(n), actions)
        }

        // Everything else from OpenSent on is an unexpected message: 5/x (RFC 6608 §4), the
        // data being the message type.
        (s, event) => {
            let message_type = match event {
                E::BgpOpen(_) => MessageType::OPEN,
                E::KeepAliveMsg => MessageType::KEEPALIVE,
                E::UpdateMsg(_) => MessageType::UPDATE,
                E::RouteRefreshMsg(_) => MessageType::ROUTE_REFRESH,
                _ => MessageType::NOTIFICATION,
            };
            let n = Notification::fsm_unexpected(s.fsm_error_subcode(), message_type);
            fail_with(n.clone(), DownReason::NotificationSent(n))
        }
    }
}

/// Which connection survives a collision (RFC 4271 §6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionWinner {
    /// Keep the connection we initiated; close the peer's with Cease 6/7.
    Ours,
    /// Keep the connection the peer initiated; close ours with Cease 6/7.
    Theirs,
}

/// RFC 4271 §6.8: "If the value of the local BGP Identifier is less than the remote one, the
/// local system closes the BGP connection that already exists (the one that is already in the
/// OpenConfirm state), and accepts the BGP connection initiated by the remote system."
/// Identifiers compare as unsigned 32-bit integers.
pub fn resolve_collision(local_id: Ipv4Addr, remote_id: Ipv4Addr) -> CollisionWinner {
    if u32::from(local_id) < u32::from(remote_id) {
        CollisionWinner::Theirs
    } else {
        CollisionWinner::Ours
    }
}

/// The Cease sent on the connection closed by collision resolution (RFC 4486 §4, subcode 7).
pub fn collision_cease() -> Notification {
    Notification::cease(cease_subcode::CONNECTION_COLLISION_RESOLUTION)
}
