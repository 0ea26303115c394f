//! Standalone mode (no Kubernetes): `ferrolb-controller --config-dir DIR`.
//!
//! Watches `DIR` with [`ferrolb_api::source::files::watch_files`] (the files kept as
//! [`super::standalone_inputs`] says), allocates for the Services in
//! its files with the same [`PoolAllocator`] as Kubernetes mode, and writes the assignments to
//! `DIR/ferrolb-allocations.yaml` (or `--allocations-file PATH`): one status-only `kind: Service`
//! document per allocated Service ([`render`]). The file loader merges each such document into
//! the Service of the same namespace/name (a *status overlay*), so the speaker reading `DIR`
//! sees the IPs, and so does this controller after a restart: it adopts them before allocating
//! anything new, and no IP moves.
//!
//! *Guarantees*
//! - The file is replaced atomically (a hidden temporary file in the same directory, fsynced,
//!   renamed over) and only when its content changes; our own write is seen by the watcher,
//!   reloads to the same allocations and writes nothing, so there is no loop.
//! - A rejected configuration keeps the last good one (logged by [`ferrolb_runtime::config`]
//!   exactly as the speaker logs it, once per distinct error list, `ferrolb_config_stale 1`);
//!   an unreadable directory changes nothing.
//!
//! *Assumptions*: one controller per directory (there is no Lease here). An allocations file
//! outside `DIR` is created empty at start so it can be watched with `DIR`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferrolb_api::source::files::{watch_files, Loaded, WatchOptions};
use ferrolb_api::source::Resources;
use ferrolb_api::state::Applied;
use ferrolb_runtime::ops_http::OpsLimits;
use ferrolb_runtime::ConfigApplier;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use super::standalone_inputs::AllocatorInputs;
use super::writes::{IP_MODE_VIP, POOL_ANNOTATION};
use ferrolb_allocator::{Assignment, Decision, Event, PoolAllocator, ServiceKey, ServiceState};

/// The allocations file's name inside the config directory.
pub const ALLOCATIONS_FILE: &str = "ferrolb-allocations.yaml";

/// The first line of the allocations file.
pub const HEADER: &str =
    "# Written by ferrolb-controller (standalone mode): the IPs it allocated. Do not edit.\n";

/// What standalone mode needs.
#[derive(Debug, Clone)]
pub struct StandaloneOptions {
    /// The directory of YAML files to watch.
    pub config_dir: PathBuf,
    /// Where to write the allocations (default `config_dir/ferrolb-allocations.yaml`).
    pub allocations_file: Option<PathBuf>,
    /// Handle Services of this class (`None`: Services without a class).
    pub load_balancer_class: Option<String>,
    /// Serve `/metrics`, `/healthz`, `/readyz` here, if given.
    pub metrics_addr: Option<SocketAddr>,
    /// The ops server's connection cap and timeouts.
    pub ops_limits: OpsLimits,
    /// Polling fallback of the directory watcher.
    pub poll: Duration,
    /// How long a changed file must hold still before it is applied ([`WatchOptions::settle`]).
    pub settle: Duration,
    /// Size limits of the directory's files.
    pub limits: ferrolb_api::source::files::Limits,
    /// Serve the admission webhook, validating against the directory's objects (certificates
    /// from `--cert-dir`; there is no rotation without Kubernetes).
    pub webhook: Option<crate::webhook::WebhookOptions>,
}

/// Why standalone mode stopped.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// The metrics address cannot be bound.
    #[error("binding the metrics address {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The webhook address cannot be bound.
    #[error("binding the webhook address {addr}: {source}")]
    BindWebhook {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The allocations file cannot be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The allocations file's content for these assignments (sorted by namespace/name).
pub fn render<'a>(
    assignments: impl IntoIterator<Item = (&'a ServiceKey, &'a Assignment)>,
) -> String {
    let mut out = String::from(HEADER);
    for (key, a) in assignments {
        let ingress: Vec<serde_json::Value> = a
            .ips
            .iter()
            .map(|ip| json!({"ip": ip.to_string(), "ipMode": IP_MODE_VIP}))
            .collect();
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": key.name,
                "namespace": key.namespace,
                "annotations": {POOL_ANNOTATION: a.pool},
            },
            "status": {"loadBalancer": {"ingress": ingress}},
        });
        out.push_str("---\n");
        // A json! value of strings always serializes.
        out.push_str(&serde_yaml_ng::to_string(&doc).unwrap_or_default());
    }
    out
}

