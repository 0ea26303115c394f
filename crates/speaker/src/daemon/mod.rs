//! The speaker daemon: sources, the reconcile loop, metrics/health HTTP and status reports.
//!
//! ```text
//!  standalone::watch_dir ─┐                                  ┌─▶ backend (BGP) tasks
//!  kube::watch ───────────┴─mpsc<SourceUpdate>─▶ run() ─ Reconciler ─┼─▶ status file + logs
//!                                                        │           │  (Kubernetes mode:)
//!                        watch<Option<DesiredStatuses>> ─┤           ├─▶ kube_status::run_writer
//!                          watch<kube_events::Rejection> ┘           └─▶ kube_events::run_publisher
//!  http::serve ◀── Arc<Metrics> ◀── reconcile loop, backend event tasks, Kubernetes writers
//! ```
//!
//! The reconcile loop never waits on the API: it hands the Kubernetes writers the newest value
//! on `watch` channels (latest wins), and they write at their own pace.

pub mod http;
pub mod kube;
pub mod kube_events;
pub mod kube_status;
pub mod l2;
pub mod reconcile;
pub mod standalone;
pub mod status;

/// The metrics moved to the neutral [`crate::metrics`]; this path stays for the modules that
/// still name it (`kube_events`).
pub use crate::metrics;

use std::path::PathBuf;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::advertiser::Advertiser;
use crate::announce::bgp::BgpDesired;
use crate::channels::SourceUpdate;
use crate::metrics::Metrics;
use reconcile::Reconciler;

/// Where the reconcile loop reports besides logs and metrics.
#[derive(Debug, Default)]
pub struct Reports {
    /// Standalone mode: the per-Service status file, rewritten when a report changed.
    pub status_file: Option<PathBuf>,
    /// Kubernetes mode: the desired ServiceBGPStatus set, for [`kube_status::run_writer`].
    pub bgp_statuses: Option<watch::Sender<Option<kube_status::DesiredStatuses>>>,
    /// Kubernetes mode: the desired ServiceL2Status set, for [`kube_status::run_writer`].
    pub l2_statuses: Option<watch::Sender<Option<kube_status::DesiredStatuses>>>,
    /// Kubernetes mode: the errors of the newest rejected configuration (empty when it is in
    /// force), for [`kube_events::run_publisher`].
    pub config_errors: Option<watch::Sender<kube_events::Rejection>>,
}

/// Runs the reconcile loop until `cancel` or until the source ends. Every update is applied;
/// `reports` are refreshed whenever what they show changed.
pub async fn run<A: Advertiser<Desired = BgpDesired>>(
    mut source: mpsc::Receiver<SourceUpdate>,
    reconciler: &mut Reconciler<A>,
    node_name: &str,
    metrics: &Metrics,
    reports: Reports,
    cancel: CancellationToken,
) {
    let mut written_stale = None;
    loop {
        let update = tokio::select! {
            u = source.recv() => u,
            () = cancel.cancelled() => None,
        };
        let Some(update) = update else { return };
        // The UIDs of the configuration objects, for the Events' `regarding` (the snapshot is
        // consumed by `apply`); only in Kubernetes mode, a few dozen objects.
        let uids = match (&update, &reports.config_errors) {
            (SourceUpdate::Snapshot(inputs), Some(_)) => kube_events::config_uids(inputs.config()),
            _ => Default::default(),
        };
        let snapshot = match &update {
            SourceUpdate::Snapshot(_) => true,
            SourceUpdate::Liveness(_) => false,
            SourceUpdate::Unavailable(error) => {
                metrics.set_source_error(Some(error.clone()));
                false
            }
        };
        let changed = reconciler.apply(update);
        if snapshot {
            metrics.set_source_error(None);
            if let Some(tx) = &reports.config_errors {
                let errors = reconciler.config_errors();
                tx.send_if_modified(|old| {
                    let differs = old.errors.as_slice() != errors;
                    if differs {
                        *old = kube_events::Rejection {
                            errors: errors.to_vec(),
                            uids,
                        };
                    }
                    differs
                });
            }
            if let Some(tx) = &reports.bgp_statuses {
                // Only once a plan exists: before it, an empty set would delete every
                // object a previous run of this speaker wrote.
                let unknown = tx.borrow().is_none();
                if reconciler.applied().is_some() && (unknown || !changed.is_empty()) {
                    let desired = kube_status::desired_from(reconciler.statuses());
                    tx.send_if_modified(|old| {
                        let differs = old.as_ref() != Some(&desired);
                        if differs {
                            *old = Some(desired);
                        }
                        differs
                    });
                }
            }
        }
        if let Some(l2) = reconciler.l2() {
            metrics.set_l2(node_name, l2.announced(), l2.live_members());
            // As for BGP: only once a plan exists, else a restart would delete every object.
            // Liveness changes move VIPs too, so this runs on every update.
            if let (Some(tx), Some(_)) = (&reports.l2_statuses, reconciler.applied()) {
                let desired = kube_status::desired_from_l2(l2.statuses());
                tx.send_if_modified(|old| {
                    let differs = old.as_ref() != Some(&desired);
                    if differs {
                        *old = Some(desired);
                    }
                    differs
                });
            }
        }
        let stale = reconciler.is_stale();
        if let Some(path) = &reports.status_file {
            if !changed.is_empty() || written_stale != Some(stale) {
                let doc = status::StatusDoc {
                    node: node_name,
                    stale,
                    services: reconciler.statuses(),
                };
                let doc = l2::WithL2 {
                    doc,
                    l2: reconciler.l2().map(l2::L2Reconciler::statuses),
                };
                match status::write_atomically(path, &doc) {
                    Ok(()) => written_stale = Some(stale),
                    Err(error) => {
                        tracing::error!(%error, path = %path.display(), "status file not written")
                    }
                }
            }
        }
        if snapshot {
            // Last, after the reports too: their serialisation is transient as well.
            crate::memory::release_freed_memory();
        }
    }
}
