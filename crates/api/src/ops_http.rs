//! The daemons' operations endpoints: a minimal HTTP/1.1 server for `/metrics`, `/healthz` and
//! `/readyz`, shared by the controller and the speaker (each supplies its [`Endpoints`]).
//!
//! Three fixed GET routes do not justify a web framework: a request is read up to the end of its
//! head (at most 8 KiB, within 5 s), answered, and the connection is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const MAX_HEAD: usize = 8 * 1024;
const READ_LIMIT: Duration = Duration::from_secs(5);

/// What a daemon answers on its operations port.
pub trait Endpoints: Send + Sync + 'static {
    /// The Prometheus text exposition of every metric.
    fn metrics(&self) -> String;
    /// `Ok` when ready; otherwise why not (answered with 503 and the reason as the body).
    fn readiness(&self) -> Result<(), String>;
}

/// Escapes a label value for the Prometheus text exposition format (backslash, double quote,
/// newline), so a pool or Service name can never break a metrics line.
pub fn escape_label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds `addr` and serves until `cancel`. Returns the bound address (port 0 resolved) and the
/// serving task.
pub async fn serve<E: Endpoints>(
    addr: SocketAddr,
    endpoints: Arc<E>,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut failures: u32 = 0;
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = cancel.cancelled() => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    failures = 0;
                    tokio::spawn(answer(stream, Arc::clone(&endpoints)));
                }
                Err(error) => {
                    // EMFILE and friends: back off, bounded, instead of spinning.
                    failures = failures.saturating_add(1).min(8);
                    tracing::warn!(%error, "metrics listener accept failed");
                    tokio::time::sleep(Duration::from_millis(10u64 << failures)).await;
                }
            }
        }
    });
    Ok((local, task))
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

async fn answer<E: Endpoints>(mut stream: TcpStream, endpoints: Arc<E>) {
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::time::timeout(READ_LIMIT, async {
        let mut chunk = [0u8; 1024];
        while buf.len() < MAX_HEAD && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let head = String::from_utf8_lossy(&buf);
    let line = head.lines().next().unwrap_or("");
    let (code, content_type, body) = route(line, endpoints.as_ref());
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
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

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
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_label_value("plain"), "plain");
    }

    #[tokio::test]
    async fn serves_over_tcp_until_cancelled() {
        let cancel = CancellationToken::new();
        let f = Arc::new(Fake(Mutex::new(Ok(()))));
        let (addr, task) = serve("127.0.0.1:0".parse().expect("addr"), f, cancel.clone())
            .await
            .expect("bind");
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).await.expect("read");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.ends_with("fake_metric 1\n"), "{text}");
        cancel.cancel();
        task.await.expect("join");
    }
}
