//! A minimal HTTP/1.1 server for `/metrics`, `/healthz` and `/readyz`.
//!
//! Three fixed GET routes do not justify a web framework: a request is read up to the end of its
//! head (at most 8 KiB, within 5 s), answered, and the connection closed. The speaker has the
//! same server (`ferrolb_speaker::daemon::http`); it cannot be shared from here because the
//! speaker depends on this crate, not the other way round.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

const MAX_HEAD: usize = 8 * 1024;
const READ_LIMIT: Duration = Duration::from_secs(5);

/// Binds `addr` and serves until `cancel`. Returns the bound address (port 0 resolved) and the
/// serving task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
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
                    tokio::spawn(answer(stream, Arc::clone(&metrics)));
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
pub fn route(request_line: &str, metrics: &Metrics) -> (u16, &'static str, String) {
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" {
        return (405, "text/plain", "method not allowed\n".into());
    }
    match path {
        "/metrics" => (200, "text/plain; version=0.0.4", metrics.render()),
        "/healthz" => (200, "text/plain", "ok\n".into()),
        "/readyz" if metrics.ready() => (200, "text/plain", "ready\n".into()),
        "/readyz" => (503, "text/plain", "caches not synced yet\n".into()),
        _ => (404, "text/plain", "not found\n".into()),
    }
}

async fn answer(mut stream: TcpStream, metrics: Arc<Metrics>) {
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
    let (code, content_type, body) = route(line, &metrics);
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

    #[test]
    fn routes() {
        let m = Metrics::default();
        assert_eq!(route("GET /healthz HTTP/1.1", &m).0, 200);
        assert_eq!(route("GET /readyz HTTP/1.1", &m).0, 503);
        m.set_ready();
        assert_eq!(route("GET /readyz HTTP/1.1", &m).0, 200);
        assert_eq!(route("GET /nope HTTP/1.1", &m).0, 404);
        assert_eq!(route("POST /metrics HTTP/1.1", &m).0, 405);
        assert_eq!(route("", &m).0, 405);
        assert!(route("GET /metrics HTTP/1.1", &m)
            .2
            .contains("ferrolb_leader 0"));
    }

    #[tokio::test]
    async fn serves_over_tcp_until_cancelled() {
        let cancel = CancellationToken::new();
        let m = Arc::new(Metrics::default());
        m.set_leader(true);
        let (addr, task) = serve("127.0.0.1:0".parse().expect("addr"), m, cancel.clone())
            .await
            .expect("bind");
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).await.expect("read");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains("ferrolb_leader 1"), "{text}");
        cancel.cancel();
        task.await.expect("join");
    }
}
