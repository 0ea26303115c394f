//! The tokio shell around [`crate::session::step`]: UDP sockets per RFC 5881 (single hop)
//! and RFC 5883 (multihop), one task per session, one receive task per local address.
//!
//! ```text
//!                     Bfd (handle, cheap to clone)
//!                      | add_session(SessionConfig)
//!                      v
//!   receive task per (local address, port, device)       session task per peer
//!   +----------------------------------------+           +-------------------------------+
//!   | UDP :3784 (single hop) or :4784        |  mpsc(64) | Session (pure FSM) + timers   |
//!   | recvmsg -> TTL, ifindex                |---------->| tx timer, detection timer     |
//!   | packet::decode, Demux::lookup, TTL rule|  packets  | own UDP socket, source port   |
//!   | drops counted per DropReason           |           |   49152-65535, TTL 255        |
//!   +----------------------------------------+           +-------------------------------+
//!                                                  mpsc(8) ^     | watch<SessionStatus>
//!                                      set_profile, admin  |     v
//!                                                         BfdSession (handle)
//! ```
//!
//! The transmit timer lives in the session's own task, so nothing else (a long BGP table
//! write in the speaker, another session) delays it; the receive task only decodes and
//! forwards. Dropping a [`BfdSession`] sends one AdminDown packet (RFC 5880 §6.8.16, diag
//! 7) and ends the task. Receive sockets stay open while the [`Bfd`] lives (each session
//! task holds a clone), so re-adding a peer never races the old socket for the port.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use crate::demux::{Demux, DropReason, Entry, PeerKey};
use crate::packet::{self, ControlPacket, Diag, State};
use crate::profile::{BfdProfile, ProfileError};
use crate::session::{step, Action, Event, Session, SessionParams};
use crate::sys;

/// RFC 5881 §4: "BFD Control packets MUST be transmitted in UDP packets with destination
/// port 3784".
pub const SINGLE_HOP_PORT: u16 = 3784;
/// RFC 5883 §5: multihop Control packets go to port 4784.
pub const MULTIHOP_PORT: u16 = 4784;
/// RFC 5881 §4: "The source port MUST be in the range 49152 through 65535."
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// RFC 5881 §5 / RFC 5082: we send with the largest TTL / hop limit.
pub const TX_TTL: u32 = 255;

const SESSION_QUEUE: usize = 64;
const COMMAND_QUEUE: usize = 8;
const BIND_ATTEMPTS: u32 = 64;

/// One session to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The peer's address (the BGP peer's).
    pub peer: IpAddr,
    /// Our source address (the BGP session's), also the receive socket's address.
    pub local: IpAddr,
    /// Bind both sockets to this device (SO_BINDTODEVICE); for IPv6 link-local peers, the
    /// interface of the scope.
    pub device: Option<String>,
    /// RFC 5883 multihop (port 4784, received TTL >= `profile.minimum_ttl`) instead of
    /// RFC 5881 single hop (port 3784, received TTL 255).
    pub multihop: bool,
    /// Timers and modes.
    pub profile: BfdProfile,
}

/// What a session looks like now, published on its `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStatus {
    /// bfd.SessionState.
    pub state: State,
    /// bfd.LocalDiag: why the last change happened.
    pub local_diag: Diag,
    /// bfd.RemoteSessionState.
    pub remote_state: State,
    /// The Diag of the peer's last packet.
    pub remote_diag: Diag,
    /// bfd.LocalDiscr.
    pub local_discr: u32,
    /// bfd.RemoteDiscr.
    pub remote_discr: u32,
    /// The negotiated transmit interval (RFC 5880 §6.8.2), before jitter.
    pub tx_interval: Duration,
    /// The Detection Time (RFC 5880 §6.8.4), once the peer has been heard.
    pub detection_time: Option<Duration>,
    /// Transitions into Up so far.
    pub up_events: u64,
    /// Transitions out of Up so far.
    pub down_events: u64,
}

