//! The daemons' operations endpoints: a minimal HTTP/1.1 server for `/metrics`, `/healthz` and
//! `/readyz`, shared by the controller and the speaker (each supplies its [`Endpoints`]).
//!
//! Three fixed GET routes do not justify a web framework: a request is read up to the end of its
//! head (at most 8 KiB), answered, and the connection is closed (`Connection: close`, so no
//! connection ever idles in keep-alive).
//!
//! *Hardening*: the port listens on every address by default (Prometheus scrapes it from other
//! nodes), so anyone who can reach it must not be able to take the daemon down with it.
//! - At most [`OpsLimits::max_connections`] connections are open at once, and never more than a
//!   quarter of the open-files limit ([`effective_max_connections`]): a flood cannot take the
//!   file descriptors the daemon needs for its config source, watches and BGP sessions.
//! - At the cap, the oldest connection still waiting for its request head is closed to make
//!   room (idle connections are what a flood holds open); when every connection is busy
//!   answering, the new one is closed unanswered.
//! - The request head must arrive within [`OpsLimits::header_timeout`] and the answer be taken
//!   within [`OpsLimits::write_timeout`].
//! - Per-connection memory is a small read buffer and the task; when the last connection of a
//!   burst closes, freed heap is handed back to the OS ([`crate::process::release_freed_memory`]).
//!
//! The server adds its own counters to `/metrics`: `ferrolb_ops_http_connections` (open now)
//! and `ferrolb_ops_http_connections_closed_total{reason}` (`over_cap`, `evicted`, `timeout`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

pub use ferrolb_api::ops_http::escape_label_value;

/// Longest request head read.
pub const MAX_HEAD: usize = 8 * 1024;
/// Default of [`OpsLimits::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default of [`OpsLimits::header_timeout`], in milliseconds.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 5_000;
/// Default of [`OpsLimits::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_millis(DEFAULT_HEADER_TIMEOUT_MS);
/// Default of [`OpsLimits::write_timeout`].
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable overriding [`OpsLimits::max_connections`].
pub const ENV_MAX_CONNECTIONS: &str = "FERROLB_OPS_MAX_CONNECTIONS";
/// Environment variable overriding [`OpsLimits::header_timeout`], in milliseconds.
pub const ENV_HEADER_TIMEOUT_MS: &str = "FERROLB_OPS_HEADER_TIMEOUT_MS";
/// Connections served between two hand-backs of freed heap (a burst worth trimming after).
const TRIM_AFTER: u64 = 64;
/// How long the accept loop waits for an evicted connection to let go of its slot.
const EVICT_WAIT: Duration = Duration::from_millis(200);

/// What a daemon answers on its operations port.
pub trait Endpoints: Send + Sync + 'static {
    /// The Prometheus text exposition of every metric.
    fn metrics(&self) -> String;
    /// `Ok` when ready; otherwise why not (answered with 503 and the reason as the body).
    fn readiness(&self) -> Result<(), String>;
}

/// The server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpsLimits {
    /// Most connections open at once (also bounded by [`effective_max_connections`]).
    pub max_connections: usize,
    /// Time for a client to send its whole request head.
    pub header_timeout: Duration,
    /// Time for a client to take the whole answer.
    pub write_timeout: Duration,
}

impl Default for OpsLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }
}

impl OpsLimits {
    /// The defaults, overridden by [`ENV_MAX_CONNECTIONS`] and [`ENV_HEADER_TIMEOUT_MS`] when
    /// they hold positive numbers (others are ignored with a warning).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`OpsLimits::from_env`] with another variable source. Pure.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let positive = |name: &str| -> Option<u64> {
            let raw = lookup(name)?;
            match raw.trim().parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!(variable = name, value = %raw, "not a positive number; ignored");
                    None
                }
            }
        };
        let mut limits = Self::default();
        if let Some(n) = positive(ENV_MAX_CONNECTIONS) {
            limits.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = positive(ENV_HEADER_TIMEOUT_MS) {
            limits.header_timeout = Duration::from_millis(ms);
        }
        limits
    }
}

