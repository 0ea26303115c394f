//! Standalone source: a directory of Kubernetes YAML, polled every `period` (250 ms by default,
//! so a change is acted on well within a second without an inotify dependency).
//!
//! A new snapshot is loaded only when the directory's fingerprint (file list, lengths, mtimes)
//! changes. Any failure to list or read the directory or to parse a file becomes
//! [`SourceUpdate::Unavailable`], which keeps the last good state: only a readable directory
//! that no longer holds an object withdraws it.

use std::path::PathBuf;
use std::time::Duration;

use ferrolb_api::source::files::{fingerprint, load_paths, Fingerprint};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::reconcile::SourceUpdate;

/// Polls `dir` until `cancel` or until the receiver is gone.
pub async fn watch_dir(
    dir: PathBuf,
    period: Duration,
    tx: mpsc::Sender<SourceUpdate>,
    cancel: CancellationToken,
) {
    let mut last: Option<Result<Fingerprint, String>> = None;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = cancel.cancelled() => return,
            () = tx.closed() => return,
        }
        let d = dir.clone();
        let Ok(fp) =
            tokio::task::spawn_blocking(move || fingerprint(&[&d]).map_err(|e| e.to_string()))
                .await
        else {
            continue;
        };
        if last.as_ref() == Some(&fp) {
            continue;
        }
        let update = match &fp {
            Err(error) => SourceUpdate::Unavailable(error.clone()),
            Ok(_) => {
                let d = dir.clone();
                match tokio::task::spawn_blocking(move || load_paths(&[&d])).await {
                    Ok(Ok(res)) => SourceUpdate::Snapshot(Box::new(res)),
                    Ok(Err(error)) => SourceUpdate::Unavailable(error.to_string()),
                    Err(error) => SourceUpdate::Unavailable(error.to_string()),
                }
            }
        };
        last = Some(fp);
        if tx.send(update).await.is_err() {
            return;
        }
    }
}