impl SessionStatus {
    /// True if the session is not Up for a reason that means the forwarding path failed:
    /// not when we or the peer took it administratively down (RFC 5882 §3.2: a session
    /// going Down because the remote system signalled AdminDown is an administrative
    /// action, not a path failure, and should not take the client protocol down; FRR's
    /// bgpd behaves so). The speaker closes BGP only on this.
    pub fn is_path_failure(&self) -> bool {
        self.state != State::UP
            && self.state != State::ADMIN_DOWN
            && self.remote_state != State::ADMIN_DOWN
    }
}

/// Per-session counters, as MetalLB exports them per peer (`metallb_bfd_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// `metallb_bfd_control_packet_input`: Control packets accepted for this session.
    pub control_packet_input: u64,
    /// `metallb_bfd_control_packet_output`: Control packets sent.
    pub control_packet_output: u64,
    /// `metallb_bfd_echo_packet_input`: always 0, Echo is not implemented.
    pub echo_packet_input: u64,
    /// `metallb_bfd_echo_packet_output`: always 0, Echo is not implemented.
    pub echo_packet_output: u64,
    /// `metallb_bfd_session_up_events`: transitions into Up.
    pub session_up_events: u64,
    /// `metallb_bfd_session_down_events`: transitions out of Up.
    pub session_down_events: u64,
    /// `metallb_bfd_session_up`: 1 while Up.
    pub session_up: u64,
}

#[derive(Debug, Default)]
struct AtomicCounters {
    input: AtomicU64,
    output: AtomicU64,
    up_events: AtomicU64,
    down_events: AtomicU64,
    up: AtomicU64,
}

/// A failure to start a session.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The profile is outside MetalLB's ranges.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A session with this peer (and device, and hop mode) exists.
    #[error("a BFD session with {peer} from {local} exists already")]
    Duplicate {
        /// The peer.
        peer: IpAddr,
        /// Our address.
        local: IpAddr,
    },
    /// Local and peer addresses are of different families.
    #[error("peer {peer} and local address {local} are of different address families")]
    FamilyMismatch {
        /// The peer.
        peer: IpAddr,
        /// Our address.
        local: IpAddr,
    },
    /// A socket call failed.
    #[error("{op} {addr}: {source}")]
    Io {
        /// The call ("bind", "setsockopt(IP_RECVTTL)", ...).
        op: &'static str,
        /// The address involved.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The device does not exist.
    #[error("device {device}: {source}")]
    Device {
        /// The device name.
        device: String,
        /// Why its index could not be read.
        source: io::Error,
    },
}

fn io_err(op: &'static str, addr: SocketAddr) -> impl FnOnce(io::Error) -> DriverError {
    move |source| DriverError::Io { op, addr, source }
}

type Table = Arc<Mutex<Demux<mpsc::Sender<ControlPacket>>>>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ListenerKey {
    local: IpAddr,
    port: u16,
    device: Option<String>,
}

#[derive(Debug)]
struct Listener {
    table: Table,
    cancel: CancellationToken,
}

#[derive(Debug, Default)]
struct Inner {
    listeners: Mutex<HashMap<ListenerKey, Listener>>,
    discriminators: Mutex<HashSet<u32>>,
    drops: Arc<DropCounters>,
}

impl Drop for Inner {
    /// The receive tasks end with the last `Bfd` handle (session tasks hold one each).
    fn drop(&mut self) {
        for l in lock(&self.listeners).values() {
            l.cancel.cancel();
        }
    }
}

