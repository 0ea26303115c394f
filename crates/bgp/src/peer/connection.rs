//! The connection side of a peer task: connecting with backoff, socket options on accepted
//! connections, our OPEN, and bounded writes (RFC 4271 §8: a peer that reads nothing is as
//! dead as one that sends nothing).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tracing::{info, warn};

use super::Driver;
use crate::codec::{BgpCodec, CodecError};
use crate::counters::MessageType;
use crate::fsm::{self, Event};
use crate::net::{self, NetError, SocketOptions};
use crate::wire::{
    Capability, ErrorCode, Family, GracefulRestart, GracefulRestartFamily, HoldTime, Message,
    MessageError, Notification, Open,
};

/// Exponential backoff with jitter: 1 s, 2 s, 4 s ... capped at 30 s, each ±25 %.
#[derive(Debug)]
pub(super) struct Backoff {
    pub(super) attempt: u32,
    pub(super) seed: u64,
}

impl Backoff {
    const BASE_MS: u64 = 1000;
    const CAP_MS: u64 = 30_000;

    pub(super) fn next(&mut self) -> Duration {
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

    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }
}

pub(super) type Connecting = Pin<Box<dyn Future<Output = Result<TcpStream, NetError>> + Send>>;
pub(super) type Conn = Framed<TcpStream, BgpCodec>;
pub(super) type Frame = Option<Result<Result<Message, MessageError>, CodecError>>;
/// How long a NOTIFICATION may take to go out before we close anyway.
pub(super) const NOTIFICATION_SEND_LIMIT: Duration = Duration::from_secs(3);