/// The connection cap in force: `configured`, but at most a quarter of the open-files limit
/// `nofile_soft` (when known), and at least 1. The other three quarters stay for the daemon.
pub fn effective_max_connections(configured: usize, nofile_soft: Option<u64>) -> usize {
    let by_fds = nofile_soft
        .map(|n| usize::try_from(n / 4).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    configured.min(by_fds).max(1)
}

/// The server's counters.
#[derive(Debug, Default)]
struct Stats {
    open: AtomicUsize,
    over_cap: AtomicU64,
    evicted: AtomicU64,
    timeout: AtomicU64,
    served_since_trim: AtomicU64,
}

impl Stats {
    fn render(&self) -> String {
        format!(
            "# HELP ferrolb_ops_http_connections Open connections on the operations port.\n\
             # TYPE ferrolb_ops_http_connections gauge\n\
             ferrolb_ops_http_connections {}\n\
             # HELP ferrolb_ops_http_connections_closed_total Connections on the operations port closed unanswered: over the cap, evicted while idle to make room, or timed out.\n\
             # TYPE ferrolb_ops_http_connections_closed_total counter\n\
             ferrolb_ops_http_connections_closed_total{{reason=\"over_cap\"}} {}\n\
             ferrolb_ops_http_connections_closed_total{{reason=\"evicted\"}} {}\n\
             ferrolb_ops_http_connections_closed_total{{reason=\"timeout\"}} {}\n",
            self.open.load(Ordering::Relaxed),
            self.over_cap.load(Ordering::Relaxed),
            self.evicted.load(Ordering::Relaxed),
            self.timeout.load(Ordering::Relaxed),
        )
    }
}

/// What the accept loop and the connection tasks share.
struct Shared<E> {
    endpoints: Arc<E>,
    limits: OpsLimits,
    stats: Stats,
    /// Connections still waiting for their request head, oldest first: the ones to evict.
    idle: Mutex<BTreeMap<u64, CancellationToken>>,
}

impl<E> Shared<E> {
    fn idle(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, CancellationToken>> {
        // The map holds no invariant a panicking holder could break.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One admitted connection's slot: gives the slot back (and trims after a burst) when dropped.
struct Slot<E> {
    shared: Arc<Shared<E>>,
    seq: u64,
    _permit: OwnedSemaphorePermit,
}

impl<E> Drop for Slot<E> {
    fn drop(&mut self) {
        self.shared.idle().remove(&self.seq);
        let stats = &self.shared.stats;
        let left = stats.open.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        if left == 0 && stats.served_since_trim.load(Ordering::Relaxed) >= TRIM_AFTER {
            stats.served_since_trim.store(0, Ordering::Relaxed);
            crate::process::release_freed_memory();
        }
    }
}

/// [`serve_with`] with [`OpsLimits::default`].
pub async fn serve<E: Endpoints>(
    addr: SocketAddr,
    endpoints: Arc<E>,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    serve_with(addr, endpoints, OpsLimits::default(), cancel).await
}

/// Binds `addr` and serves until `cancel`, within `limits`. Returns the bound address (port 0
/// resolved) and the serving task.
pub async fn serve_with<E: Endpoints>(
    addr: SocketAddr,
    endpoints: Arc<E>,
    limits: OpsLimits,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let nofile = crate::process::nofile_limit().ok().map(|l| l.soft);
    let cap = effective_max_connections(limits.max_connections, nofile);
    tracing::debug!(max_connections = cap, header_timeout = ?limits.header_timeout, "ops HTTP limits");
    let shared = Arc::new(Shared {
        endpoints,
        limits,
        stats: Stats::default(),
        idle: Mutex::new(BTreeMap::new()),
    });
    let slots = Arc::new(Semaphore::new(cap));
    let task = tokio::spawn(async move {
        let mut failures: u32 = 0;
        let mut seq: u64 = 0;
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = cancel.cancelled() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => {
                    failures = 0;
                    stream
                }
                Err(error) => {
                    // EMFILE and friends: back off, bounded, instead of spinning.
                    failures = failures.saturating_add(1).min(8);
                    tracing::warn!(%error, "ops HTTP listener accept failed");
                    tokio::time::sleep(Duration::from_millis(10u64 << failures)).await;
                    continue;
                }
            };
            let Some(permit) = admit(&shared, &slots).await else {
                shared.stats.over_cap.fetch_add(1, Ordering::Relaxed);
                drop(stream);
                continue;
            };
            seq += 1;
            let token = CancellationToken::new();
            shared.idle().insert(seq, token.clone());
            shared.stats.open.fetch_add(1, Ordering::AcqRel);
            shared
                .stats
                .served_since_trim
                .fetch_add(1, Ordering::Relaxed);
            let slot = Slot {
                shared: Arc::clone(&shared),
                seq,
                _permit: permit,
            };
            tokio::spawn(answer(stream, slot, token));
        }
    });
    Ok((local, task))
}

/// A slot for a new connection: a free one, or the oldest idle connection's (evicted); `None`
/// when every slot is busy answering.
async fn admit<E>(shared: &Shared<E>, slots: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
        return Some(permit);
    }
    let victim = shared.idle().pop_first();
    let (_, token) = victim?;
    token.cancel();
    shared.stats.evicted.fetch_add(1, Ordering::Relaxed);
    // The evicted task drops its slot as soon as it runs; bounded, in case it is stuck.
    tokio::time::timeout(EVICT_WAIT, Arc::clone(slots).acquire_owned())
        .await
        .ok()?
        .ok()
}

/// The response to a request line: status code, content type, body.
pub fn route<E: Endpoints + ?Sized>(
    request_line: &str,
    endpoints: &E,
) -> (u16, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return (405, "text/plain", "method not allowed\n".into());
    }
    match path {
        "/metrics" => (200, "text/plain; version=0.0.4", endpoints.metrics()),
        "/healthz" => (200, "text/plain", "ok\n".into()),
        "/readyz" => match endpoints.readiness() {
            Ok(()) => (200, "text/plain", "ready\n".into()),
            Err(why) => (503, "text/plain", format!("{why}\n")),
        },
        _ => (404, "text/plain", "not found\n".into()),
    }
}