/// Datagrams dropped by the receive tasks, per [`DropReason::metric_label`].
#[derive(Debug)]
struct DropCounters([AtomicU64; DropReason::LABELS.len()]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl DropCounters {
    fn count(&self, label: &str) {
        if let Some(i) = DropReason::LABELS.iter().position(|l| *l == label) {
            if let Some(c) = self.0.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data; keep going.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The BFD service: starts sessions and owns the receive sockets. Clone freely.
#[derive(Debug, Clone, Default)]
pub struct Bfd {
    inner: Arc<Inner>,
}

enum Command {
    SetProfile(BfdProfile),
    AdminDown,
    AdminUp,
}

/// A running session. Dropping it takes the session administratively down (one AdminDown
/// packet, RFC 5880 §6.8.16) and ends its task.
#[derive(Debug)]
pub struct BfdSession {
    status: watch::Receiver<SessionStatus>,
    commands: mpsc::Sender<Command>,
    counters: Arc<AtomicCounters>,
    cancel: CancellationToken,
    config: SessionConfig,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::SetProfile(p) => write!(f, "SetProfile({p:?})"),
            Command::AdminDown => f.write_str("AdminDown"),
            Command::AdminUp => f.write_str("AdminUp"),
        }
    }
}

impl Drop for BfdSession {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl BfdSession {
    /// The session's status; `changed()` wakes on every state or timer change.
    pub fn watch(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// The status now.
    pub fn status(&self) -> SessionStatus {
        *self.status.borrow()
    }

    /// The configuration the session was started with (the profile as last set).
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Changes the timers and modes live: while Up, RFC 5880 §6.5's Poll Sequence
    /// renegotiates without taking the session down. A profile outside MetalLB's ranges is
    /// refused.
    pub async fn set_profile(&mut self, profile: BfdProfile) -> Result<(), DriverError> {
        profile.validate()?;
        self.config.profile = profile;
        // The task ends only when the handle drops, so the send fails only during shutdown.
        let _ = self.commands.send(Command::SetProfile(profile)).await;
        Ok(())
    }

    /// Takes the session administratively down (RFC 5880 §6.8.16) or back up.
    pub async fn set_admin_down(&self, down: bool) {
        let c = if down {
            Command::AdminDown
        } else {
            Command::AdminUp
        };
        let _ = self.commands.send(c).await;
    }

    /// Resolves at the next transition out of Up after this call (Detection Time expired,
    /// the peer signalled Down or AdminDown), with the status then. The speaker closes the
    /// BGP session when [`SessionStatus::is_path_failure`] says so (not on the peer's
    /// AdminDown, RFC 5882 §3.2). Cancel-safe. Returns `None` if the session task ended.
    pub async fn down(&self) -> Option<SessionStatus> {
        let mut rx = self.status.clone();
        let seen = rx.borrow_and_update().down_events;
        rx.wait_for(|s| s.down_events > seen).await.ok().map(|s| *s)
    }

    /// Resolves once the session is Up (at once if it is). `None` if the task ended.
    pub async fn up(&self) -> Option<SessionStatus> {
        let mut rx = self.status.clone();
        rx.wait_for(|s| s.state == State::UP).await.ok().map(|s| *s)
    }

    /// Takes the session down like dropping the handle does (one AdminDown packet, RFC 5880
    /// §6.8.16), and returns once the session task has sent it and ended.
    pub async fn shutdown(self) {
        let mut rx = self.status.clone();
        self.cancel.cancel();
        // The task drops the watch sender as it ends.
        while rx.changed().await.is_ok() {}
    }

    /// The MetalLB-style counters of this session.
    pub fn counters(&self) -> Counters {
        self.counters_reader().read()
    }

    /// A handle that reads this session's counters without borrowing the session, for a
    /// metrics endpoint that renders while another task owns the session.
    pub fn counters_reader(&self) -> CountersReader {
        CountersReader(Arc::clone(&self.counters))
    }
}

/// Reads one session's [`Counters`]; cheap to clone. After the session ends it keeps
/// returning the last values.
#[derive(Debug, Clone)]
pub struct CountersReader(Arc<AtomicCounters>);

impl CountersReader {
    /// The counters now.
    pub fn read(&self) -> Counters {
        let c = &self.0;
        Counters {
            control_packet_input: c.input.load(Ordering::Relaxed),
            control_packet_output: c.output.load(Ordering::Relaxed),
            echo_packet_input: 0,
            echo_packet_output: 0,
            session_up_events: c.up_events.load(Ordering::Relaxed),
            session_down_events: c.down_events.load(Ordering::Relaxed),
            session_up: c.up.load(Ordering::Relaxed),
        }
    }
}

impl Bfd {
    /// A service with no sessions.
    pub fn new() -> Bfd {
        Bfd::default()
    }

    /// Datagrams dropped so far by the receive tasks, per reason label (every label of
    /// [`DropReason::LABELS`], zeros included).
    pub fn drops(&self) -> Vec<(&'static str, u64)> {
        DropReason::LABELS
            .iter()
            .zip(self.inner.drops.0.iter())
            .map(|(l, c)| (*l, c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Starts a session (and the receive task for its local address if needed). Must run
    /// inside a tokio runtime.
    pub async fn add_session(&self, config: SessionConfig) -> Result<BfdSession, DriverError> {
        config.profile.validate()?;
        if config.peer.is_ipv4() != config.local.is_ipv4() {
            return Err(DriverError::FamilyMismatch {
                peer: config.peer,
                local: config.local,
            });
        }
        let ifindex = match &config.device {
            Some(d) => Some(ifindex(d)?),
            None => None,
        };
        let port = if config.multihop {
            MULTIHOP_PORT
        } else {
            SINGLE_HOP_PORT
        };
        let peer_addr = bind_addr(config.peer, port, ifindex);
        let tx = bind_tx(&config, ifindex)?;
        let discr = self.allocate_discriminator();
        let (queue_tx, queue_rx) = mpsc::channel(SESSION_QUEUE);
        let min_ttl = min_ttl(&config);
        let key = PeerKey {
            peer: config.peer,
            ifindex,
        };
        let table = match self.register(&config, port, discr, queue_tx, key, min_ttl) {
            Ok(t) => t,
            Err(e) => {
                lock(&self.inner.discriminators).remove(&discr);
                return Err(e);
            }
        };
        let params = SessionParams::from(&config.profile);
        let session = Session::new(discr, params, random_u64());
        let (status_tx, status_rx) = watch::channel(status_of(&session, 0, 0));
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let counters = Arc::new(AtomicCounters::default());
        let cancel = CancellationToken::new();
        let task = SessionTask {
            session,
            socket: tx,
            peer: peer_addr,
            packets: queue_rx,
            commands: cmd_rx,
            status: status_tx,
            counters: counters.clone(),
            cancel: cancel.clone(),
            table,
            bfd: self.clone(),
            listener: ListenerKey {
                local: config.local,
                port,
                device: config.device.clone(),
            },
            tx_at: None,
            detect_at: None,
        };
        let span = tracing::info_span!("bfd", peer = %config.peer, local = %config.local, discr);
        if config.profile.echo_mode {
            span.in_scope(|| warn!("echoMode is not implemented; the session runs without Echo"));
        }
        tokio::spawn(task.run().instrument(span));
        Ok(BfdSession {
            status: status_rx,
            commands: cmd_tx,
            counters,
            cancel,
            config,
        })
    }

    fn allocate_discriminator(&self) -> u32 {
        let mut used = lock(&self.inner.discriminators);
        // RFC 5880 §6.8.1: bfd.LocalDiscr "MUST be unique across all BFD sessions on this
        // system, and nonzero. It SHOULD be set to a random (but still unique) value".
        loop {
            let d = random_u64() as u32;
            if d != 0 && used.insert(d) {
                return d;
            }
        }
    }

    fn register(
        &self,
        config: &SessionConfig,
        port: u16,
        discr: u32,
        queue: mpsc::Sender<ControlPacket>,
        key: PeerKey,
        min_ttl: u8,
    ) -> Result<Table, DriverError> {
        let lkey = ListenerKey {
            local: config.local,
            port,
            device: config.device.clone(),
        };
        let mut listeners = lock(&self.inner.listeners);
        let table = match listeners.get(&lkey) {
            Some(l) => l.table.clone(),
            None => {
                let socket = bind_rx(config, port, key.ifindex)?;
                let table: Table = Arc::default();
                let cancel = CancellationToken::new();
                let span = tracing::info_span!("bfd_rx", local = %config.local, port);
                tokio::spawn(
                    receive_loop(
                        socket,
                        table.clone(),
                        self.inner.drops.clone(),
                        cancel.clone(),
                    )
                    .instrument(span),
                );
                listeners.insert(
                    lkey,
                    Listener {
                        table: table.clone(),
                        cancel,
                    },
                );
                table
            }
        };
        let entry = Entry {
            target: queue,
            key,
            min_ttl,
        };
        if !lock(&table).insert(discr, entry) {
            return Err(DriverError::Duplicate {
                peer: config.peer,
                local: config.local,
            });
        }
        Ok(table)
    }

    /// Removes a session from its receive socket's table. The socket stays open while the
    /// `Bfd` lives: closing it with its last session would race a session added right after
    /// (a config change removing and re-adding a peer) for the port.
    fn unregister(&self, listener: &ListenerKey, discr: u32) {
        if let Some(l) = lock(&self.inner.listeners).get(listener) {
            lock(&l.table).remove(discr);
        }
        lock(&self.inner.discriminators).remove(&discr);
    }
}

/// Random bits from the OS (discriminators, source ports, jitter seeds: unpredictability, not
/// secrecy). If the OS has no entropy to give, std's per-process random hash keys stand in.
fn random_u64() -> u64 {
    use rand::TryRng;
    rand::rngs::SysRng.try_next_u64().unwrap_or_else(|_| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    })
}

fn min_ttl(config: &SessionConfig) -> u8 {
    if config.multihop {
        config.profile.minimum_ttl
    } else {
        // RFC 5881 §5: "MUST be discarded if the received TTL/Hop Limit is not equal to 255".
        255
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80)
}

/// The interface index of `device` (from sysfs, so no unsafe `if_nametoindex`).
fn ifindex(device: &str) -> Result<u32, DriverError> {
    let err = |source| DriverError::Device {
        device: device.to_owned(),
        source,
    };
    if device.is_empty() || device.contains('/') || device.starts_with('.') {
        return Err(err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad device name",
        )));
    }
    let s = std::fs::read_to_string(format!("/sys/class/net/{device}/ifindex")).map_err(err)?;
    s.trim()
        .parse()
        .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// `ip:port`, with the interface as scope for an IPv6 link-local address (Linux refuses to
/// bind one without an interface).
fn bind_addr(ip: IpAddr, port: u16, ifindex: Option<u32>) -> SocketAddr {
    match ip {
        IpAddr::V6(a) if is_link_local(a) => {
            SocketAddr::V6(SocketAddrV6::new(a, port, 0, ifindex.unwrap_or(0)))
        }
        a => SocketAddr::new(a, port),
    }
}

fn new_socket(addr: SocketAddr, device: Option<&str>) -> Result<socket2::Socket, DriverError> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
        .map_err(io_err("socket", addr))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)
            .map_err(io_err("setsockopt(IPV6_V6ONLY)", addr))?;
    }
    if let Some(d) = device {
        s.bind_device(Some(d.as_bytes()))
            .map_err(io_err("setsockopt(SO_BINDTODEVICE)", addr))?;
    }
    s.set_nonblocking(true)
        .map_err(io_err("set_nonblocking", addr))?;
    Ok(s)
}

/// The receive socket: local address and port 3784/4784, TTL and packet info reported.
fn bind_rx(
    config: &SessionConfig,
    port: u16,
    ifindex: Option<u32>,
) -> Result<UdpSocket, DriverError> {
    let addr = bind_addr(config.local, port, ifindex);
    let s = new_socket(addr, config.device.as_deref())?;
    sys::enable_recv_info(s.as_fd(), addr.is_ipv6())
        .map_err(io_err("setsockopt(IP_RECVTTL/IPV6_RECVHOPLIMIT)", addr))?;
    s.bind(&addr.into()).map_err(io_err("bind", addr))?;
    UdpSocket::from_std(s.into()).map_err(io_err("register", addr))
}

/// The session's own transmit socket: local address, a source port in 49152-65535 (RFC 5881
/// §4: the same for the whole session, "SHOULD be unique among all BFD sessions"), TTL 255.
fn bind_tx(config: &SessionConfig, ifindex: Option<u32>) -> Result<UdpSocket, DriverError> {
    let span = u32::from(SOURCE_PORTS.end() - SOURCE_PORTS.start()) + 1;
    let first = (random_u64() as u32) % span;
    let mut last_err = None;
    for i in 0..BIND_ATTEMPTS {
        let port = *SOURCE_PORTS.start() + u16::try_from((first + i * 7919) % span).unwrap_or(0);
        let addr = bind_addr(config.local, port, ifindex);
        let s = new_socket(addr, config.device.as_deref())?;
        if addr.is_ipv6() {
            s.set_unicast_hops_v6(TX_TTL)
                .map_err(io_err("setsockopt(IPV6_UNICAST_HOPS)", addr))?;
        } else {
            s.set_ttl_v4(TX_TTL)
                .map_err(io_err("setsockopt(IP_TTL)", addr))?;
        }
        match s.bind(&addr.into()) {
            Ok(()) => return UdpSocket::from_std(s.into()).map_err(io_err("register", addr)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some((addr, e)),
            Err(e) => return Err(io_err("bind", addr)(e)),
        }
    }
    let (addr, e) = last_err.unwrap_or((
        SocketAddr::new(config.local, 0),
        io::Error::from(io::ErrorKind::AddrInUse),
    ));
    Err(io_err("bind (no free source port)", addr)(e))
}

async fn receive_loop(
    socket: UdpSocket,
    table: Table,
    drops: Arc<DropCounters>,
    cancel: CancellationToken,
) {
    // Larger than any Control packet (24 octets, 24 + auth section): anything longer is
    // still decoded by its Length field.
    let mut buf = [0u8; 512];
    loop {
        let got = tokio::select! {
            () = cancel.cancelled() => return,
            r = socket.async_io(Interest::READABLE, || sys::recv(socket.as_fd(), &mut buf)) => r,
        };
        let d = match got {
            Ok(d) => d,
            Err(e) => {
                drops.count("socket_error");
                warn!(error = %e, "receive failed");
                // A persistent socket error must not spin: yield to the timer wheel.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let payload = buf.get(..d.len).unwrap_or_default();
        let src = unmap(d.src.ip());
        let result = packet::decode(payload)
            .map_err(DropReason::from)
            .and_then(|p| {
                let t = lock(&table);
                let e = t.lookup(&p, src, d.ifindex, d.ttl)?;
                e.target.try_send(p).map_err(|_| DropReason::QueueFull)
            });
        if let Err(reason) = result {
            drops.count(reason.metric_label());
            debug!(%src, reason = %reason, label = reason.metric_label(), "dropped datagram");
        }
    }
}

fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

fn status_of(s: &Session, up_events: u64, down_events: u64) -> SessionStatus {
    SessionStatus {
        state: s.state,
        local_diag: s.local_diag,
        remote_state: s.remote_state,
        remote_diag: s.remote_diag,
        local_discr: s.local_discr,
        remote_discr: s.remote_discr,
        tx_interval: s.tx_interval(),
        detection_time: s.detection_time(),
        up_events,
        down_events,
    }
}

struct SessionTask {
    session: Session,
    socket: UdpSocket,
    peer: SocketAddr,
    packets: mpsc::Receiver<ControlPacket>,
    commands: mpsc::Receiver<Command>,
    status: watch::Sender<SessionStatus>,
    counters: Arc<AtomicCounters>,
    cancel: CancellationToken,
    table: Table,
    bfd: Bfd,
    listener: ListenerKey,
    tx_at: Option<Instant>,
    detect_at: Option<Instant>,
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

impl SessionTask {
    async fn run(mut self) {
        info!(peer = %self.peer, "session started");
        self.apply(Event::Start).await;
        loop {
            let event = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                () = sleep_until(self.tx_at) => {
                    self.tx_at = None;
                    Event::TxTimerExpired
                }
                () = sleep_until(self.detect_at) => {
                    self.detect_at = None;
                    Event::DetectionTimerExpired
                }
                Some(p) = self.packets.recv() => {
                    self.counters.input.fetch_add(1, Ordering::Relaxed);
                    Event::Received(p)
                }
                Some(c) = self.commands.recv() => match c {
                    Command::SetProfile(p) => {
                        let min = if self.listener.port == MULTIHOP_PORT { p.minimum_ttl } else { 255 };
                        lock(&self.table).set_min_ttl(self.session.local_discr, min);
                        if p.echo_mode {
                            warn!("echoMode is not implemented; the session runs without Echo");
                        }
                        Event::SetParams(SessionParams::from(&p))
                    }
                    Command::AdminDown => Event::AdminDown(Diag::ADMINISTRATIVELY_DOWN),
                    Command::AdminUp => Event::AdminUp,
                },
            };
            self.apply(event).await;
        }
        // RFC 5880 §6.8.16: tell the peer we are going away rather than letting its
        // Detection Time run out (which would read as a path failure).
        self.apply(Event::AdminDown(Diag::ADMINISTRATIVELY_DOWN))
            .await;
        self.bfd
            .unregister(&self.listener, self.session.local_discr);
        info!("session stopped");
    }

    async fn apply(&mut self, event: Event) {
        // The session is small (a few dozen words); cloning keeps `step` by value.
        let (next, actions) = step(self.session.clone(), event);
        self.session = next;
        let now = Instant::now();
        for a in actions {
            match a {
                Action::Send(p) => {
                    tracing::trace!(state = %p.state, poll = p.poll, final_ = p.final_, "send");
                    self.send(&p).await
                }
                Action::ArmTx(d) => {
                    tracing::trace!(?d, "arm tx");
                    self.tx_at = Some(now + d)
                }
                Action::ArmDetection(d) => {
                    tracing::trace!(?d, "arm detection");
                    self.detect_at = Some(now + d)
                }
                Action::CancelDetection => self.detect_at = None,
                Action::StateChanged { from, to, diag } => {
                    info!(from = %from, to = %to, diag = %diag, remote_diag = %self.session.remote_diag, "session state changed");
                    if to == State::UP {
                        self.counters.up_events.fetch_add(1, Ordering::Relaxed);
                        self.counters.up.store(1, Ordering::Relaxed);
                    } else if from == State::UP {
                        self.counters.down_events.fetch_add(1, Ordering::Relaxed);
                        self.counters.up.store(0, Ordering::Relaxed);
                    }
                }
            }
        }
        let s = status_of(
            &self.session,
            self.counters.up_events.load(Ordering::Relaxed),
            self.counters.down_events.load(Ordering::Relaxed),
        );
        self.status.send_if_modified(|old| {
            let changed = *old != s;
            *old = s;
            changed
        });
    }

    async fn send(&self, p: &ControlPacket) {
        match packet::encode(p) {
            Ok(bytes) => match self.socket.send_to(&bytes, self.peer).await {
                Ok(_) => {
                    self.counters.output.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => debug!(error = %e, "send failed"),
            },
            Err(e) => {
                warn!(bug = true, error = %e, "the state machine built an unencodable packet")
            }
        }
    }
}