pub(super) async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(super) async fn next_frame(conn: &mut Option<Conn>) -> Frame {
    match conn {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

pub(super) async fn connecting(c: &mut Option<Connecting>) -> Result<TcpStream, NetError> {
    match c {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Why a bounded write did not finish.
#[derive(Debug)]
pub(super) enum Interrupted {
    /// The write itself failed.
    Failed,
    /// The HoldTimer expired while the write waited.
    HoldExpired,
    /// The write took longer than its deadline.
    Deadline,
    /// A stop request came in (`None`: the speaker dropped the handle).
    Stop(Option<Notification>),
    /// A reset request came in (BFD declared the path down): close with it, then restart.
    Reset(Notification),
}

/// Runs a write on the connection while still watching the HoldTimer, a deadline and stop
/// requests, so a peer that stops reading (its TCP window full) cannot stall the peer task: the
/// write is abandoned and the session fails as RFC 4271 §8 says for Event 10 (HoldTimer_Expires)
/// or Event 18 (TcpConnectionFails). An abandoned write leaves its bytes in `Framed`'s buffer,
/// so a NOTIFICATION sent after it still follows whole messages. A reset request interrupts
/// too: a write stuck on a path BFD declared down must not delay closing the session.
pub(super) async fn bounded<T, E>(
    io: impl Future<Output = Result<T, E>>,
    deadline: Instant,
    hold: Option<Instant>,
    stop: &mut mpsc::Receiver<Notification>,
    reset: &mut mpsc::Receiver<Notification>,
    watch_stop: bool,
) -> Result<T, Interrupted> {
    tokio::select! {
        r = io => r.map_err(|_| Interrupted::Failed),
        n = stop.recv(), if watch_stop => Err(Interrupted::Stop(n)),
        Some(n) = reset.recv(), if watch_stop => Err(Interrupted::Reset(n)),
        () = sleep_opt(hold), if hold.is_some() => Err(Interrupted::HoldExpired),
        () = tokio::time::sleep_until(deadline) => Err(Interrupted::Deadline),
    }
}

/// Maps what the framing produced to an FSM event (RFC 4271 §8.1.5).
pub(super) fn event_from_frame(frame: Frame) -> Event {
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
pub(super) fn log_notification(direction: &'static str, n: &Notification) {
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
pub(super) fn log_notification_unsent(n: &Notification, why: &'static str) {
    warn!(code = n.code.0, subcode = n.subcode, name = %n.name(), why, "notification not sent");
}
impl Driver {
    /// How long one write may take: the negotiated hold time (a peer that reads nothing for that
    /// long is as dead as one that sends nothing), else the OpenSent hold time (RFC 4271 §8.2.2).
    pub(super) fn write_deadline(&self) -> Instant {
        let limit = match self.negotiated() {
            Some(n) if n.hold_time > 0 => Duration::from_secs(u64::from(n.hold_time)),
            _ => fsm::OPEN_SENT_HOLD_TIME,
        };
        Instant::now() + limit
    }

    /// The FSM event for a write that did not finish.
    pub(super) fn interrupted(&mut self, i: Interrupted) -> Event {
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
                self.stop_event(n)
            }
            Interrupted::Reset(n) => Event::AutomaticStop(n),
        }
    }

    /// The FSM event of a stop request (`None`: the speaker dropped the handle, which counts
    /// as Peer De-configured): a restart stop while the speaker shuts down for a restart.
    pub(super) fn stop_event(&self, n: Option<Notification>) -> Event {
        let n = n.unwrap_or_else(|| {
            Notification::cease(crate::wire::error::cease_subcode::PEER_DECONFIGURED)
        });
        if self.shared.restarting.load(Ordering::Acquire) {
            Event::RestartStop(n)
        } else {
            Event::ManualStop(n)
        }
    }

    pub(super) fn socket_options(&self) -> SocketOptions {
        SocketOptions {
            local_address: self.cfg.local_address,
            ttl: net::session_ttl(
                self.ibgp(),
                self.cfg.ebgp_multihop,
                self.cfg.ebgp_system_ttl,
            ),
            gtsm_hops: self.cfg.gtsm_hops,
            md5_password: self.cfg.md5_password.clone(),
            bind_device: self.cfg.bind_device.clone(),
            interface: self.cfg.interface.clone(),
        }
    }

    pub(super) fn router_id(&self) -> Ipv4Addr {
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

    pub(super) fn families(&self) -> Vec<Family> {
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
    pub(super) fn local_open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families()
            .into_iter()
            .map(Capability::Multiprotocol)
            .collect();
        caps.push(Capability::RouteRefresh);
        if self.cfg.extended_next_hop {
            caps.push(crate::enh::capability());
        }
        if let Some(gr) = self.shared.graceful_restart {
            // RFC 4724 §3: R after our own restart; F per family, since the nodes keep
            // forwarding to the VIPs while this process restarts.
            let restarted = self.restarted;
            caps.push(Capability::GracefulRestart(GracefulRestart {
                // RFC 8538 §2: N, so a NOTIFICATION other than Hard Reset keeps our routes
                // at the peer (the restart stop's Cease, see fsm::restart_close).
                restart_flags: GracefulRestart::NOTIFICATION
                    | if restarted {
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
            self.local_as(),
            HoldTime::new(self.cfg.hold_time).unwrap_or(HoldTime::DEFAULT),
            self.router_id(),
            caps,
        )
    }

    pub(super) fn adopt(&mut self, conn: Conn) {
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

    pub(super) async fn send(&mut self, m: Message) -> Option<Event> {
        if let Message::Notification(n) = m {
            self.send_notification(n).await;
            return None;
        }
        let deadline = self.write_deadline();
        let kind = MessageType::of(&m);
        let is_update = kind == MessageType::Update;
        let conn = self.conn.as_mut()?;
        let result = bounded(
            conn.send(m),
            deadline,
            self.hold,
            &mut self.stop,
            &mut self.reset,
            !self.stopping,
        )
        .await;
        match result {
            Ok(()) => {
                self.sent += 1;
                self.counters.count_sent(kind, 1);
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
    pub(super) async fn send_notification(&mut self, n: Notification) {
        let Some(conn) = self.conn.as_mut() else {
            self.notifications_unsent += 1;
            log_notification_unsent(&n, "no connection");
            return;
        };
        let deadline = Instant::now() + NOTIFICATION_SEND_LIMIT;
        let m = Message::Notification(n.clone());
        match bounded(
            conn.send(m),
            deadline,
            None,
            &mut self.stop,
            &mut self.reset,
            false,
        )
        .await
        {
            Ok(()) => {
                self.sent += 1;
                self.counters.count_sent(MessageType::Notification, 1);
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
}