/// Replaces `path` with `text` atomically: a hidden sibling written and fsynced, then renamed.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ALLOCATIONS_FILE.into());
    // Hidden (leading dot) so the file loader never reads it half-written.
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The allocator and what it last wrote.
struct Standalone {
    allocator: PoolAllocator,
    /// The configuration in force and what was logged about it (shared with the speaker).
    config: ConfigApplier,
    path: PathBuf,
    written: Option<String>,
    metrics: Arc<Metrics>,
    /// The newest configuration objects, for the admission webhook.
    snapshot: tokio::sync::watch::Sender<Option<Arc<Resources>>>,
}

impl Standalone {
    fn on_loaded(&mut self, loaded: Loaded<AllocatorInputs>) -> Result<(), StandaloneError> {
        let inputs = match loaded {
            Ok(inputs) => inputs,
            Err(error) => {
                tracing::warn!(%error, "cannot read the configuration directory; nothing changes");
                self.metrics.set_config_stale(true);
                return Ok(());
            }
        };
        // Our own allocations-file write reloads the directory: a rejected configuration comes
        // back unchanged and is (by the applier's rule) not logged again.
        let applied = self.config.apply(&inputs.config);
        self.snapshot
            .send_replace(Some(Arc::new(crate::webhook::config_only(&inputs.config))));
        self.metrics.set_config_stale(self.config.is_stale());
        self.metrics
            .count_config_update(applied, self.config.config().is_some());
        let Some(config) = self.config.config() else {
            return Ok(());
        };
        if applied == Applied::Changed {
            let decisions = self.allocator.set_config(config);
            log_decisions(&decisions);
        }
        let decisions = self.allocator.resync(inputs.services());
        log_decisions(&decisions);
        self.metrics.set_pools(&self.allocator.usage());
        self.metrics.set_ready();
        self.write_if_changed()
    }

    fn write_if_changed(&mut self) -> Result<(), StandaloneError> {
        let assigned: Vec<(ServiceKey, Assignment)> = self
            .allocator
            .states()
            .filter_map(|(k, s)| match s {
                ServiceState::Assigned(a) => Some((k.clone(), a)),
                _ => None,
            })
            .collect();
        let text = render(assigned.iter().map(|(k, a)| (k, a)));
        if self.written.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        write_atomic(&self.path, &text).map_err(|source| StandaloneError::Write {
            path: self.path.clone(),
            source,
        })?;
        tracing::info!(path = %self.path.display(), services = assigned.len(), "allocations written");
        self.written = Some(text);
        Ok(())
    }
}

fn log_decisions(decisions: &[Decision]) {
    for d in decisions {
        for event in &d.events {
            match event {
                Event::Failed(_) => {
                    tracing::warn!(service = %d.service, reason = event.reason(), %event, "event")
                }
                _ => tracing::info!(service = %d.service, reason = event.reason(), %event, "event"),
            }
        }
    }
}

/// Where the allocations go, and the paths to watch (the directory, plus the allocations file
/// when it lies outside it).
fn paths(opts: &StandaloneOptions) -> (PathBuf, Vec<PathBuf>) {
    let dir = opts.config_dir.clone();
    let path = opts
        .allocations_file
        .clone()
        .unwrap_or_else(|| dir.join(ALLOCATIONS_FILE));
    let canon_dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let canon_parent = parent
        .canonicalize()
        .unwrap_or_else(|_| parent.to_path_buf());
    let mut watched = vec![dir];
    if !canon_parent.starts_with(&canon_dir) {
        watched.push(path.clone());
    }
    (path, watched)
}

