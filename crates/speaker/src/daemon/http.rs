//! The speaker's `/metrics`, `/healthz` and `/readyz`, served by [`ferrolb_api::ops_http`].

use std::net::SocketAddr;
use std::sync::Arc;

use ferrolb_api::ops_http::{self, Endpoints};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Binds `addr` and serves until `cancel`. Returns the bound address (port 0 resolved) and the
/// serving task.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    ops_http::serve(addr, metrics, cancel).await
}

impl Endpoints for Metrics {
    fn metrics(&self) -> String {
        self.render()
    }

    /// Ready once a configuration is in force and while the source can be read. During a
    /// source outage it answers 503 although every route stays announced: the speaker cannot
    /// see changes, and a DaemonSet rollout should not proceed past a node in that state.
    fn readiness(&self) -> Result<(), String> {
        if !self.ready() {
            return Err("no configuration in force yet".into());
        }
        match self.source_error() {
            None => Ok(()),
            Some(error) => Err(format!(
                "configuration source unavailable (announcements kept): {error}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_api::ops_http::route;

    #[test]
    fn routes() {
        let m = Metrics::default();
        assert_eq!(route("GET /healthz HTTP/1.1", &m).0, 200);
        assert_eq!(route("GET /readyz HTTP/1.1", &m).0, 503);
        m.set_ready();
        assert_eq!(route("GET /readyz HTTP/1.1", &m).0, 200);
        m.set_source_error(Some("watch failed".into()));
        let (code, _, body) = route("GET /readyz HTTP/1.1", &m);
        assert_eq!(code, 503);
        assert!(body.contains("watch failed"), "{body}");
        m.set_source_error(None);
        assert_eq!(route("GET /readyz HTTP/1.1", &m).0, 200);
        assert!(route("GET /metrics HTTP/1.1", &m)
            .2
            .contains("ferrolb_config_stale 0"));
    }
}