/// Reads until the end of the head (or [`MAX_HEAD`], or EOF). Small initial buffer: most
/// request heads are a few hundred bytes, and a flood's connections send nothing.
async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while buf.len() < MAX_HEAD && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    buf
}

async fn answer<E: Endpoints>(mut stream: TcpStream, slot: Slot<E>, evict: CancellationToken) {
    let shared = Arc::clone(&slot.shared);
    let head = tokio::select! {
        () = evict.cancelled() => return,
        head = tokio::time::timeout(shared.limits.header_timeout, read_head(&mut stream)) => head,
    };
    let Ok(head) = head else {
        shared.stats.timeout.fetch_add(1, Ordering::Relaxed);
        return;
    };
    // Busy from here: no longer evictable.
    shared.idle().remove(&slot.seq);
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().next().unwrap_or("");
    let (code, content_type, mut body) = route(line, shared.endpoints.as_ref());
    if code == 200 && line.split_whitespace().nth(1) == Some("/metrics") {
        body.push_str(&shared.stats.render());
    }
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    if tokio::time::timeout(shared.limits.write_timeout, write)
        .await
        .is_err()
    {
        shared.stats.timeout.fetch_add(1, Ordering::Relaxed);
    }
    drop(slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(Mutex<Result<(), String>>);

    impl Endpoints for Fake {
        fn metrics(&self) -> String {
            "fake_metric 1\n".into()
        }
        fn readiness(&self) -> Result<(), String> {
            self.0
                .lock()
                .map(|r| r.clone())
                .unwrap_or(Err("poisoned".into()))
        }
    }

    #[test]
    fn routes() {
        let f = Fake(Mutex::new(Err("not yet".into())));
        assert_eq!(route("GET /healthz HTTP/1.1", &f).0, 200);
        assert_eq!(
            route("GET /readyz HTTP/1.1", &f),
            (503, "text/plain", "not yet\n".into())
        );
        *f.0.lock().expect("lock") = Ok(());
        assert_eq!(route("GET /readyz HTTP/1.1", &f).0, 200);
        assert_eq!(route("GET /nope HTTP/1.1", &f).0, 404);
        assert_eq!(route("POST /metrics HTTP/1.1", &f).0, 405);
        assert_eq!(route("", &f).0, 405);
        assert_eq!(route("GET /metrics HTTP/1.1", &f).2, "fake_metric 1\n");
    }

    #[test]
    fn the_cap_leaves_three_quarters_of_the_descriptors_to_the_daemon() {
        assert_eq!(effective_max_connections(256, Some(1024)), 256);
        assert_eq!(effective_max_connections(256, Some(512)), 128);
        assert_eq!(effective_max_connections(256, Some(1_048_576)), 256);
        assert_eq!(effective_max_connections(10_000, None), 10_000);
        assert_eq!(effective_max_connections(0, Some(2)), 1);
    }

    #[test]
    fn limits_come_from_the_environment_when_positive() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(OpsLimits::from_lookup(env(&[])), OpsLimits::default());
        let l = OpsLimits::from_lookup(env(&[
            (ENV_MAX_CONNECTIONS, "32"),
            (ENV_HEADER_TIMEOUT_MS, "1500"),
        ]));
        assert_eq!(l.max_connections, 32);
        assert_eq!(l.header_timeout, Duration::from_millis(1500));
        let bad = OpsLimits::from_lookup(env(&[
            (ENV_MAX_CONNECTIONS, "0"),
            (ENV_HEADER_TIMEOUT_MS, "x"),
        ]));
        assert_eq!(bad, OpsLimits::default());
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).await.expect("read");
        text
    }

    #[tokio::test]
    async fn serves_over_tcp_until_cancelled() {
        let cancel = CancellationToken::new();
        let f = Arc::new(Fake(Mutex::new(Ok(()))));
        let (addr, task) = serve("127.0.0.1:0".parse().expect("addr"), f, cancel.clone())
            .await
            .expect("bind");
        let text = get(addr, "/metrics").await;
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains("fake_metric 1\n"), "{text}");
        assert!(text.contains("ferrolb_ops_http_connections 1\n"), "{text}");
        cancel.cancel();
        task.await.expect("join");
    }

    /// Reads until the peer closes; `true` when it did (EOF or reset) within `limit`.
    async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(limit, s.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let cancel = CancellationToken::new();
        let f = Arc::new(Fake(Mutex::new(Ok(()))));
        let limits = OpsLimits {
            max_connections: 4,
            header_timeout: Duration::from_secs(3600),
            write_timeout: Duration::from_secs(5),
        };
        let (addr, task) = serve_with(
            "127.0.0.1:0".parse().expect("addr"),
            f,
            limits,
            cancel.clone(),
        )
        .await
        .expect("bind");
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(TcpStream::connect(addr).await.expect("connect"));
        }
        // A fifth connection that asks: answered, at the price of the oldest idle one.
        let text = get(addr, "/metrics").await;
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(
            text.contains("ferrolb_ops_http_connections_closed_total{reason=\"evicted\"} 1\n"),
            "{text}"
        );
        assert!(
            closed_within(&mut idle[0], Duration::from_secs(10)).await,
            "the oldest idle connection was closed"
        );
        cancel.cancel();
        task.await.expect("join");
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_header_timeout() {
        let cancel = CancellationToken::new();
        let f = Arc::new(Fake(Mutex::new(Ok(()))));
        let limits = OpsLimits {
            header_timeout: Duration::from_millis(50),
            ..OpsLimits::default()
        };
        let (addr, task) = serve_with(
            "127.0.0.1:0".parse().expect("addr"),
            f,
            limits,
            cancel.clone(),
        )
        .await
        .expect("bind");
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        assert!(closed_within(&mut silent, Duration::from_secs(30)).await);
        let text = get(addr, "/metrics").await;
        assert!(
            text.contains("ferrolb_ops_http_connections_closed_total{reason=\"timeout\"} 1\n"),
            "{text}"
        );
        cancel.cancel();
        task.await.expect("join");
    }
}
