//! `ferrolb-speaker`: the per-node daemon (see docs/speaker.md).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ferrolb_api::crd::{ServiceBGPStatus, ServiceL2Status};
use ferrolb_speaker::announce::SpeakerOptions;
use ferrolb_speaker::backend::bgp::{BgpBackend, BgpBackendOptions};
use ferrolb_speaker::daemon::{self, kube_events, kube_status, reconcile::Reconciler};
use ferrolb_speaker::metrics::Metrics;
use ferrolb_speaker::protocol::{self, bgp::BgpProtocol};
use kube::runtime::events::Reporter;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "ferrolb-speaker",
    version,
    about = "FerroLB speaker: announces Service VIPs"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Standalone mode: a directory of Kubernetes YAML (metallb.io CRs, Secrets, Nodes, Services,
    /// EndpointSlices). Without it, Kubernetes mode (in-cluster or KUBECONFIG).
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// This node's name.
    #[arg(long, env = "NODE_NAME")]
    node_name: Option<String>,
    /// Address of /metrics, /healthz, /readyz. Without it: `--host`, port `--metrics-port`.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// The address the ops port binds when --metrics-addr is not given, MetalLB's `--host`
    /// (its manifests set METALLB_HOST to the node's `status.hostIP`). The speaker runs in the
    /// host's network namespace, so 0.0.0.0 would expose the port on every interface of the
    /// node, the outside ones included; without either flag it is loopback only.
    #[arg(long, env = "METALLB_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// The ops port when --metrics-addr is not given (MetalLB's speaker uses 7472).
    #[arg(long, default_value_t = 7472)]
    metrics_port: u16,
    /// Standalone mode: write the per-Service report here (atomically replaced).
    #[arg(long)]
    status_file: Option<PathBuf>,
    /// Kubernetes mode: namespace of the metallb.io CRs and Secrets.
    #[arg(long, env = "METALLB_NAMESPACE", default_value = "metallb-system")]
    namespace: String,
    /// Kubernetes mode: kubeconfig file (default: in-cluster, then KUBECONFIG / ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Serve only Services with this spec.loadBalancerClass (MetalLB --lb-class).
    #[arg(long)]
    lb_class: Option<String>,
    /// Announce even from nodes labelled exclude-from-external-load-balancers.
    #[arg(long)]
    ignore_exclude_lb: bool,
    /// Set the Graceful Restart Restart State bit (RFC 4724 §4.1): we are coming back from a
    /// restart and routers should keep our routes meanwhile. Without it the speaker finds out
    /// by itself from the marker in --state-dir (see daemon::restart).
    #[arg(long)]
    graceful_restarted: bool,
    /// Directory that outlives the speaker's Pod but not a reboot (a hostPath under /run):
    /// SIGTERM leaves a marker here so that the next start knows it is a restart.
    #[arg(long, default_value = daemon::restart::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Drain period, seconds: on a drain signal (the exclusion label, the `ferrolb.io/drain`
    /// annotation, the cluster autoscaler's taint) the node announces its routes with
    /// GRACEFUL_SHUTDOWN (RFC 8326) this long before withdrawing them.
    #[arg(long, default_value_t = ferrolb_speaker::announce::drain::DEFAULT_DRAIN_PERIOD.as_secs())]
    drain_seconds: u64,
    /// Kubernetes mode: this speaker's Pod (downward API `metadata.name`); with --pod-uid, the
    /// owner of the ServiceBGPStatus objects it writes, and the Events' reporting instance.
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    /// Kubernetes mode: this speaker's Pod UID (downward API `metadata.uid`).
    #[arg(long, env = "POD_UID")]
    pod_uid: Option<String>,
    /// Poll period of --config-dir, milliseconds.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
    /// Standalone mode: a changed, new or removed file is applied once unchanged this long,
    /// milliseconds (a file rewritten in place is never read half-written).
    #[arg(long, default_value_t = ferrolb_api::source::files::WatchOptions::DEFAULT_SETTLE_MS)]
    settle_ms: u64,
    /// Standalone mode: the largest file read from --config-dir, bytes.
    #[arg(long, default_value_t = ferrolb_api::source::files::Limits::DEFAULT_MAX_FILE_BYTES)]
    max_file_bytes: u64,
    /// Standalone mode: the most bytes read from --config-dir, all files together.
    #[arg(long, default_value_t = ferrolb_api::source::files::Limits::DEFAULT_MAX_DIR_BYTES)]
    max_dir_bytes: u64,
    /// Layer 2: UDP port of the speakers' liveness gossip (MetalLB's memberlist port); 0
    /// disables it and Node readiness alone decides who is alive.
    #[arg(long, default_value_t = ferrolb_speaker::l2::memberlist::DEFAULT_PORT)]
    memberlist_port: u16,
    /// Layer 2: bind the gossip to this address (default: the wildcard of the node's
    /// InternalIP family, port --memberlist-port).
    #[arg(long)]
    memberlist_bind: Option<SocketAddr>,
    /// Layer 2: file with the gossip's shared secret (default: $METALLB_ML_SECRET_KEY, else
    /// none); every datagram is authenticated with HMAC-SHA256.
    #[arg(long)]
    memberlist_secret_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything in one process on loopback, no root, no cluster.
    Demo,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// A client for the API server: from --kubeconfig, else in-cluster, else KUBECONFIG or
/// ~/.kube/config.
async fn kube_client(cli: &Cli) -> anyhow::Result<kube::Client> {
    let config = match &cli.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig: not in a cluster, and no KUBECONFIG or ~/.kube/config")?,
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Demo) = cli.command {
        return ferrolb_speaker::demo::run().await.context("demo failed");
    }
    init_tracing();
    let node_name = cli
        .node_name
        .clone()
        .context("--node-name or NODE_NAME is required")?;
    let metrics = Arc::new(Metrics::default());
    let cancel = CancellationToken::new();
    let ops_addr = cli
        .metrics_addr
        .unwrap_or(SocketAddr::new(cli.host, cli.metrics_port));
    let (addr, http) = daemon::http::serve(ops_addr, Arc::clone(&metrics), cancel.clone())
        .await
        .with_context(|| format!("binding {ops_addr}"))?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");

    let (tx, rx) = mpsc::channel(16);
    let (wake_tx, wake_rx) = mpsc::channel(16);
    let mut reports = daemon::Reports {
        status_file: cli.status_file.clone(),
        ..daemon::Reports::default()
    };
    let mut tasks = tokio::task::JoinSet::new();
    // BGPPeers that cannot have their session on this node (a missing VRF device): Warning
    // Events, in Kubernetes mode only.
    let mut peer_warnings = None;
    match &cli.config_dir {
        Some(dir) => {
            tracing::info!(dir = %dir.display(), node = %node_name, "standalone mode");
            tasks.spawn(daemon::standalone::watch_dir(
                dir.clone(),
                ferrolb_api::source::files::WatchOptions {
                    poll: std::time::Duration::from_millis(cli.poll_ms.max(10)),
                    settle: std::time::Duration::from_millis(cli.settle_ms),
                    limits: ferrolb_api::source::files::Limits {
                        max_file_bytes: cli.max_file_bytes,
                        max_dir_bytes: cli.max_dir_bytes,
                    },
                    ..Default::default()
                },
                tx,
                cancel.clone(),
            ));
        }
        None => {
            let client = kube_client(&cli).await?;
            tracing::info!(node = %node_name, namespace = %cli.namespace, "kubernetes mode");
            tasks.spawn(daemon::kube::watch(
                client.clone(),
                cli.namespace.clone(),
                tx,
                cancel.clone(),
            ));
            let (statuses_tx, statuses_rx) = watch::channel(None);
            let owner = match (&cli.pod_name, &cli.pod_uid) {
                (Some(name), Some(uid)) => Some(kube_status::pod_owner(name, uid)),
                _ => {
                    tracing::info!(
                        "POD_NAME/POD_UID not set: ServiceBGPStatus/ServiceL2Status objects get no owner"
                    );
                    None
                }
            };
            let writer = kube_status::WriterConfig {
                node: node_name.clone(),
                namespace: cli.namespace.clone(),
                owner,
            };
            tasks.spawn(kube_status::run_writer::<ServiceBGPStatus>(
                client.clone(),
                writer.clone(),
                statuses_rx,
                Arc::clone(&metrics),
                cancel.clone(),
            ));
            let (l2_statuses_tx, l2_statuses_rx) = watch::channel(None);
            tasks.spawn(kube_status::run_writer::<ServiceL2Status>(
                client.clone(),
                writer,
                l2_statuses_rx,
                Arc::clone(&metrics),
                cancel.clone(),
            ));
            reports.statuses.insert(protocol::l2::NAME, l2_statuses_tx);
            let (errors_tx, errors_rx) = watch::channel(kube_events::Rejection::default());
            let reporter = Reporter {
                controller: "ferrolb-speaker".into(),
                instance: Some(cli.pod_name.clone().unwrap_or_else(|| node_name.clone())),
            };
            let (warnings_tx, warnings_rx) = tokio::sync::mpsc::unbounded_channel();
            let warnings_metrics = Arc::clone(&metrics);
            tasks.spawn(ferrolb_runtime::events::run_warning_publisher(
                client.clone(),
                reporter.clone(),
                cli.namespace.clone(),
                warnings_rx,
                move |_: &kube::Error| warnings_metrics.count_kube_write_error("Event"),
                cancel.clone(),
            ));
            peer_warnings = Some(warnings_tx);
            // MetalLB v0.15: one ConfigurationState per speaker, `speaker-<node>`.
            let (config_state_tx, config_state_rx) = watch::channel(None);
            tasks.spawn(ferrolb_runtime::config_state::run_writer(
                client.clone(),
                cli.namespace.clone(),
                ferrolb_runtime::config_state::Reporter::speaker(&node_name),
                "ferrolb-speaker".into(),
                config_state_rx,
                cancel.clone(),
            ));
            reports.config_state = Some(config_state_tx);
            tasks.spawn(kube_events::run_publisher(
                client,
                reporter,
                cli.namespace.clone(),
                errors_rx,
                Arc::clone(&metrics),
                cancel.clone(),
            ));
            reports.statuses.insert(protocol::bgp::NAME, statuses_tx);
            reports.config_errors = Some(errors_tx);
        }
    }

    let restarted = cli.graceful_restarted
        || daemon::restart::take_marker(
            &cli.state_dir,
            &node_name,
            std::time::SystemTime::now(),
            std::time::Duration::from_secs(u64::from(
                ferrolb_speaker::backend::bgp::GR_RESTART_TIME,
            )),
        );
    if restarted {
        tracing::info!(
            forced = cli.graceful_restarted,
            "restart: Graceful Restart peers get the Restart State and Forwarding State bits"
        );
    }
    let (advertiser, backend) = BgpBackend::start(
        Arc::clone(&metrics),
        BgpBackendOptions {
            restarted,
            peer_warnings,
        },
    );
    let opts = SpeakerOptions {
        node_name: node_name.clone(),
        ignore_exclude_lb: cli.ignore_exclude_lb,
        load_balancer_class: cli.lb_class.clone(),
        draining: false,
    };
    let l2_settings = daemon::l2::L2Settings {
        memberlist_port: cli.memberlist_port,
        memberlist_bind: cli.memberlist_bind,
        memberlist_secret_file: cli.memberlist_secret_file.clone(),
        ..Default::default()
    };
    let bgp_wake = wake_tx.clone();
    let l2_wake = wake_tx.clone();
    let drain_period = std::time::Duration::from_secs(cli.drain_seconds);
    let (l2, l2_running) = daemon::l2::start(
        &l2_settings,
        opts.clone(),
        Arc::clone(&metrics),
        wake_tx,
        cancel.clone(),
    )?;
    if let Some(reader) = l2_running.memberlist_counters() {
        metrics.set_memberlist_counters(reader);
    }
    // Every protocol the speaker announces with; the loop knows none of them.
    let mut reconciler = Reconciler::new(opts.clone(), Arc::clone(&metrics))
        .with_protocol(
            BgpProtocol::new(opts, advertiser)
                .with_metrics(Arc::clone(&metrics))
                .with_drain(drain_period, bgp_wake),
        )
        .with_protocol(l2.with_drain(drain_period, l2_wake));

    // SIGTERM and SIGINT mean "stopped, and started again" (a rolling update, a Pod replaced):
    // a speaker taken out of service for good is drained first (the node's drain signal).
    let signals = {
        let cancel = cancel.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
                _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "shutting down"),
            }
            cancel.cancel();
        })
    };
    daemon::run(
        rx,
        wake_rx,
        &mut reconciler,
        &node_name,
        &metrics,
        reports,
        cancel.clone(),
    )
    .await;
    cancel.cancel();
    // Before the sessions close: a speaker started again right after finds the marker.
    if let Err(error) =
        daemon::restart::write_marker(&cli.state_dir, &node_name, std::time::SystemTime::now())
    {
        tracing::warn!(%error, "the next start will not know it is a restart");
    }
    backend.shutdown_for_restart().await;
    l2_running.shutdown().await;
    // Every task ends on `cancel`; a panic in one is reported, not re-raised.
    while let Some(done) = tasks.join_next().await {
        if let Err(error) = done {
            tracing::error!(%error, bug = true, "a daemon task panicked");
        }
    }
    let _ = http.await;
    signals.abort();
    tracing::info!("stopped");
    Ok(())
}
