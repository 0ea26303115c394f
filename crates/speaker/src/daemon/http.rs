//! The speaker's `/metrics`, `/healthz` and `/readyz`, served by [`ferrolb_runtime::ops_http`]
//! within [`OpsLimits::from_env`] (`FERROLB_OPS_MAX_CONNECTIONS`,
//! `FERROLB_OPS_HEADER_TIMEOUT_MS`).

use std::net::SocketAddr;
use std::sync::Arc;

use ferrolb_runtime::ops_http::{self, Endpoints, OpsLimits};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Binds `addr` and serves until `cancel`. Returns the bound address (port 0 resolved) and the
/// serving task.
///
/// The speaker serves this port first thing at start, so this is also where it raises its soft
/// open-files limit to the hard one (the cap of the ops port is a quarter of that limit).
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    ferrolb_runtime::process::raise_nofile_limit_logged();
    ops_http::serve_with(addr, metrics, OpsLimits::from_env(), cancel).await
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
    use ferrolb_runtime::ops_http::route;

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
