//! The validating admission webhook: MetalLB's `/validate-metallb-io-*` paths over TLS, so
//! `kubectl apply` of an invalid or conflicting metallb.io object fails at once, as with MetalLB.
//!
//! ```text
//!  API server ──TLS──▶ server (hyper + rustls) ─ AdmissionReview ─▶ admission::decide (pure)
//!                          ▲ CertSource                                  ▲ newest Resources
//!   --cert-dir files ──────┤ (reloaded on change)        config snapshot ┘ (kube watches or
//!   rotation (Secret) ─────┘ ──▶ caBundle of the ValidatingWebhookConfiguration   --config-dir)
//! ```
//!
//! - [`admission`] (pure): the decision, `(existing Resources, AdmissionRequest) -> AdmissionResponse`.
//! - [`server`]: the TLS listener and the certificate source.
//! - [`certs`]: generating (rcgen) and checking the CA and serving certificate.
//! - [`rotation`]: Kubernetes mode's Secret and `caBundle` upkeep.

pub mod admission;
pub mod certs;
pub mod rotation;
pub mod server;

/// The webhook Service, Secret and ValidatingWebhookConfiguration names: MetalLB's objects
/// renamed as the rest of the install (`ferrolb-controller`), see `cmd/manifests.rs`.
pub const SERVICE_NAME: &str = "ferrolb-webhook-service";
/// The Secret holding the webhook CA and certificate (MetalLB: `metallb-webhook-cert`).
pub const SECRET_NAME: &str = "ferrolb-webhook-cert";
/// The ValidatingWebhookConfiguration (MetalLB: `metallb-webhook-configuration`).
pub const CONFIGURATION_NAME: &str = "ferrolb-webhook-configuration";
/// Kubernetes mode's default `--webhook-addr` (MetalLB's port).
pub const DEFAULT_ADDR: &str = "0.0.0.0:9443";
/// MetalLB's (controller-runtime's) default `--cert-dir`.
pub const DEFAULT_CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ferrolb_api::source::Resources;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How the webhook is served.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// `--webhook-addr`.
    pub addr: SocketAddr,
    /// Whether the address was given on the command line (Kubernetes mode serves the default
    /// address even when not; failing to bind that one is logged, not fatal).
    pub addr_given: bool,
    /// `--cert-dir`: `tls.crt` and `tls.key`, reloaded when they change. Unused with rotation.
    pub cert_dir: PathBuf,
    /// Kubernetes mode without `--disable-cert-rotation`: the Secret and `caBundle` to keep.
    pub rotation: Option<rotation::RotationOptions>,
}

/// The part of a snapshot validation reads (Services and EndpointSlices dropped), so the
/// webhook's copy stays small.
pub fn config_only(res: &Resources) -> Resources {
    Resources {
        ip_address_pools: res.ip_address_pools.clone(),
        bgp_peers: res.bgp_peers.clone(),
        bgp_advertisements: res.bgp_advertisements.clone(),
        l2_advertisements: res.l2_advertisements.clone(),
        communities: res.communities.clone(),
        bfd_profiles: res.bfd_profiles.clone(),
        secrets: res.secrets.clone(),
        namespaces: res.namespaces.clone(),
        nodes: res.nodes.clone(),
        ..Resources::default()
    }
}

/// The snapshot channel: the daemon sends [`config_only`] copies, the server reads the newest.
pub fn snapshot_channel() -> (watch::Sender<Option<Arc<Resources>>>, server::Snapshot) {
    watch::channel(None)
}

/// Starts the webhook (and, with `client` and rotation options, the cert rotation). Returns
/// the bound address and the tasks, or `Ok(None)` when the default address could not be bound.
pub async fn start(
    opts: WebhookOptions,
    client: Option<kube::Client>,
    snapshot: server::Snapshot,
    cancel: CancellationToken,
) -> std::io::Result<Option<(SocketAddr, Vec<tokio::task::JoinHandle<()>>)>> {
    let mut tasks = Vec::new();
    let source = match (&opts.rotation, client) {
        (Some(rot), Some(client)) => {
            let source = Arc::new(server::CertSource::in_memory());
            tasks.push(tokio::spawn(rotation::run(
                client,
                rot.clone(),
                Arc::clone(&source),
                cancel.clone(),
            )));
            source
        }
        _ => Arc::new(server::CertSource::from_dir(opts.cert_dir.clone())),
    };
    match server::serve(opts.addr, source, snapshot, cancel.clone()).await {
        Ok((addr, task)) => {
            tracing::info!(%addr, rotation = opts.rotation.is_some(),
                cert_dir = %opts.cert_dir.display(), "serving the admission webhook");
            tasks.push(task);
            Ok(Some((addr, tasks)))
        }
        Err(error) if !opts.addr_given => {
            tracing::error!(addr = %opts.addr, %error,
                "cannot bind the default webhook address; running without the webhook");
            cancel_all(&tasks);
            Ok(None)
        }
        Err(error) => {
            cancel_all(&tasks);
            Err(error)
        }
    }
}

fn cancel_all(tasks: &[tokio::task::JoinHandle<()>]) {
    for t in tasks {
        t.abort();
    }
}
