//! The speaker daemon: sources, the reconcile loop, metrics/health HTTP and status reports.
//!
//! ```text
//!  standalone::watch_dir ─┐                                  ┌─▶ backend (BGP) tasks
//!  kube::watch ───────────┴─mpsc<SourceUpdate>─▶ run() ─ Reconciler ─┤
//!                                                                    └─▶ status file + logs
//!  http::serve ◀── Arc<Metrics> ◀── reconcile loop, backend event tasks
//! ```

pub mod http;
pub mod kube;
pub mod metrics;
pub mod reconcile;
pub mod standalone;
pub mod status;

use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::advertiser::Advertiser;
use crate::announce::bgp::BgpDesired;
use reconcile::{Reconciler, SourceUpdate};

/// Runs the reconcile loop until `cancel` or until the source ends. Every update is applied;
/// the status file (if any) is rewritten whenever a Service's report changed.
pub async fn run<A: Advertiser<Desired = BgpDesired>>(
    mut source: mpsc::Receiver<SourceUpdate>,
    reconciler: &mut Reconciler<A>,
    node_name: &str,
    status_file: Option<PathBuf>,
    cancel: CancellationToken,
) {
    let mut written_stale = None;
    loop {
        let update = tokio::select! {
            u = source.recv() => u,
            () = cancel.cancelled() => None,
        };
        let Some(update) = update else { return };
        let snapshot = matches!(update, SourceUpdate::Snapshot(_));
        let changed = reconciler.apply(update);
        if snapshot {
            release_freed_memory();
        }
        let stale = reconciler.is_stale();
        if let Some(path) = &status_file {
            if !changed.is_empty() || written_stale != Some(stale) {
                let doc = status::StatusDoc {
                    node: node_name,
                    stale,
                    services: reconciler.statuses(),
                };
                match status::write_atomically(path, &doc) {
                    Ok(()) => written_stale = Some(stale),
                    Err(error) => {
                        tracing::error!(%error, path = %path.display(), "status file not written")
                    }
                }
            }
        }
    }
}

/// Hands the heap freed after a snapshot back to the OS. A snapshot of 10k Services parses to
/// ~31 MiB that is dropped once the plan is computed; glibc keeps such freed peaks mapped, so
/// RSS stayed at the peak (docs/speaker.md, "10k VIPs"). Runs once per changed snapshot only.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it touches no live allocation and is
    // thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}
