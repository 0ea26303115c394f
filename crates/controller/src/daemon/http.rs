//! The controller's `/metrics`, `/healthz` and `/readyz`, served by [`ferrolb_runtime::ops_http`].

use std::net::SocketAddr;
use std::sync::Arc;

use ferrolb_runtime::ops_http::{self, Endpoints, OpsLimits};
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;

/// Binds `addr` and serves until `cancel`, within `limits`. Returns the bound address (port 0
/// resolved) and the serving task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    limits: OpsLimits,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    ops_http::serve_with(addr, metrics, limits, cancel).await
}

impl Endpoints for Metrics {
    fn metrics(&self) -> String {
        self.render()
    }

    /// Ready once the caches have synced, as leader or standby.
    fn readiness(&self) -> Result<(), String> {
        if self.ready() {
            Ok(())
        } else {
            Err("caches not synced yet".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_runtime::ops_http::route;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    #[test]
    fn routes() {
        let m = Metrics::default();
        assert_eq!(route("GET /healthz HTTP/1.1", &m).0, 200);
        assert_eq!(route("GET /readyz HTTP/1.1", &m).0, 503);
        m.set_ready();
        assert_eq!(route("GET /readyz HTTP/1.1", &m).0, 200);
        assert!(route("GET /metrics HTTP/1.1", &m)
            .2
            .contains("ferrolb_leader 0"));
    }

    #[tokio::test]
    async fn serves_over_tcp_until_cancelled() {
        let cancel = CancellationToken::new();
        let m = Arc::new(Metrics::default());
        m.set_leader(true);
        let (addr, task) = serve(
            "127.0.0.1:0".parse().expect("addr"),
            m,
            OpsLimits::default(),
            cancel.clone(),
        )
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
