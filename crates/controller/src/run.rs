//! The flags of the long-running controller and its start: logging, runtime, signals, mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ferrolb_controller::daemon::{client, kube, lease_driver::LeaseConfig, memberlist, standalone};
use ferrolb_controller::webhook::{self, rotation::RotationOptions, WebhookOptions};
use ferrolb_runtime::ops_http::{self, OpsLimits};
use tokio_util::sync::CancellationToken;

/// Flags of `ferrolb-controller [run]`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Namespace of the config CRs and the Lease.
    #[arg(long, env = "METALLB_NAMESPACE", default_value = "metallb-system")]
    namespace: String,
    /// Kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Address for /metrics, /healthz and /readyz (Kubernetes mode default 0.0.0.0:7472;
    /// standalone mode serves them only when given).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Handle Services of this loadBalancerClass (default: Services without a class).
    #[arg(long)]
    load_balancer_class: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "ferrolb-controller")]
    lease_name: String,
    /// This replica's identity in the Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Lease duration in seconds (a standby takes over this long after the leader stops).
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    lease_duration_secs: u64,
    /// The speakers' memberlist Secret in --namespace (key `secretkey`); the leader creates it
    /// with a random key when missing and never changes an existing one.
    #[arg(long, default_value = memberlist::DEFAULT_SECRET_NAME,
          value_parser = clap::builder::NonEmptyStringValueParser::new())]
    ml_secret_name: String,
    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info` or `ferrolb_controller=debug`.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Standalone mode: allocate for the Services in this directory's YAML files (no Kubernetes).
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// Standalone mode: where to write the allocations (default DIR/ferrolb-allocations.yaml).
    #[arg(long, requires = "config_dir")]
    allocations_file: Option<PathBuf>,
    /// Standalone mode: polling fallback of the directory watcher, in milliseconds.
    #[arg(long, default_value_t = 250, requires = "config_dir")]
    poll_ms: u64,
    /// Most connections open at once on the --metrics-addr port (also at most a quarter of the
    /// open-files limit); at the cap the oldest idle connection is closed to make room.
    #[arg(long, env = ops_http::ENV_MAX_CONNECTIONS,
          default_value_t = ops_http::DEFAULT_MAX_CONNECTIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    ops_max_connections: u64,
    /// Time a client of the --metrics-addr port has to send its request head, milliseconds.
    #[arg(long, env = ops_http::ENV_HEADER_TIMEOUT_MS,
          default_value_t = ops_http::DEFAULT_HEADER_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    ops_header_timeout_ms: u64,
    /// Standalone mode: a changed, new or removed file is applied once unchanged this long,
    /// milliseconds (a file rewritten in place is never read half-written).
    #[arg(long, default_value_t = ferrolb_api::source::files::WatchOptions::DEFAULT_SETTLE_MS, requires = "config_dir")]
    settle_ms: u64,
    /// Standalone mode: the largest file read from --config-dir, bytes.
    #[arg(long, default_value_t = ferrolb_api::source::files::Limits::DEFAULT_MAX_FILE_BYTES, requires = "config_dir")]
    max_file_bytes: u64,
    /// Standalone mode: the most bytes read from --config-dir, all files together.
    #[arg(long, default_value_t = ferrolb_api::source::files::Limits::DEFAULT_MAX_DIR_BYTES, requires = "config_dir")]
    max_dir_bytes: u64,
    /// Address of the validating admission webhook (HTTPS). Kubernetes mode default
    /// 0.0.0.0:9443; standalone mode serves it only when given, validating against the objects
    /// in --config-dir.
    #[arg(long)]
    webhook_addr: Option<SocketAddr>,
    /// Directory holding the webhook's `tls.crt` and `tls.key` (reloaded when they change).
    /// Used in standalone mode and with --disable-cert-rotation.
    #[arg(long, default_value = ferrolb_controller::webhook::DEFAULT_CERT_DIR)]
    cert_dir: PathBuf,
    /// Kubernetes mode: do not keep the webhook CA and certificate in a Secret nor set the
    /// ValidatingWebhookConfiguration's caBundle; serve what --cert-dir holds (cert-manager).
    #[arg(long)]
    disable_cert_rotation: bool,
}

impl RunArgs {
    fn ops_limits(&self) -> OpsLimits {
        OpsLimits {
            max_connections: usize::try_from(self.ops_max_connections).unwrap_or(usize::MAX),
            header_timeout: Duration::from_millis(self.ops_header_timeout_ms),
            ..OpsLimits::default()
        }
    }
}

const DEFAULT_METRICS_ADDR: &str = "0.0.0.0:7472";

fn init_tracing(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("--log-level {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("ferrolb-controller-{}", std::process::id()))
}

/// Cancels `cancel` on SIGTERM or SIGINT.
async fn cancel_on_signal(cancel: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
        }
        cancel.cancel();
    });
    Ok(())
}

/// Runs the controller until SIGTERM / SIGINT.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(&args.log_level)?;
    // Before anything opens a descriptor: the ops port, watches and writes share the limit.
    ferrolb_runtime::process::raise_nofile_limit_logged();
    let ops_limits = args.ops_limits();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let cancel = CancellationToken::new();
        cancel_on_signal(cancel.clone()).await?;
        if let Some(config_dir) = args.config_dir {
            let opts = standalone::StandaloneOptions {
                config_dir,
                allocations_file: args.allocations_file,
                load_balancer_class: args.load_balancer_class,
                metrics_addr: args.metrics_addr,
                ops_limits,
                poll: Duration::from_millis(args.poll_ms.max(1)),
                settle: Duration::from_millis(args.settle_ms),
                limits: ferrolb_api::source::files::Limits {
                    max_file_bytes: args.max_file_bytes,
                    max_dir_bytes: args.max_dir_bytes,
                },
                webhook: args.webhook_addr.map(|addr| WebhookOptions {
                    addr,
                    addr_given: true,
                    cert_dir: args.cert_dir.clone(),
                    rotation: None,
                }),
            };
            tracing::info!(dir = %opts.config_dir.display(), "standalone mode");
            return standalone::run(opts, cancel).await.context("standalone mode");
        }
        let identity = args.identity.unwrap_or_else(hostname);
        let config = client::config(args.kubeconfig.as_deref()).await?;
        let client = client::client(config)?;
        let metrics_addr = match args.metrics_addr {
            Some(addr) => addr,
            None => DEFAULT_METRICS_ADDR.parse().context("default metrics address")?,
        };
        let webhook = WebhookOptions {
            addr: match args.webhook_addr {
                Some(addr) => addr,
                None => webhook::DEFAULT_ADDR.parse().context("default webhook address")?,
            },
            addr_given: args.webhook_addr.is_some(),
            cert_dir: args.cert_dir,
            rotation: (!args.disable_cert_rotation).then(|| RotationOptions {
                namespace: args.namespace.clone(),
                secret_name: webhook::SECRET_NAME.into(),
                service_name: webhook::SERVICE_NAME.into(),
                webhook_configuration: webhook::CONFIGURATION_NAME.into(),
            }),
        };
        let opts = kube::KubeOptions {
            namespace: args.namespace,
            load_balancer_class: args.load_balancer_class,
            lease: LeaseConfig {
                name: args.lease_name,
                identity,
                duration: Duration::from_secs(args.lease_duration_secs),
            },
            metrics_addr,
            ops_limits,
            ml_secret_name: args.ml_secret_name,
            webhook: Some(webhook),
        };
        tracing::info!(namespace = %opts.namespace, identity = %opts.lease.identity, "Kubernetes mode");
        kube::run(client, opts, cancel).await.context("Kubernetes mode")
    })
}
