//! The speaker daemon: sources, the reconcile loop, metrics/health HTTP and status reports.
//!
//! ```text
//!  standalone::watch_dir ─┐                                         ┌─▶ Protocol (BGP) ─▶ backend
//!  kube::watch ───────────┴─mpsc<SourceUpdate>─▶ run() ─ Reconciler ─┼─▶ Protocol (L2)  ─▶ backend
//!  protocol tasks (L2 gossip) ──mpsc<Wake>──────▶  │                 │
//!                                                  ├─▶ status file + logs (every protocol's section)
//!                                                  │  (Kubernetes mode:)
//!           watch<Option<DesiredStatuses>> per protocol ─▶ kube_status::run_writer
//!                         watch<kube_events::Rejection> ─▶ kube_events::run_publisher
//!        watch<Option<ConfigurationStateStatus>> ─▶ ferrolb_runtime::config_state::run_writer
//!  http::serve ◀── Arc<Metrics> ◀── reconcile loop, protocols, backend event tasks, writers
//! ```
//!
//! The reconcile loop never waits on the API: it hands the Kubernetes writers the newest value
//! on `watch` channels (latest wins), and they write at their own pace. It knows no protocol:
//! reports are per [`Protocol::name`](crate::protocol::Protocol::name).

pub mod http;
pub mod kube;
pub mod kube_events;
pub mod kube_status;
pub mod l2;
pub mod reconcile;
pub mod restart;
pub mod standalone;
pub mod status;

pub mod metrics;

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferrolb_api::crd::configuration_state::ConfigurationStateStatus;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::channels::{SourceUpdate, Wake};
use crate::metrics::Metrics;
use reconcile::Reconciler;

/// Where the reconcile loop reports besides logs and metrics.
#[derive(Debug, Default)]
pub struct Reports {
    /// Standalone mode: the per-Service status file, rewritten when a report changed.
    pub status_file: Option<PathBuf>,
    /// Kubernetes mode: per protocol name, the desired status objects (ServiceBGPStatus,
    /// ServiceL2Status), for [`kube_status::run_writer`].
    pub statuses: BTreeMap<&'static str, watch::Sender<Option<kube_status::DesiredStatuses>>>,
    /// Kubernetes mode: the errors of the newest rejected configuration (empty when it is in
    /// force), for [`kube_events::run_publisher`].
    pub config_errors: Option<watch::Sender<kube_events::Rejection>>,
    /// Kubernetes mode: this speaker's ConfigurationState status after each configuration
    /// read, for `ferrolb_runtime::config_state::run_writer` (`None` until the first one).
    pub config_state: Option<watch::Sender<Option<ConfigurationStateStatus>>>,
}

/// What woke the loop.
enum Input {
    Source(SourceUpdate),
    Wake(Wake),
}

/// Runs the reconcile loop until `cancel` or until the source ends. Every update and every
/// protocol wake-up is applied; `reports` are refreshed whenever what they show changed.
pub async fn run(
    mut source: mpsc::Receiver<SourceUpdate>,
    mut wakes: mpsc::Receiver<Wake>,
    reconciler: &mut Reconciler,
    node_name: &str,
    metrics: &Metrics,
    reports: Reports,
    cancel: CancellationToken,
) {
    let mut written_stale = None;
    let mut wakes_open = true;
    loop {
        let input = tokio::select! {
            u = source.recv() => u.map(Input::Source),
            w = wakes.recv(), if wakes_open => match w {
                Some(w) => Some(Input::Wake(w)),
                None => {
                    // No protocol task left to wake us; sources still drive the loop.
                    wakes_open = false;
                    continue;
                }
            },
            () = cancel.cancelled() => None,
        };
        let Some(input) = input else { return };
        let (changed, snapshot) = match input {
            Input::Wake(Wake(name)) => (reconciler.wake(name), false),
            Input::Source(update) => {
                // The UIDs of the configuration objects, for the Events' `regarding` (the
                // snapshot is consumed by `apply`); only in Kubernetes mode, a few dozen objects.
                let uids = match (&update, &reports.config_errors) {
                    (SourceUpdate::Snapshot(inputs), Some(_)) => {
                        kube_events::config_uids(inputs.config())
                    }
                    (SourceUpdate::Changes(changes), Some(_)) => changes
                        .config
                        .as_ref()
                        .map(kube_events::config_uids)
                        .unwrap_or_default(),
                    _ => Default::default(),
                };
                let snapshot = match &update {
                    SourceUpdate::Snapshot(_) | SourceUpdate::Changes(_) => true,
                    SourceUpdate::Unavailable(error) => {
                        metrics.set_source_error(Some(error.clone()));
                        false
                    }
                };
                let changed = reconciler.apply(update);
                if snapshot {
                    metrics.set_source_error(None);
                    if let Some(tx) = &reports.config_state {
                        let desired = reconciler.configuration_state();
                        tx.send_if_modified(|old| {
                            let differs = old.as_ref() != Some(&desired);
                            if differs {
                                *old = Some(desired);
                            }
                            differs
                        });
                    }
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
                }
                (changed, snapshot)
            }
        };
        for p in reconciler.protocols() {
            let Some(tx) = reports.statuses.get(p.name()) else {
                continue;
            };
            // Only once a plan exists: before it, an empty set would delete every object a
            // previous run of this speaker wrote.
            let unknown = tx.borrow().is_none();
            if p.has_plan() && (unknown || !changed.is_empty()) {
                let desired = p.announced();
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
                    protocols: reconciler.protocols(),
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
            ferrolb_runtime::process::release_freed_memory();
        }
    }
}
