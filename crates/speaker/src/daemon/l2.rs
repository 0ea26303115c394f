//! Layer 2 mode in the daemon: the gossip and the ARP/NDP backend started and stopped, and the
//! gossip's live set turned into wake-ups of the [`L2Protocol`] (see [`crate::protocol::l2`]).
//!
//! ```text
//!  Memberlist ── live: watch<Liveness> ──┬──────────────────────────▶ L2Protocol (reads it)
//!      ▲                                 └─▶ forward_liveness ─ mpsc<Wake> ─▶ daemon::run
//!      └── nodes: watch<NodeAddrs> ◀── L2Protocol::update
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::announce::SpeakerOptions;
use crate::backend::l2::{L2Backend, L2BackendOptions};
use crate::channels::Wake;
use crate::l2::memberlist::auth::{SecretError, SecretKey};
use crate::l2::memberlist::{Liveness, Memberlist, MemberlistConfig, NodeAddrs};
use crate::metrics::Metrics;
use crate::protocol::l2::{L2Protocol, NAME};

/// MetalLB's environment variable for the memberlist secret.
pub const SECRET_ENV: &str = "METALLB_ML_SECRET_KEY";

/// The daemon's Layer 2 settings (flags).
#[derive(Debug, Clone, Default)]
pub struct L2Settings {
    /// UDP port of the gossip; 0 disables it (liveness from Node readiness only).
    pub memberlist_port: u16,
    /// Bind the gossip here instead of the wildcard of the node address's family.
    pub memberlist_bind: Option<SocketAddr>,
    /// File holding the shared secret; else `METALLB_ML_SECRET_KEY`; else none.
    pub memberlist_secret_file: Option<PathBuf>,
    /// Backend settings.
    pub backend: L2BackendOptions,
}

/// Why Layer 2 could not start.
#[derive(Debug, thiserror::Error)]
pub enum L2StartError {
    /// The secret file cannot be read.
    #[error("reading memberlist secret file {path}: {source}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The read error.
        source: std::io::Error,
    },
    /// The secret is unusable.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// The secret from `file`, else from `env_value` (the environment variable's value).
pub fn load_secret(
    file: Option<&std::path::Path>,
    env_value: Option<std::ffi::OsString>,
) -> Result<Option<SecretKey>, L2StartError> {
    if let Some(path) = file {
        let bytes = std::fs::read(path).map_err(|source| L2StartError::SecretFile {
            path: path.to_path_buf(),
            source,
        })?;
        return Ok(Some(SecretKey::from_bytes(
            &bytes,
            &format!("--memberlist-secret-file {}", path.display()),
        )?));
    }
    match env_value {
        Some(v) if !v.is_empty() => Ok(Some(SecretKey::from_bytes(
            v.as_encoded_bytes(),
            SECRET_ENV,
        )?)),
        _ => Ok(None),
    }
}

/// The running Layer 2 tasks, for shutdown.
#[derive(Debug)]
pub struct L2Running {
    memberlist: Option<Memberlist>,
    backend: L2Backend,
    forwarder: Option<JoinHandle<()>>,
}

impl L2Running {
    /// The gossip's counters for `/metrics`, when gossip runs.
    pub fn memberlist_counters(&self) -> Option<crate::metrics::CountersReader> {
        self.memberlist
            .as_ref()
            .map(|m| Box::new(m.counters_reader()) as crate::metrics::CountersReader)
    }

    /// Leaves the gossip (the others move our VIPs at once) and closes the ARP/NDP sockets.
    pub async fn shutdown(self) {
        if let Some(f) = self.forwarder {
            f.abort();
        }
        if let Some(m) = self.memberlist {
            m.leave().await;
        }
        self.backend.shutdown().await;
    }
}

/// Starts the L2 backend and (unless port 0) the gossip, whose live set changes wake the
/// reconcile loop on `wake`. Returns the [`L2Protocol`] to register with the reconciler.
pub fn start(
    settings: &L2Settings,
    opts: SpeakerOptions,
    metrics: Arc<Metrics>,
    wake: mpsc::Sender<Wake>,
    cancel: CancellationToken,
) -> Result<(L2Protocol, L2Running), L2StartError> {
    let (advertiser, backend) = L2Backend::start(settings.backend.clone());
    let vip_counts = backend.vip_counts();
    metrics.set_layer2_counts(Box::new(move || vip_counts.read()));
    if settings.memberlist_port == 0 {
        tracing::info!(
            "memberlist disabled (--memberlist-port 0): L2 liveness from Node readiness"
        );
        let protocol = L2Protocol::new(opts, advertiser, None).with_metrics(metrics);
        return Ok((
            protocol,
            L2Running {
                memberlist: None,
                backend,
                forwarder: None,
            },
        ));
    }
    let secret = load_secret(
        settings.memberlist_secret_file.as_deref(),
        std::env::var_os(SECRET_ENV),
    )?;
    let (nodes_tx, nodes_rx) = watch::channel(NodeAddrs::new());
    let config = MemberlistConfig {
        port: settings.memberlist_port,
        bind: settings.memberlist_bind,
        secret,
        ..MemberlistConfig::new(opts.node_name.clone())
    };
    let memberlist = Memberlist::spawn(config, nodes_rx);
    let forwarder = tokio::spawn(forward_liveness(memberlist.live(), wake, cancel));
    let protocol = L2Protocol::new(opts, advertiser, Some(nodes_tx))
        .with_liveness(memberlist.live())
        .with_metrics(metrics);
    Ok((
        protocol,
        L2Running {
            memberlist: Some(memberlist),
            backend,
            forwarder: Some(forwarder),
        },
    ))
}

/// Wakes the Layer 2 protocol at each new live set until `cancel` or either side closes. The
/// protocol reads the set itself at its update, so a burst of changes may wake it once.
pub async fn forward_liveness(
    mut live: watch::Receiver<Liveness>,
    wake: mpsc::Sender<Wake>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            changed = live.changed() => if changed.is_err() { return },
            () = cancel.cancelled() => return,
        }
        if wake.send(Wake(NAME)).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_file_wins_over_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").expect("write");
        let from_file = load_secret(Some(&path), Some("from-env".into())).expect("ok");
        assert_eq!(
            from_file,
            Some(SecretKey::from_bytes(b"from-file", "t").expect("key"))
        );
        let from_env = load_secret(None, Some("from-env".into())).expect("ok");
        assert_eq!(
            from_env,
            Some(SecretKey::from_bytes(b"from-env", "t").expect("key"))
        );
        assert_eq!(load_secret(None, None).expect("ok"), None);
        assert!(load_secret(Some(&dir.path().join("missing")), None).is_err());
    }
}