/// Runs standalone mode until `cancel`.
pub async fn run(
    opts: StandaloneOptions,
    cancel: CancellationToken,
) -> Result<(), StandaloneError> {
    let metrics = Arc::new(Metrics::default());
    // No Lease in standalone mode: this process is the only writer.
    metrics.set_leader(true);
    let http = match opts.metrics_addr {
        Some(addr) => {
            let (bound, task) =
                super::http::serve(addr, Arc::clone(&metrics), opts.ops_limits, cancel.clone())
                    .await
                    .map_err(|source| StandaloneError::Bind { addr, source })?;
            tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
            Some(task)
        }
        None => None,
    };
    let (snapshot, snapshot_rx) = crate::webhook::snapshot_channel();
    let mut webhook_tasks = Vec::new();
    if let Some(mut w) = opts.webhook.clone() {
        let addr = w.addr;
        // Standalone mode serves the webhook only when asked: a bind failure is fatal.
        w.addr_given = true;
        w.rotation = None;
        if let Some((_, tasks)) = crate::webhook::start(w, None, snapshot_rx, cancel.clone())
            .await
            .map_err(|source| StandaloneError::BindWebhook { addr, source })?
        {
            webhook_tasks = tasks;
        }
    }
    let (path, watched) = paths(&opts);
    if watched.len() > 1 && !path.exists() {
        write_atomic(&path, HEADER).map_err(|source| StandaloneError::Write {
            path: path.clone(),
            source,
        })?;
    }
    let mut state = Standalone {
        allocator: PoolAllocator::new(opts.load_balancer_class.clone()),
        config: ConfigApplier::new(),
        written: std::fs::read_to_string(&path).ok(),
        path,
        metrics,
        snapshot,
    };
    let (tx, mut rx) = mpsc::channel::<Loaded<AllocatorInputs>>(1);
    let watch_opts = WatchOptions {
        poll: opts.poll,
        settle: opts.settle,
        limits: opts.limits,
        ..WatchOptions::default()
    };
    let watcher = tokio::spawn(watch_files::<AllocatorInputs, _>(watched, watch_opts, tx));
    let result = loop {
        let loaded = tokio::select! {
            () = cancel.cancelled() => break Ok(()),
            loaded = rx.recv() => loaded,
        };
        let Some(loaded) = loaded else { break Ok(()) };
        // Parsing is done; allocation and rendering are CPU work of a few ms per 10k Services.
        let outcome = state.on_loaded(loaded);
        // A load's transient memory (the changed files' parse, the allocator input) comes from
        // whichever blocking-pool thread's glibc arena ran it; hand it back after each load.
        ferrolb_runtime::process::release_freed_memory();
        if let Err(e) = outcome {
            break Err(e);
        }
    };
    drop(rx);
    watcher.abort();
    if http.is_some() || !webhook_tasks.is_empty() {
        cancel.cancel();
    }
    if let Some(task) = http {
        let _ = task.await;
    }
    for task in webhook_tasks {
        let _ = task.await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_api::source::files::load_str;

    #[test]
    fn rendered_documents_merge_back_as_status_overlays() {
        let key = ServiceKey::new("ns", "web");
        let a = Assignment {
            ips: vec![
                "10.0.0.1".parse().expect("ip"),
                "fd00::1".parse().expect("ip"),
            ],
            pool: "p".into(),
        };
        let text = render([(&key, &a)]);
        assert!(text.starts_with(HEADER));
        let services = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: ns}\nspec: {type: LoadBalancer}\n---\n";
        let res = load_str(&format!("{services}{text}"), Path::new("x.yaml")).expect("load");
        assert_eq!(res.services.len(), 1);
        let svc = &res.services[0];
        let ips: Vec<String> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| i.ip)
            .collect();
        assert_eq!(ips, vec!["10.0.0.1", "fd00::1"]);
        assert_eq!(
            svc.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(POOL_ANNOTATION))
                .map(String::as_str),
            Some("p")
        );
    }

    #[test]
    fn an_empty_set_renders_a_file_the_loader_reads_as_empty() {
        let text = render(std::iter::empty());
        let res = load_str(&text, Path::new("x.yaml")).expect("load");
        assert!(res.services.is_empty());
        assert_eq!(res.ignored_count(), 0);
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(ALLOCATIONS_FILE);
        write_atomic(&path, "a").expect("write");
        write_atomic(&path, "b").expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "b");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn an_allocations_file_outside_the_directory_is_watched_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("cfg");
        std::fs::create_dir(&cfg).expect("mkdir");
        let mut opts = StandaloneOptions {
            config_dir: cfg.clone(),
            allocations_file: None,
            load_balancer_class: None,
            metrics_addr: None,
            ops_limits: OpsLimits::default(),
            poll: Duration::from_millis(100),
            settle: Duration::from_millis(100),
            limits: Default::default(),
            webhook: None,
        };
        let (path, watched) = paths(&opts);
        assert_eq!(path, cfg.join(ALLOCATIONS_FILE));
        assert_eq!(watched, vec![cfg.clone()]);
        opts.allocations_file = Some(dir.path().join("out.yaml"));
        let (path, watched) = paths(&opts);
        assert_eq!(watched, vec![cfg, path]);
    }
}
